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
})();
