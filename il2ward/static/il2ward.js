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
