// The commander console: live preview while composing, live delivery counts, banners.
// Plain JS, no framework, no inline handlers (CSP: script-src 'self').
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf") || "";
  // The page's words in the reader's language (base.html); English when a page has none.
  var strings = {};
  var stringsBlock = document.getElementById("console-strings");
  if (stringsBlock) {
    try { strings = JSON.parse(stringsBlock.textContent); } catch (e) { strings = {}; }
  }
  function t(key, english, values) {
    var text = strings[key] || english;
    Object.keys(values || {}).forEach(function (name) { text = text.split("{" + name + "}").join(values[name]); });
    return text;
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // --- compose: preview as you type; Send only for the content last previewed ---
  function setupCompose(form) {
    var tokenField = document.getElementById("preview_token");
    var sendButton = document.getElementById("send");
    var state = document.getElementById("preview-state");
    var previews = document.getElementById("previews");
    var seq = 0;

    function stale(text) {
      tokenField.value = "";
      sendButton.disabled = true;
      state.textContent = text;
    }

    function snapshot() {
      var body = new URLSearchParams(new FormData(form));
      body.delete("preview_token");
      return body;
    }
    // What the current token was signed for: a blur or a no-op change must not invalidate it.
    var previewed = tokenField.value ? snapshot().toString() : null;

    function refresh() {
      var mine = ++seq;
      var body = snapshot();
      var content = body.toString();
      fetch(form.getAttribute("data-preview-url"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}
      }).then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      }).then(function (result) {
        if (mine !== seq) { return; }  // a newer keystroke is on its way
        if (!result.ok) {
          var error = result.data.error || {};
          var fields = error.fields || {};
          var parts = Object.keys(fields).map(function (k) { return k + ": " + fields[k]; });
          stale(t("cannot_preview", "Cannot preview: ") + (error.message || t("error", "error")) +
            (parts.length ? " (" + parts.join("; ") + ")" : ""));
          return;
        }
        previews.innerHTML = result.data.html;  // server-rendered, escaped by the template
        tokenField.value = result.data.token;
        previewed = content;
        sendButton.disabled = false;
        state.textContent = t("up_to_date", "Preview up to date ({n} channels).",
          {n: Object.keys(result.data.renditions).length});
      }).catch(function () {
        if (mine === seq) {
          stale(t("network", "Preview failed (network). Retrying when you type; or use the Preview button."));
        }
      });
    }

    var later = debounce(refresh, 350);
    function changed() {
      if (tokenField.value && snapshot().toString() === previewed) { return; }
      stale(t("updating", "Updating preview…"));
      later();
    }
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (!sendButton.disabled) { form.requestSubmit(sendButton); }
      }
    });
    var sending = false;
    form.addEventListener("submit", function (event) {
      if (event.submitter === sendButton) {
        if (sending || sendButton.disabled || !tokenField.value) { event.preventDefault(); return; }
        sending = true;  // one click, one update
        state.textContent = t("sending", "Sending…");
        // Disabled only after the submission started: a disabled submitter cancels it.
        setTimeout(function () { sendButton.disabled = true; }, 0);
      }
    });
    var add = document.getElementById("add-answer");
    if (add) {
      add.addEventListener("click", function () {
        var rows = document.querySelectorAll("#answers .answer");
        var copy = rows[rows.length - 1].cloneNode(true);
        copy.querySelectorAll("input, textarea").forEach(function (el) { el.value = ""; });
        document.getElementById("answers").appendChild(copy);
        copy.querySelector("input").focus();
      });
    }
    if (!tokenField.value) { refresh(); }
    setupTranslationTabs(document.getElementById("translations"));
  }

  // --- compose: the translations as tabs (without JavaScript every language's fields show, one after another) ---
  function setupTranslationTabs(fieldset) {
    if (!fieldset) { return; }
    var tabs = Array.prototype.slice.call(fieldset.querySelectorAll(".translation-tab"));
    var panels = tabs.map(function (tab) { return document.getElementById(tab.getAttribute("href").slice(1)); });
    var list = fieldset.querySelector(".translation-tabs");
    list.setAttribute("role", "tablist");
    function filled(panel) {
      return Array.prototype.some.call(panel.querySelectorAll("input, textarea"), function (el) { return el.value.trim(); });
    }
    function select(index, focus) {
      tabs.forEach(function (tab, i) {
        var on = i === index;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
        panels[i].hidden = !on;
      });
      if (focus) { tabs[index].focus(); }
    }
    tabs.forEach(function (tab, i) {
      var panel = panels[i];
      tab.setAttribute("role", "tab");
      tab.id = "tab-" + panel.id;
      tab.setAttribute("aria-controls", panel.id);
      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", tab.id);
      tab.classList.toggle("filled", filled(panel));
      panel.addEventListener("input", function () { tab.classList.toggle("filled", filled(panel)); });
      tab.addEventListener("click", function (event) { event.preventDefault(); select(i, false); });
      tab.addEventListener("keydown", function (event) {
        var step = {ArrowRight: 1, ArrowLeft: -1}[event.key];
        if (step) { event.preventDefault(); select((i + step + tabs.length) % tabs.length, true); }
      });
    });
    var first = tabs.findIndex(function (tab, i) { return filled(panels[i]); });
    select(first < 0 ? 0 : first, false);
  }

  // --- deliveries: live counts over SSE, polling when SSE is not available ---
  function setupCounts(table) {
    var live = document.getElementById("live-state");
    var failuresBody = document.querySelector("#failures tbody");
    var lastFailures = -1;

    function apply(data) {
      Object.keys(data.counts).forEach(function (channel) {
        var row = table.querySelector('tr[data-channel="' + channel + '"]');
        if (!row) { return; }
        var n = data.counts[channel];
        ["sent", "pending", "failed", "total"].forEach(function (k) {
          var cell = row.querySelector('[data-k="' + k + '"]');
          if (cell) { cell.textContent = n[k]; }
        });
        var bar = row.querySelector("progress");
        if (bar) { bar.max = n.total || 1; bar.value = n.sent; }
        var retry = row.querySelector("button");
        if (retry) { retry.disabled = !n.failed; }
      });
      if (failuresBody && data.failures.length !== lastFailures) {
        lastFailures = data.failures.length;
        failuresBody.textContent = "";
        if (!data.failures.length) {
          var empty = failuresBody.insertRow();
          var cell = empty.insertCell();
          cell.colSpan = 6;
          cell.textContent = t("no_failures", "No failures.");
        }
        data.failures.forEach(function (f) {
          var tr = failuresBody.insertRow();
          [f.channel, f.address || f.recipient, f.attempts, f.last_error, f.updated_at].forEach(function (v) {
            tr.insertCell().textContent = v === null ? "" : String(v);
          });
        });
      }
      live.textContent = t("live", "Live · updated {time}", {time: new Date().toLocaleTimeString()});
    }

    function poll() {
      fetch(table.getAttribute("data-json"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); }).then(apply)
        .catch(function () { live.textContent = t("reconnecting", "Reconnecting…"); })
        .then(function () { setTimeout(poll, 2000); });
    }

    if (window.EventSource) {
      var source = new EventSource(table.getAttribute("data-events"));
      var failures = 0;
      source.addEventListener("counts", function (event) { failures = 0; apply(JSON.parse(event.data)); });
      source.onerror = function () {
        failures += 1;
        if (failures > 3) { source.close(); live.textContent = t("polling", "Polling"); poll(); }
      };
    } else {
      poll();
    }
  }

  // --- any console page: reminder banner ---
  function setupBanner() {
    var banner = document.getElementById("live-banner");
    if (!banner || !window.EventSource || !document.getElementById("dashboard")) { return; }
    var source = new EventSource("/console/events");
    source.addEventListener("reminder", function (event) {
      var data = JSON.parse(event.data);
      banner.textContent = "";
      banner.appendChild(document.createTextNode(t("overdue", "Update overdue: {title} ", {title: data.title})));
      var link = document.createElement("a");
      link.href = "/console/compose?incident_id=" + encodeURIComponent(data.incident_id);
      link.textContent = t("post_now", "Post an update now");
      banner.appendChild(link);
      banner.hidden = false;
    });
    source.addEventListener("draft", function (event) {
      var data = JSON.parse(event.data);
      if (data.state !== "pending") { return; }
      banner.textContent = "";
      banner.appendChild(document.createTextNode(t("draft", "An alert proposes a draft. ")));
      var link = document.createElement("a");
      link.href = "/console/drafts/" + encodeURIComponent(data.draft_id);
      link.textContent = t("review", "Review and send");
      banner.appendChild(link);
      banner.hidden = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("compose");
    if (form) { setupCompose(form); }
    var counts = document.getElementById("counts");
    if (counts) { setupCounts(counts); }
    setupBanner();
  });
})();
