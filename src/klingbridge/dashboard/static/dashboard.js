// Live updates: one EventSource per page; a change refetches the page's live parts
// (?partial=1, rendered and escaped by the server) and swaps those that differ.
(function () {
  "use strict";
  var body = document.body;
  var url = body.dataset.events;
  var only = body.dataset.key || "";
  var indicator = document.getElementById("live");
  if (!url || !window.EventSource) { return; }
  var changed = new Set();
  var timer = null;

  function schedule(delay) {
    if (!timer) { timer = setTimeout(refresh, delay); }
  }

  function playing(section) {
    return Array.prototype.some.call(section.querySelectorAll("audio, video"), function (m) {
      return !m.paused && !m.ended;
    });
  }

  function swap(doc, keys) {
    var busy = false;
    document.querySelectorAll("[data-live]").forEach(function (old) {
      var fresh = doc.getElementById(old.id);
      if (!fresh || fresh.innerHTML === old.innerHTML) { return; }
      if (old.hasAttribute("data-media") && playing(old)) { busy = true; return; }
      var node = document.importNode(fresh, true);
      old.replaceWith(node);
      keys.forEach(function (key) {
        node.querySelectorAll("tr[data-key]").forEach(function (row) {
          if (row.dataset.key === key) { row.classList.add("flash"); }
        });
      });
    });
    if (busy) { changed.add(only); schedule(2000); }  // let the listener finish first
  }

  function refresh() {
    timer = null;
    var keys = Array.from(changed);
    changed.clear();
    var target = new URL(window.location.href);
    target.searchParams.set("partial", "1");
    fetch(target.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { swap(new DOMParser().parseFromString(html, "text/html"), keys); })
      .catch(function () { keys.forEach(function (k) { changed.add(k); }); schedule(3000); });
  }

  var source = new EventSource(url);
  source.onopen = function () { indicator.classList.add("on"); };
  source.onerror = function () { indicator.classList.remove("on"); };
  source.addEventListener("change", function (e) {
    var data = JSON.parse(e.data);
    if (only && data.key !== only) { return; }
    changed.add(data.key);
    schedule(150);
  });
})();
