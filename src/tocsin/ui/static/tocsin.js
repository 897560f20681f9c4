/* Tocsin web UI: the few things pages do in the browser. Everything works without this file
   (forms post, links navigate); with it, the menu folds on a phone and incident pages follow
   the live stream (/api/v1/stream, signed in by the session cookie). See docs/ui.md. */
(function () {
  "use strict";

  // The phone menu.
  var toggle = document.querySelector(".nav-toggle");
  var nav = document.getElementById("site-nav");
  if (toggle && nav) {
    toggle.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // Ages ("12 min") kept current between renders, as the server writes them.
  function ago(iso) {
    var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h";
    return Math.floor(seconds / 86400) + " d";
  }
  function refreshAges() {
    var times = document.querySelectorAll("time.age[datetime]");
    for (var i = 0; i < times.length; i++) {
      times[i].textContent = ago(times[i].getAttribute("datetime"));
    }
  }
  setInterval(refreshAges, 30000);

  // Copy buttons beside a key or URL shown once: data-copy names the input to copy.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    function copied() {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(copied, function () {
        document.execCommand("copy");
        copied();
      });
    } else {
      document.execCommand("copy");
      copied();
    }
  });

  var list = document.querySelector('[data-live="incident-list"]');
  var incident = document.querySelector('[data-live="incident"]');
  if (!list && !incident) return;

  var statusEls = document.querySelectorAll("[data-live-status]");
  function setStatus(state, text) {
    for (var i = 0; i < statusEls.length; i++) {
      statusEls[i].setAttribute("data-state", state);
      statusEls[i].textContent = text;
    }
  }

  // Fetch a fragment of a page; null for 204 (nothing to show). A session that ended sends
  // the request to the sign-in page: reload, and the server redirects there with ?next=.
  function fetchHtml(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected && response.url.indexOf("/login") !== -1) {
          window.location.reload();
          return null;
        }
        if (response.status === 204) return null;
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      });
  }

  function parseRow(html) {
    var body = document.createElement("tbody");
    body.innerHTML = html.trim();
    return body.querySelector("tr");
  }

  // The incident list: one row fetched per event, inserted in order when new.
  var rows = list ? list.querySelector("tbody") : null;
  function filters() {
    var query = list.getAttribute("data-filters") || "";
    return query ? "?" + query : "";
  }
  function firstPage() {
    return list.getAttribute("data-first-page") === "true";
  }
  function removeEmptyRow() {
    var empty = rows.querySelector("tr.empty-row");
    if (empty) empty.remove();
  }
  function insertInOrder(row) {
    var created = row.getAttribute("data-created");
    var existing = rows.querySelectorAll("tr[data-created]");
    for (var i = 0; i < existing.length; i++) {
      if (existing[i].getAttribute("data-created") < created) {
        rows.insertBefore(row, existing[i]);
        return;
      }
    }
    rows.appendChild(row);
  }
  function refreshRow(id) {
    return fetchHtml("/incidents/" + encodeURIComponent(id) + "/row" + filters()).then(function (html) {
      var current = document.getElementById("incident-" + id);
      if (html === null) {
        if (current) current.remove();
        return;
      }
      var row = parseRow(html);
      if (!row) return;
      if (current) {
        current.replaceWith(row);
      } else if (firstPage()) {
        removeEmptyRow();
        insertInOrder(row);
      } else {
        return;
      }
      row.classList.add("flash");
    });
  }
  function catchUpList() {
    if (!firstPage()) return Promise.resolve();
    return fetchHtml("/incidents/rows" + filters()).then(function (html) {
      if (html !== null) rows.innerHTML = html;
    });
  }

  // The incident page: its changing part fetched again on each event about it.
  var incidentId = incident ? incident.getAttribute("data-incident-id") : null;
  var pending = null;
  function refreshIncident() {
    if (pending) return pending;
    pending = fetchHtml("/incidents/" + encodeURIComponent(incidentId) + "/live")
      .then(function (html) {
        if (html !== null) incident.innerHTML = html;
      })
      .finally(function () {
        pending = null;
      });
    return pending;
  }

  function catchUp() {
    var work = list ? catchUpList() : refreshIncident();
    work.catch(function () {});
  }

  function onEvent(message) {
    var changed = message && message.incident;
    if (!changed || !changed.id) return;
    if (list) refreshRow(changed.id).catch(function () {});
    if (incident && changed.id === incidentId) refreshIncident().catch(function () {});
  }

  // The stream: reconnect with a growing, jittered delay; each (re)connection catches up
  // on what changed while the page had no stream (including since it was rendered).
  var failures = 0;
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(scheme + "//" + window.location.host + "/api/v1/stream");
    socket.onopen = function () {
      failures = 0;
      setStatus("live", "Live");
      catchUp();
    };
    socket.onmessage = function (event) {
      try {
        onEvent(JSON.parse(event.data));
      } catch (err) {
        /* a message we do not understand changes nothing */
      }
    };
    socket.onclose = function () {
      setStatus("reconnecting", "Reconnecting…");
      var delay = Math.min(30000, 1000 * Math.pow(2, failures)) * (0.5 + Math.random() / 2);
      failures += 1;
      window.setTimeout(connect, delay);
    };
  }
  connect();
})();
