// Live updates: one EventSource per page. A change refetches the page's live parts
// (?partial=1, rendered and escaped by the server) and swaps in those that differ; rows that
// are new or changed status are highlighted. A playing <audio>/<video> is never interrupted.
(function () {
  "use strict";
  var body = document.body;
  var url = body.dataset.events;
  var only = body.dataset.key || "";  // a task's page follows that job alone
  var indicator = document.getElementById("live");
  if (!url || !window.EventSource) { return; }
  var timer = null;

  function schedule(delay) {
    if (!timer) { timer = setTimeout(refresh, delay); }
  }

  function playing(section) {
    return Array.prototype.some.call(section.querySelectorAll("audio, video"), function (m) {
      return !m.paused && !m.ended;
    });
  }

  function statuses() {
    var seen = {};
    document.querySelectorAll("tr[data-key]").forEach(function (row) {
      seen[row.dataset.key] = row.dataset.status;
    });
    return seen;
  }

  function swap(doc) {
    var busy = false;
    var before = statuses();
    document.querySelectorAll("[data-live]").forEach(function (old) {
      var fresh = doc.getElementById(old.id);
      if (!fresh || fresh.innerHTML === old.innerHTML) { return; }
      if (old.hasAttribute("data-media") && playing(old)) { busy = true; return; }
      var node = document.importNode(fresh, true);
      old.replaceWith(node);
      node.querySelectorAll("tr[data-key]").forEach(function (row) {
        if (before[row.dataset.key] !== row.dataset.status) { row.classList.add("flash"); }
      });
    });
    if (busy) { schedule(2000); }  // try again once the listener has finished
  }

  function refresh() {
    timer = null;
    var target = new URL(window.location.href);
    target.searchParams.set("partial", "1");
    fetch(target.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { swap(new DOMParser().parseFromString(html, "text/html")); })
      .catch(function () { schedule(3000); });
  }

  var source = new EventSource(url);
  source.onopen = function () { indicator.classList.add("on"); };
  source.onerror = function () { indicator.classList.remove("on"); };
  source.addEventListener("change", function (e) {
    var data = JSON.parse(e.data);
    if (only && data.key !== only) { return; }
    schedule(150);
  });
})();
