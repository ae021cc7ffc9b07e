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
  document.addEventListener("DOMContentLoaded", function () { focusSummary(document); });
  document.addEventListener("htmx:afterSwap", function (event) { focusSummary(event.detail.target); });
})();
