// The sandbox outbox: ask for the fragment four times a second; swap it in when something new arrived.
(function () {
  "use strict";
  var box = document.getElementById("sandbox-outbox");
  if (!box) { return; }
  var status = document.getElementById("sandbox-live");
  var last = box.getAttribute("data-last") || "0";
  function poll() {
    fetch(box.getAttribute("data-fragment-url") + "?after=" + encodeURIComponent(last), {credentials: "same-origin"})
      .then(function (response) {
        if (response.status === 204) { return null; }
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (data) {
        status.textContent = status.dataset.live || "Live";
        if (data) {
          last = String(data.last);
          box.setAttribute("data-last", last);
          box.innerHTML = data.html;
        }
      })
      .catch(function () { status.textContent = status.dataset.retrying || "Sandbox not answering; retrying…"; })
      .then(function () { setTimeout(poll, 250); });
  }
  setTimeout(poll, 250);
})();
