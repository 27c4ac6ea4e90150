// The window pad: the rating of a service that just ended is offered for a while, then the pad
// goes back to idle by itself (`data-idle-after` seconds on <main>; the citizen can still rate
// from the QR link on a phone).
(function () {
  "use strict";
  var main = document.querySelector("main[data-idle-after]");
  if (!main) { return; }
  var seconds = Number(main.getAttribute("data-idle-after"));
  if (seconds > 0) { setTimeout(function () { window.location.reload(); }, seconds * 1000); }
})();
