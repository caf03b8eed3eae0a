// Progressive enhancement only: every page works without it.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.hasAttribute("data-once")) {
    // A second click does nothing; the server's Idempotency-Key would replay it anyway.
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
  }
  var busy = form.getAttribute("data-busy");
  if (busy) { var bar = document.getElementById(busy); if (bar) { bar.hidden = false; } }
});
(function () {
  var form = document.querySelector("form[data-preview]");
  var target = document.getElementById("schedule-preview");
  if (!form || !target || !window.fetch) { return; }
  var timer = null;
  function refresh() {
    var params = new URLSearchParams(new FormData(form));
    params.delete("csrf_token");
    if (!params.get("product_id") || !params.get("principal")) { return; }
    fetch(form.getAttribute("data-preview") + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (html) { target.innerHTML = html; } });
  }
  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 400); });
  form.addEventListener("change", refresh);
  refresh();
})();
