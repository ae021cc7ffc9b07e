// Moves the keyboard and screen-reader focus to a refusal or error summary ([data-autofocus]) when a page or an
// htmx swap brings one, so the nurse sees what was refused without scrolling.
(function () {
  function focusSummary(root) {
    var target = (root || document).querySelector("[data-autofocus]");
    if (target) {
      target.focus();
      target.scrollIntoView({ block: "start" });
    }
  }
  function restoreAddress() {
    // A refused form re-renders the page it was sent from; put that page's address back in the bar.
    var main = document.getElementById("main");
    var url = main && main.getAttribute("data-canonical-url");
    if (url && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", url);
    }
  }
  document.addEventListener("DOMContentLoaded", function () { restoreAddress(); focusSummary(document); });
  document.addEventListener("htmx:afterSwap", function (event) { focusSummary(event.detail.target); });
  // A polling element marked [data-poll-when-visible] asks nothing while the tab is hidden, and asks at once when
  // it is shown again (htmx's trigger filters would do this, but they need eval, which the CSP refuses).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail.elt;
    if (document.visibilityState !== "visible" && source.hasAttribute("data-poll-when-visible")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { document.dispatchEvent(new CustomEvent("il2ward:visible")); }
  });
  // Behaviour that was inline handlers (the Content-Security-Policy runs no inline script): a [data-print] button
  // prints the page; a [data-select-on-focus] field selects its text (a link to copy).
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) { window.print(); }
  });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) { event.target.select(); }
  });
})();

// The ward board's poll (scheduling/mar/views.py ward_page): it sends the ETag it holds and its rows' fingerprints,
// keeps the page on a 304, and puts the rows back in the board's order after the server's out-of-band swaps.
(function () {
  function isBoard(el) { return el && el.id === "board"; }
  document.addEventListener("htmx:configRequest", function (event) {
    var board = event.detail.elt;
    if (!isBoard(board)) return;
    var etag = board.getAttribute("data-etag");
    if (etag) event.detail.headers["If-None-Match"] = etag;
    var rows = board.querySelectorAll("tr.board-row[data-v]");
    var known = Array.prototype.map.call(rows, function (row) {
      return row.getAttribute("data-patient") + ":" + row.getAttribute("data-v");
    }).join(" ");
    // Past a server's header limit (gunicorn: 8190 bytes) the poll would fail; without it the answer has every row.
    if (known.length < 7000) event.detail.headers["X-IL2Ward-Rows"] = known;
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (isBoard(event.detail.elt) && event.detail.xhr.status === 304) event.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (!isBoard(event.detail.elt) || (xhr.status !== 200 && xhr.status !== 304)) return;
    var etag = xhr.getResponseHeader("ETag");
    if (etag) event.detail.elt.setAttribute("data-etag", etag);
    var time = document.querySelector("#board-summary time[data-tz]");
    if (xhr.status === 304 && time && window.Intl) {
      // Nothing changed: the board is as of now. The server's clock (Date), shown in ward time.
      var now = new Date(xhr.getResponseHeader("Date") || Date.now());
      time.setAttribute("datetime", now.toISOString());
      time.textContent = new Intl.DateTimeFormat("en-GB", {
        timeZone: time.getAttribute("data-tz"), hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
      }).format(now);
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var order = document.getElementById("board-order");
    var body = document.getElementById("board-rows");
    if (!isBoard(event.detail.elt) || !order || !body || !order.getAttribute("data-order")) return;
    var wanted = order.getAttribute("data-order").split(" ");
    var current = Array.prototype.map.call(body.querySelectorAll("tr.board-row"), function (row) {
      return row.getAttribute("data-patient");
    });
    if (current.join(" ") === wanted.join(" ")) return;
    wanted.forEach(function (pk) {
      var row = document.getElementById("board-row-" + pk);
      if (row) body.appendChild(row);
    });
  });
})();
