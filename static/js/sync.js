// A change's banner (templates/includes/sync_state.html, the pack page's domains): while it says
// "being applied", ask the page's state URL again (JSON {state, error}), at first every second,
// then less often; once it is applied or failed, say so in the banner (a role="status" region,
// so screen readers hear it) and stop. No inline script: the CSP allows scripts from 'self' only.
(function () {
  "use strict";
  var FIRST = 1000, LONGEST = 15000;

  function show(banner, answer) {
    banner.classList.remove("sync-pending");
    banner.classList.add("sync-" + answer.state);
    banner.textContent = answer.state === "applied" ? banner.dataset.textApplied : banner.dataset.textFailed;
    if (answer.state === "failed" && answer.error) {
      var detail = document.createElement("span");
      detail.className = "error-detail";
      detail.textContent = answer.error;
      banner.append(" ", detail);
    }
  }

  function ask(banner, delay) {
    window.setTimeout(function () {
      fetch(banner.dataset.syncUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok || response.redirected) { return null; }  // logged out, gone: stop
          return response.json().then(function (answer) {
            if (answer.state === "pending") { ask(banner, Math.min(delay * 1.5, LONGEST)); } else { show(banner, answer); }
          });
        })
        .catch(function () { ask(banner, Math.min(delay * 2, LONGEST)); });  // offline a moment
    }, delay);
  }

  function start() {
    document.querySelectorAll("[data-sync-url]").forEach(function (banner) { ask(banner, FIRST); });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
