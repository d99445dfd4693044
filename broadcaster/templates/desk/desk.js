// The agent desk's live refresh: on every server-sent event, re-fetch the desk fragment.
// Served from /desk/static/ so the page needs no inline script (strict CSP).
(function () {
  "use strict";
  var root = document.getElementById("desk-live");
  var status = document.getElementById("live-status");
  if (!root) { return; }
  var fragmentUrl = root.getAttribute("data-fragment-url");
  var eventsUrl = root.getAttribute("data-events-url");
  var FALLBACK_MS = 60000; // re-fetch now and then even if the stream silently died
  var busy = false;
  var again = false;

  function show(state, text) {
    document.body.setAttribute("data-live", state);
    if (status) { status.textContent = text; }
  }

  // The words come translated in the page (data-text-*; {time} marks the clock); English otherwise.
  function words(name, fallback) {
    var text = (status && status.getAttribute("data-text-" + name)) || fallback;
    return text.replace("{time}", clock());
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(fragmentUrl, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403) {
          window.location.reload(); // session ended: show the login page
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        root.innerHTML = html;
        root.setAttribute("data-refreshed", String(Date.now()));
        if (document.body.getAttribute("data-live") === "on") { show("on", words("on", "Live · updated {time}")); }
      })
      .catch(function () { show("stale", words("stale", "Could not refresh at {time}: retrying")); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (!window.EventSource) {
    show("poll", words("poll", "Refreshing every minute"));
    window.setInterval(refresh, FALLBACK_MS);
    return;
  }
  var source = new EventSource(eventsUrl);
  source.addEventListener("ready", function () {
    // Connected (or reconnected): catch up on anything missed while away.
    show("on", words("on", "Live · updated {time}"));
    refresh();
  });
  source.addEventListener("update", refresh);
  source.addEventListener("published", refresh);
  source.addEventListener("replies", refresh);
  source.addEventListener("page", refresh);
  source.addEventListener("error", function () {
    show("reconnecting", words("reconnecting", "Reconnecting… (last update {time})"));
  });
  window.setInterval(refresh, FALLBACK_MS);
})();
