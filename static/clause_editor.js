// Clause editor: refreshes the server-rendered preview as one types and inserts the chosen variable at the
// cursor. The page works without this (its 预览 and 插入到正文 buttons post the form).
(function () {
  "use strict";
  var form = document.getElementById("clause-form");
  var pane = document.getElementById("clause-preview");
  var body = document.getElementById("clause-body");
  if (!form || !pane || !body) { return; }
  var timer = null;
  function refresh() {
    var data = new FormData(form);
    data.set("action", "preview");
    var headers = {};
    headers[form.getAttribute("data-live-header")] = "1";
    // getAttribute: the form has controls named "action", which shadow form.action
    fetch(form.getAttribute("action"), { method: "POST", body: data, headers: headers, credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) { if (html !== null) { pane.innerHTML = html; } })
      .catch(function () { /* the 预览 button still works */ });
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }
  form.addEventListener("input", later);
  document.getElementById("clause-insert").addEventListener("click", function (event) {
    event.preventDefault();
    var text = "{{ " + document.getElementById("clause-variable").value + " }}";
    var start = body.selectionStart, end = body.selectionEnd;
    body.value = body.value.slice(0, start) + text + body.value.slice(end);
    body.selectionStart = body.selectionEnd = start + text.length;
    body.focus();
    clearTimeout(timer);  // this refresh covers what was typed: no second request behind it
    refresh();
  });
})();
