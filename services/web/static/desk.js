// The window desk: shortcut keys for the common actions (N 叫号, R 重呼, X 过号, H 暂缓,
// U 恢复, S 开始办理, F 办结, T 转办; C puts the cursor in 按号呼叫) and one submission at a
// time (a double press or double click never sends twice; the queue refuses a second call anyway).
(function () {
  "use strict";
  var form = document.getElementById("actions");
  if (!form) { return; }
  var sent = false;
  Array.prototype.forEach.call(document.querySelectorAll("form[action='/desk/act']"), function (f) {
    f.addEventListener("submit", function (ev) {
      if (sent) { ev.preventDefault(); return; }
      sent = true;
    });
  });
  var keys = { n: "call_next", r: "recall", x: "no_show", h: "hold", u: "resume", s: "start", f: "finish", t: "transfer" };
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) { return; }
    var key = ev.key.toLowerCase();
    var number = document.getElementById("number");
    if (key === "c" && number) { ev.preventDefault(); number.focus(); return; }
    var action = keys[key];
    if (!action || sent) { return; }
    var button = form.querySelector("button[value=\"" + action + "\"]");
    if (button) { ev.preventDefault(); form.requestSubmit(button); }
  });
})();
