// Instant checks for generated forms: the same rules as the server (app/domain/forms/formats.py),
// shown while typing. The server still checks everything; nothing here stops a submission.
"use strict";
(function () {
  const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
  const ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2];
  const compact = (v) => v.replace(/[\s-]+/g, "");
  const mod = (n, m) => ((n % m) + m) % m;

  function realDate(y, m, d) {
    const date = new Date(Date.UTC(y, m - 1, d));
    return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
  }
  function residentId(raw) {
    const v = compact(raw).toUpperCase();
    if (!/^\d{17}[\dX]$/.test(v)) return false;
    const y = +v.slice(6, 10), m = +v.slice(10, 12), d = +v.slice(12, 14);
    if (!realDate(y, m, d) || y < 1900 || new Date(Date.UTC(y, m - 1, d)) > new Date()) return false;
    const total = ID_WEIGHTS.reduce((sum, w, i) => sum + w * +v[i], 0);
    return "10X98765432"[total % 11] === v[17];
  }
  function uscc(raw) {
    const v = compact(raw).toUpperCase();
    if (!/^[1-9A-GY][1-9A-Z][0-9]{6}[0-9ABCDEFGHJKLMNPQRTUWXY]{10}$/.test(v)) return false;
    const org = ORG_WEIGHTS.reduce((sum, w, i) => sum + w * parseInt(v[8 + i], 36), 0);
    const orgCheck = mod(-org, 11);
    if ((orgCheck === 10 ? "X" : String(orgCheck)) !== v[16]) return false;
    const total = USCC_WEIGHTS.reduce((sum, w, i) => sum + w * USCC_CHARS.indexOf(v[i]), 0);
    return USCC_CHARS[mod(-total, 31)] === v[17];
  }
  function luhn(digits) {
    let total = 0;
    [...digits].reverse().forEach((c, i) => {
      const d = +c * (i % 2 ? 2 : 1);
      total += d > 9 ? d - 9 : d;
    });
    return total % 10 === 0;
  }
  function isoDate(raw) {
    const m = raw.trim().match(/^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$/);
    return !!m && realDate(+m[1], +m[2], +m[3]) && +m[1] >= 1900 && +m[1] <= 2099;
  }
  const CHECKS = {
    "cn-resident-id": residentId,
    "cn-uscc": uscc,
    "cn-mobile": (v) => /^1[3-9]\d{9}$/.test(compact(v).replace(/^\+86/, "")),
    "bank-card": (v) => /^\d{16,19}$/.test(compact(v)) && luhn(compact(v)),
    "bank-account": (v) => /^\d{12,30}$/.test(compact(v)),
    "date": isoDate,
    "yuan": (v) => /^(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?$/.test(v.trim().replace(/，/g, ",").replace(/^[¥￥]/, "").trim()),
  };

  function showError(wrapper, message) {
    const name = wrapper.id.slice(2);
    let node = document.getElementById("e-" + name);
    const input = document.getElementById("f-" + name);
    if (!message) {
      if (node && node.dataset.live) node.remove();
      wrapper.classList.toggle("has-error", !!document.getElementById("e-" + name));
      if (input && !document.getElementById("e-" + name)) input.removeAttribute("aria-invalid");
      return;
    }
    if (!node) {
      node = document.createElement("p");
      node.className = "error";
      node.id = "e-" + name;
      node.setAttribute("role", "alert");
      wrapper.appendChild(node);
    }
    node.dataset.live = "1";
    node.textContent = message;
    wrapper.classList.add("has-error");
    if (input) input.setAttribute("aria-invalid", "true");
  }

  function watchFormats(form) {
    form.querySelectorAll("[data-format]").forEach((wrapper) => {
      const input = wrapper.querySelector("input, textarea");
      if (!input) return;
      input.addEventListener("blur", () => {
        const value = input.value.trim();
        const ok = !value || CHECKS[wrapper.dataset.format](value);
        showError(wrapper, ok ? "" : wrapper.dataset.message);
      });
    });
  }

  function watchConditions(form) {
    const conditional = [...form.querySelectorAll("[data-when-field]")];
    const update = () => {
      conditional.forEach((wrapper) => {
        const chosen = form.querySelector(`[name="${wrapper.dataset.whenField}"]:checked`) ||
          form.querySelector(`select[name="${wrapper.dataset.whenField}"]`);
        wrapper.hidden = !chosen || chosen.value !== wrapper.dataset.whenValue;
      });
    };
    form.addEventListener("change", update);
    update();
  }

  document.querySelectorAll("form.intake").forEach((form) => {
    watchFormats(form);
    watchConditions(form);
  });
  const chooser = document.getElementById("chooser");
  if (chooser) chooser.querySelector("select").addEventListener("change", () => chooser.submit());
})();
