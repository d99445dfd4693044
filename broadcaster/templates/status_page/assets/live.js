(function () {
  "use strict";
  function localTimes(root) {
    var nodes = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var t = nodes[i], d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime()) || t.querySelector(".local")) continue;
      var s = document.createElement("span");
      s.className = "local";
      s.textContent = " · " + d.toLocaleString([], {dateStyle: "medium", timeStyle: "short"}) + " your time";
      t.appendChild(s);
    }
  }
  localTimes(document);
  var source = document.body.getAttribute("data-live");
  if (!source || !window.EventSource || !window.fetch || !window.DOMParser) return;
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, {cache: "no-cache", headers: {Accept: "text/html"}}).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
      var current = document.getElementById("live");
      if (next && current) {
        current.replaceWith(next);
        localTimes(next);
        var note = document.getElementById("live-note");
        if (note) note.textContent = "Updated live at " + new Date().toLocaleTimeString() + ".";
      }
    }).catch(function () {}).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }
  var events = new EventSource(source);
  events.onopen = function () { document.body.setAttribute("data-live-state", "on"); };
  events.addEventListener("update", refresh);
  events.addEventListener("published", refresh);
})();
