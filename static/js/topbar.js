// The top bar on a phone (templates/base.html, static/css/panel.css): who is signed in and the
// language switch fold behind the "Menu" button, which opens and closes them. Without this
// script the bar stays unfolded (the button is hidden). No inline script: the CSP allows 'self'.
(function () {
  "use strict";
  var header = document.querySelector("header.topbar");
  var button = header && header.querySelector(".menu-toggle");
  if (!button) { return; }
  header.classList.add("collapsible");
  button.addEventListener("click", function () {
    var open = header.classList.toggle("open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
}());
