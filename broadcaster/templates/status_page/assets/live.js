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
  function each(list, fn) { for (var i = 0; i < list.length; i++) fn(list[i]); }
  function text(id) { var node = document.getElementById(id); return node ? node.textContent : ""; }
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
      var doc = new DOMParser().parseFromString(html, "text/html");
      var seen = {}, fresh = [], contactBefore = text("contact-now");
      each(document.querySelectorAll(".update[id]"), function (u) { seen[u.id] = true; });
      each(["contact-now", "live"], function (id) {
        var next = doc.getElementById(id), current = document.getElementById(id);
        if (next && current) { current.replaceWith(next); localTimes(next); }
      });
      each(document.querySelectorAll(".update[id]"), function (u) {
        if (seen[u.id]) return;
        u.classList.add("new");
        var title = u.closest("article") && u.closest("article").querySelector("h2, h3");
        fresh.push("New update" + (title ? " on " + title.textContent.trim() : "") + ": " + u.querySelector("h3, h4").textContent.trim() + ".");
      });
      var note = document.getElementById("live-note");
      if (note) note.textContent = fresh.length ? fresh.join(" ") : text("contact-now") !== contactBefore
        ? "How to reach us has changed." : "Updated live at " + new Date().toLocaleTimeString() + ".";
    }).catch(function () {}).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }
  var events = new EventSource(source);
  events.onopen = function () { document.body.setAttribute("data-live-state", "on"); };
  events.addEventListener("update", refresh);
  events.addEventListener("published", refresh);
  events.addEventListener("page", refresh);
})();
