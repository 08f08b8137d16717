// Config studio: instant checks only (the server checks everything again; the page works without this).
(function () {
  "use strict";
  var rules = {
    yuan: [/^\d[\d,]*(\.\d{1,2})?$/, "金额请填写数字，最多两位小数，例如 1234.56"],
    rate: [/^\d+(\.\d+)?\s*[%‰]?$/, "比例请填写数字，例如 0.3（单位 %）或 3（单位 ‰）"],
    integer: [/^\d+$/, "请填写整数"]
  };
  function check(input) {
    var rule = rules[input.getAttribute("data-check")];
    var value = input.value.trim();
    var message = value && rule && !rule[0].test(value) ? rule[1] : "";
    var note = document.getElementById(input.id + "-live");
    if (!note) {
      note = document.createElement("div");
      note.id = input.id + "-live";
      note.className = "studio-error";
      input.parentNode.appendChild(note);
    }
    note.textContent = message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
  }
  document.querySelectorAll("#studio-form [data-check]").forEach(function (input) {
    input.addEventListener("input", function () { check(input); });
  });
})();
