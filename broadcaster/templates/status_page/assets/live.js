(function (start) {
  // Nothing here is needed for the first paint: run after it (at once in a tab not shown).
  if (document.hidden || !window.requestAnimationFrame) start();
  else requestAnimationFrame(function () { setTimeout(start, 0); });
})(function () {
  "use strict";
  // The page's own words (data-text-* on <body>, in the reader's language); English if absent.
  function say(name, fallback, values) {
    var text = document.body.getAttribute("data-text-" + name) || fallback;
    for (var key in values || {}) text = text.split("%(" + key + ")s").join(values[key]);
    return text;
  }
  var lang = document.documentElement.lang || undefined;
  function localTimes(root) {
    var nodes = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var t = nodes[i], d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime()) || t.querySelector(".local")) continue;
      var s = document.createElement("span");
      s.className = "local";
      s.textContent = " · " + d.toLocaleString(lang, {dateStyle: "medium", timeStyle: "short"}) + " " + say("your-time", "your time");
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
        var what = u.querySelector("h3, h4").textContent.trim();
        fresh.push(title ? say("new-update-on", "New update on %(title)s: %(what)s.", {title: title.textContent.trim(), what: what})
                         : say("new-update", "New update: %(what)s.", {what: what}));
      });
      var note = document.getElementById("live-note");
      if (note) note.textContent = fresh.length ? fresh.join(" ") : text("contact-now") !== contactBefore
        ? say("contact-changed", "How to reach us has changed.")
        : say("updated", "Updated live at %(time)s.", {time: new Date().toLocaleTimeString(lang)});
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
});
