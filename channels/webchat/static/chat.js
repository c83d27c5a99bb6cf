// RelayDesk web chat. Everything the server sends is rendered as text, never as HTML.
(function () {
  "use strict";
  var KEY = "relaydesk.chat";
  var log = document.getElementById("log");
  var statusEl = document.getElementById("status");
  var notice = document.getElementById("notice");
  var typing = document.getElementById("typing");
  var typingTimer = null;
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var WHO = { bot: "Assistant · 智能客服", agent: "Support team · 人工客服" };
  // The box is one line high: its hint in the visitor's language, not both side by side.
  var preferred = (navigator.languages || [navigator.language || ""]).filter(function (l) {
    return /^zh\b/i.test(l || "");
  })[0];
  var chinese = preferred !== undefined;
  // Taiwan, Hong Kong and Macau read traditional characters.
  var traditional = chinese && /^zh-(hant|tw|hk|mo)\b/i.test(preferred);
  var WORDS = traditional
    ? { ask: "請輸入您的問題…", send: "發送", online: "在線", connecting: "連線中…", reconnecting: "重新連線中…" }
    : chinese
      ? { ask: "请输入您的问题…", send: "发送", online: "在线", connecting: "连接中…", reconnecting: "重新连接中…" }
      : { ask: "Type your question…", send: "Send", online: "online", connecting: "connecting…", reconnecting: "reconnecting…" };
  if (chinese) { document.documentElement.lang = traditional ? "zh-TW" : "zh-CN"; }
  input.placeholder = WORDS.ask;
  document.getElementById("send").textContent = WORDS.send;

  // The newest message in view, once whatever it carries (stars, choices, a photo) is
  // in place: after a reload too, the survey is above the box, not under it.
  function stick() {
    log.scrollTop = log.scrollHeight;
  }

  // In the widget's iframe (/chat?embed=1) this page's own storage is third-party
  // storage, which browsers block or partition: the host page keeps the token
  // (widget.js hands it over in the URL fragment, we hand new ones back by
  // postMessage), and so does the shopper's signed identity, if the shop sends one.
  var hash = new URLSearchParams(location.hash.slice(1));
  var embedded = new URLSearchParams(location.search).get("embed") === "1";
  var parentOrigin = hash.get("parent") || "";
  var identity = null;
  try { identity = JSON.parse(hash.get("identity") || "null"); } catch (e) { identity = null; }
  if (embedded && history.replaceState) { history.replaceState(null, "", location.pathname + location.search); }

  var saved = {};
  if (!embedded) {
    try { saved = JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { saved = {}; }
  }
  var state = {
    token: (embedded ? hash.get("token") : saved.token) || null,
    epoch: (embedded ? hash.get("epoch") : saved.epoch) || null,
    lastSeq: 0, maxChars: 4000, resync: true
  };
  var pending = {};      // client_id -> {frame, el}: sent, not yet acknowledged
  var shown = {};        // stream frame ids already rendered
  var uploads = {};      // client_id -> bubble of files sent from this tab
  var ws = null, retry = 0;

  function save() {
    if (embedded) {
      if (parentOrigin && window.parent !== window) {
        window.parent.postMessage({ type: "relaydesk-token", token: state.token, epoch: state.epoch }, parentOrigin);
      }
      return;
    }
    try { localStorage.setItem(KEY, JSON.stringify({ token: state.token, epoch: state.epoch })); } catch (e) { /* private mode */ }
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  function setStatus(s, text) { statusEl.dataset.state = s; statusEl.textContent = text; }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function bubble(author, text) {
    var li = document.createElement("li");
    li.className = "msg " + author;
    if (WHO[author]) {
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = WHO[author];
      li.appendChild(who);
    }
    li.appendChild(document.createTextNode(text));
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }

  // A file from the team: a download link, and a photo shown from its bytes (the link
  // itself is always served as a download, never as a page).
  function fileLink(file) {
    var box = document.createElement("div");
    box.className = "file";
    var a = document.createElement("a");
    a.href = file.url;
    a.textContent = "📎 " + file.name;
    a.setAttribute("download", file.name);
    a.rel = "noopener";
    box.appendChild(a);
    if (/^image\/(jpeg|png|gif|webp)$/.test(file.content_type)) {
      fetch(file.url, { credentials: "omit" })
        .then(function (response) { return response.ok ? response.blob() : null; })
        .then(function (blob) {
          if (!blob) { return; }
          var img = document.createElement("img");
          img.className = "preview";
          img.alt = file.name;
          img.src = URL.createObjectURL(new Blob([blob], { type: file.content_type }));
          img.addEventListener("load", stick);
          box.appendChild(img);
        })
        .catch(function () { /* the link stays */ });
    }
    return box;
  }

  function render(frame) {
    draw(frame);
    stick();
  }

  function draw(frame) {
    if (shown[frame.id]) { return; }
    shown[frame.id] = true;
    if (frame.author === "customer" && frame.client_id && pending[frame.client_id]) {
      var mine = pending[frame.client_id].el;
      mine.classList.remove("pending", "failed");
      return;
    }
    // Its echo may come before or after the upload's own answer: shown once either way.
    if (frame.author === "customer" && frame.client_id && uploads[frame.client_id]) { return; }
    var attached = frame.attachments || [];
    // The customer's own files are named; files from the team come as links.
    var files = attached.filter(function (a) { return !a.url; })
      .map(function (a) { return "📎 " + a.name; });
    var li = bubble(frame.author, [frame.text].concat(files).filter(Boolean).join("\n"));
    li.dataset.kind = frame.kind;
    attached.filter(function (a) { return a.url; }).forEach(function (a) { li.appendChild(fileLink(a)); });
    if (frame.kind === "survey" && frame.choices && frame.choices.length) {
      li.appendChild(survey(frame.choices));
      return;
    }
    if (frame.choices && frame.choices.length) {
      var box = document.createElement("div");
      box.className = "choices";
      frame.choices.forEach(function (choice) {
        var b = document.createElement("button");
        b.type = "button";
        b.textContent = choice.label;
        b.addEventListener("click", function () {
          box.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
          submit({ type: "choice", choice_id: choice.id, label: choice.label }, choice.label);
        });
        box.appendChild(b);
      });
      li.appendChild(box);
    }
  }

  // The satisfaction survey: stars to tap (each a choice), then an optional comment.
  function survey(choices) {
    var box = document.createElement("div");
    box.className = "survey";
    var stars = document.createElement("div");
    stars.className = "stars";
    stars.setAttribute("role", "group");
    choices.forEach(function (choice, index) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "star";
      b.textContent = "★";
      b.title = choice.label;
      b.setAttribute("aria-label", choice.label);
      b.addEventListener("click", function () {
        stars.querySelectorAll("button").forEach(function (x, i) {
          x.disabled = true;
          x.classList.toggle("on", i <= index);
        });
        submit({ type: "choice", choice_id: choice.id, label: choice.label }, choice.label);
        box.appendChild(commentForm());
      });
      stars.appendChild(b);
    });
    box.appendChild(stars);
    return box;
  }

  function commentForm() {
    var f = document.createElement("form");
    f.className = "comment";
    var area = document.createElement("textarea");
    area.rows = 2;
    area.maxLength = 2000;
    area.placeholder = "Anything to add? · 还有什么想说的？";
    area.setAttribute("aria-label", "comment");
    var send = document.createElement("button");
    send.type = "submit";
    send.textContent = "Send · 发送";
    f.appendChild(area);
    f.appendChild(send);
    f.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = area.value.trim();
      if (!text) { return; }
      f.remove();
      submit({ type: "message", text: text, survey_comment: true }, text);
    });
    return f;
  }

  function submit(frame, text) {
    frame.client_id = newId();
    var el = bubble("customer", text);
    el.classList.add("pending");
    pending[frame.client_id] = { frame: frame, el: el };
    transmit(frame);
  }

  function transmit(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(frame)); }
  }

  function onFrame(frame) {
    if (frame.type === "welcome") {
      if (frame.epoch !== state.epoch) { state.lastSeq = 0; }
      state.epoch = frame.epoch;
      // The replay that follows may start past lastSeq + 1 (only the newest are replayed).
      state.resync = true;
      state.token = frame.visitor.token;
      state.maxChars = frame.max_text_chars;
      save();
      retry = 0;
      setStatus("online", WORDS.online);
      showNotice("");
      // Anything sent while offline goes again, under the same id: the server stores it once.
      Object.keys(pending).forEach(function (id) {
        if (pending[id].frame) { transmit(pending[id].frame); }
      });
      return;
    }
    if (typeof frame.seq === "number" && frame.type === "message") {
      if (frame.seq <= state.lastSeq) { return; }  // seen already: a re-delivery
      if (frame.seq > state.lastSeq + 1 && !state.resync) {
        // A frame went missing (sent to us while we were between sockets): reconnect,
        // and the server replays everything after lastSeq in order.
        ws.close();
        return;
      }
      state.resync = false;
      state.lastSeq = frame.seq;
      if (frame.author === "agent") { typing.hidden = true; }
      render(frame);
      return;
    }
    if (frame.type === "typing") {
      typing.hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typing.hidden = true; }, 6000);
      return;
    }
    if (frame.type === "ack") {
      var p = pending[frame.client_id];
      if (p) { p.el.classList.remove("pending"); delete pending[frame.client_id]; }
      return;
    }
    if (frame.type === "error") {
      var failed = frame.client_id && pending[frame.client_id];
      if (failed && frame.code !== "unavailable") {
        failed.el.classList.remove("pending");
        failed.el.classList.add("failed");
        delete pending[frame.client_id];
      }
      showNotice(frame.message);
    }
  }

  function connect() {
    setStatus("connecting", WORDS.connecting);
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/api/chat/ws");
    ws.onopen = function () {
      ws.send(JSON.stringify({
        type: "hello", token: state.token, last_seq: state.lastSeq, epoch: state.epoch, identity: identity
      }));
    };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
    };
    ws.onclose = function () {
      setStatus("offline", WORDS.reconnecting);
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, Math.min(30000, 250 * Math.pow(2, retry)));
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    if (text.length > state.maxChars) {
      showNotice("Messages are limited to " + state.maxChars + " characters.");
      return;
    }
    input.value = "";
    submit({ type: "message", text: text }, text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // A photo or file: sent over HTTP (the socket carries text), echoed back on the stream.
  var fileInput = document.getElementById("file");
  document.getElementById("attach").addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) { return; }
    if (!state.token) { showNotice("Still connecting; try again in a moment."); return; }
    var caption = input.value.trim();
    input.value = "";
    var clientId = newId();
    var el = bubble("customer", [caption, "📎 " + file.name].filter(Boolean).join("\n"));
    el.classList.add("pending");
    if (/^image\//.test(file.type)) {
      var img = document.createElement("img");
      img.className = "preview";
      img.alt = file.name;
      img.src = URL.createObjectURL(file);
      el.appendChild(img);
    }
    pending[clientId] = { frame: null, el: el };
    uploads[clientId] = el;
    var body = new FormData();
    body.append("token", state.token);
    body.append("client_id", clientId);
    body.append("caption", caption);
    body.append("file", file, file.name);
    fetch("/api/chat/upload", { method: "POST", body: body, credentials: "omit" })
      .then(function (response) {
        return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
      })
      .then(function (result) {
        el.classList.remove("pending");
        delete pending[clientId];
        if (!result.ok) {
          el.classList.add("failed");
          showNotice(result.answer.message || "The file could not be sent.");
        }
      })
      .catch(function () {
        el.classList.remove("pending");
        el.classList.add("failed");
        delete pending[clientId];
        showNotice("The file could not be sent; check the connection and try again.");
      });
  });

  connect();
})();
