// groupflow console: a little progressive enhancement. Without it every page
// works (forms post, and the server asks for confirmation on a page of its own).
(function () {
  "use strict";
  // Confirm destructive forms in a dialog; confirmed=1 skips the server's page.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var q = form.getAttribute("data-confirm");
    if (!q) return;
    if (!window.confirm(q)) { ev.preventDefault(); return; }
    var c = form.querySelector('input[name="confirmed"]');
    if (c) c.value = "1";
  });
  // Refresh the sections marked data-refresh="<seconds>" in place.
  var live = document.querySelectorAll("[data-refresh]");
  if (!live.length || !window.fetch || !window.DOMParser) return;
  var every = 1000 * Math.max(2, parseInt(live[0].getAttribute("data-refresh"), 10) || 5);
  setInterval(function () {
    if (document.hidden) return;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        live.forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) el.replaceChildren.apply(el, Array.from(fresh.childNodes).map(function (n) { return document.importNode(n, true); }));
        });
      })
      .catch(function () {});
  }, every);
})();
