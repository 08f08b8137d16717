// The deal page follows its deal: it asks /deals/<id>/status every few seconds, shows what is under way
// (account opening, the bank's signature, payouts) and reloads when the timeline grew. No library; without
// JavaScript the page is the same, reloaded by hand.
(function () {
  "use strict";
  var box = document.getElementById("live-status");
  if (!box || box.dataset.settled) { return; }
  var seen = Number(box.dataset.events);
  var delay = 2000;
  function show(texts) {
    box.textContent = "";
    texts.forEach(function (text) {
      var line = document.createElement("span");
      line.textContent = text;
      box.appendChild(line);
    });
    box.classList.toggle("busy", texts.length > 0);
  }
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (status) {
        if (!status) { return; }
        if (status.events !== seen) { window.location.reload(); return; }
        show(status.progress);
        if (status.settled) { delay = 0; }
      })
      .catch(function () { /* offline for a moment: try again */ })
      .then(function () {
        if (delay) { delay = Math.min(delay + 1000, 10000); window.setTimeout(poll, delay); }
      });
  }
  window.setTimeout(poll, delay);
})();
