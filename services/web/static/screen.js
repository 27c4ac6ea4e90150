// The calling screen: one EventSource to this web process (which holds the hall's one
// WatchBoard stream); it reconnects by itself, and the screen says so meanwhile. Each new call
// or recall is announced: a chime, then 「请 … 号到 … 窗口办理」 in zh-CN where a voice exists.
(function () {
  "use strict";
  var board = document.querySelector("main.board");
  if (!board) { return; }
  var hall = board.getAttribute("data-hall");
  var statusEl = document.getElementById("status");
  var lastSeq = -1;
  var soundOn = false;
  var queue = [];
  var speaking = false;
  var offline = 0;
  var connections = 0;

  function text(el, t) { el.textContent = t; }
  function el(tag, t, cls) { var e = document.createElement(tag); if (t !== undefined) { e.textContent = t; } if (cls) { e.className = cls; } return e; }

  function render(s) {
    var now = document.getElementById("now");
    now.replaceChildren();
    if (s.recent.length > 0) {
      var c = s.recent[0];
      var p = el("p", undefined, "call newest");
      p.append("请 ", el("b", c.number), " 号到 ", el("b", c.window), " 窗口办理");
      now.append(p);
    }
    var recent = document.getElementById("recent");
    recent.replaceChildren();
    s.recent.forEach(function (c) {
      var li = el("li");
      li.append(el("b", c.number), " → " + c.window + " ", el("small", c.time));
      recent.append(li);
    });
    text(document.getElementById("missed"), s.missed.join("、"));
    var waits = document.getElementById("waits");
    waits.replaceChildren();
    Object.keys(s.waiting).forEach(function (k) {
      var tr = el("tr");
      var th = el("th", k); th.setAttribute("scope", "row");
      tr.append(th, el("td", String(s.waiting[k])), el("td", String(s.wait_minutes[k] || 0) + " 分钟"));
      waits.append(tr);
    });
    text(statusEl, s.connected ? "" : "正在重新连接…");
    if (!s.connected) { offline += 1; board.setAttribute("data-offline", String(offline)); }
  }

  function chime(then) {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx || !soundOn) { then(); return; }
      var ctx = new Ctx();
      [660, 880].forEach(function (f, i) {
        var o = ctx.createOscillator(); var g = ctx.createGain();
        o.frequency.value = f; o.connect(g); g.connect(ctx.destination);
        g.gain.setValueAtTime(0.25, ctx.currentTime + i * 0.35);
        g.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + i * 0.35 + 0.3);
        o.start(ctx.currentTime + i * 0.35); o.stop(ctx.currentTime + i * 0.35 + 0.32);
      });
      setTimeout(then, 800);
    } catch (e) { then(); }
  }

  function next() {
    if (speaking || queue.length === 0) { return; }
    speaking = true;
    var words = queue.shift();
    chime(function () {
      var done = function () { speaking = false; next(); };
      if (!("speechSynthesis" in window)) { done(); return; }
      var u = new SpeechSynthesisUtterance(words);
      u.lang = "zh-CN";
      var voices = window.speechSynthesis.getVoices ? window.speechSynthesis.getVoices() : [];
      var zh = voices.filter(function (v) { return /^zh/i.test(v.lang); })[0];
      if (zh) { u.voice = zh; }
      u.onend = done; u.onerror = done;
      window.speechSynthesis.speak(u);
      setTimeout(done, 8000);
    });
  }

  function announce(words) { if (words) { queue.push(words); next(); } }

  document.getElementById("sound").addEventListener("click", function () {
    soundOn = true;
    this.textContent = "声音已启用";
  });

  function tick() {
    var f = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "long", day: "numeric", weekday: "long", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
    text(document.getElementById("clock"), f.format(new Date()));
  }
  tick(); setInterval(tick, 1000);

  var source;
  function connect() {
    source = new EventSource("/halls/" + encodeURIComponent(hall) + "/events");
    source.addEventListener("board", function (m) {
      var u = JSON.parse(m.data);
      render(u.state);
      if (u.kind === "state") {
        // A connection's first message: the numbering of this web process from here on.
        lastSeq = u.state.seq;
        return;
      }
      if ((u.kind === "called" || u.kind === "recalled") && u.state.seq > lastSeq) {
        announce(u.announcement);
      }
      lastSeq = Math.max(lastSeq, u.state.seq);
    });
    source.onopen = function () {
      connections += 1;
      board.setAttribute("data-connections", String(connections));
    };
    source.onerror = function () {
      text(statusEl, "正在重新连接…");
      offline += 1;
      board.setAttribute("data-offline", String(offline));
      if (source.readyState === EventSource.CLOSED) { setTimeout(connect, 3000); }
    };
  }
  connect();
})();
