// RelayDesk inbox: live updates, presence, SLA countdowns, canned answers.
// Server-rendered HTML (escaped by the server) is the only markup inserted;
// everything else goes in as text.
"use strict";

(function () {
  const page = document.body.dataset.page;
  if (page === "login") return;
  const conversationId = Number(document.body.dataset.conversation || 0);
  const me = (document.querySelector(".agent-name") || {}).textContent || "";
  let socket = null;
  let retry = 500;

  function debounce(fn, ms) {
    let timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  const refreshQueue = debounce(async function () {
    const response = await fetch("/inbox/queue" + location.search, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    const rows = document.getElementById("queue-rows");
    if (rows) rows.innerHTML = data.rows;
    if (selected >= 0) select(selected);
    for (const [tab, count] of Object.entries(data.counts)) {
      const badge = document.querySelector('[data-count="' + tab + '"]');
      if (badge) badge.textContent = String(count);
    }
    tick();
    document.body.dataset.refreshed = String(Date.now());
  }, 150);

  const refreshConversation = debounce(async function () {
    const response = await fetch("/inbox/c/" + conversationId + "/fragment", {
      credentials: "same-origin",
    });
    if (!response.ok) return;
    const data = await response.json();
    // The reply form (and its draft, and the id of what the agent has seen) stays.
    document.getElementById("messages").innerHTML = data.messages;
    document.getElementById("conversation-head").innerHTML = data.head;
    tick();
    document.body.dataset.refreshed = String(Date.now());
  }, 150);

  function showPresence(frame) {
    const box = document.getElementById("presence");
    if (!box || frame.conversation_id !== conversationId) return;
    const others = (names) => names.filter((n) => n !== me);
    const typing = others(frame.typing);
    const viewing = others(frame.viewing).filter((n) => !typing.includes(n));
    const parts = [];
    for (const name of typing) parts.push(name + " " + box.dataset.typing);
    for (const name of viewing) parts.push(name + " " + box.dataset.viewing);
    box.textContent = parts.join(" · ");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/inbox/ws");
    socket.addEventListener("open", function () {
      retry = 500;
      document.body.dataset.live = "1";
      if (conversationId) send({ type: "viewing", conversation_id: conversationId });
    });
    socket.addEventListener("message", function (event) {
      const frame = JSON.parse(event.data);
      if (frame.type === "presence") return showPresence(frame);
      if (frame.type === "sla_alert" || frame.type === "agent_alert") announce(frame);
      if (page === "queue") return refreshQueue();
      if (page === "conversation" && frame.conversation_id === conversationId) {
        refreshConversation();
      }
    });
    socket.addEventListener("close", function () {
      document.body.dataset.live = "0";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    });
  }

  // Alerts: promises about to be missed or missed, conversations handed to me, my
  // reminders, low ratings (for admins). A line on the page, and a browser notification
  // when the agent allowed them.
  const myId = Number(document.body.dataset.agent || 0);
  const isAdmin = document.body.dataset.admin === "1";
  const alerts = document.getElementById("alerts");

  function announce(frame) {
    let text;
    if (frame.type === "sla_alert") {
      if (frame.assignee_id && frame.assignee_id !== myId && !isAdmin) return;
      text = "#" + frame.conversation_id + " " + (alerts.dataset[frame.level] || frame.level) +
        " · " + frame.metric.replace("_", " ");
    } else {
      if (frame.agent_id === null ? !isAdmin : frame.agent_id !== myId) return;
      text = "#" + frame.conversation_id + " " + frame.text;
    }
    const line = document.createElement("a");
    line.className = "alert alert-" + (frame.level || frame.kind);
    line.href = "/inbox/c/" + frame.conversation_id;
    line.textContent = text;
    alerts.prepend(line);
    while (alerts.children.length > 5) alerts.lastElementChild.remove();
    if ("Notification" in window && Notification.permission === "granted") {
      const note = new Notification("RelayDesk", { body: text, tag: frame.type + frame.conversation_id });
      note.onclick = function () { window.focus(); location.href = line.href; };
    }
  }

  const toggle = document.getElementById("notify-toggle");
  if (toggle && "Notification" in window && Notification.permission === "default") {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      Notification.requestPermission().then(function () { toggle.hidden = true; });
    });
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  // SLA countdowns: green, amber in the last quarter of the promise, red once past.
  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll(".countdown")) {
      const due = Date.parse(el.dataset.due);
      const start = Date.parse(el.dataset.start);
      const left = due - now;
      const total = Math.max(due - start, 1000);
      el.classList.toggle("sla-late", left < 0);
      el.classList.toggle("sla-near", left >= 0 && left < total / 4);
      el.classList.toggle("sla-ok", left >= total / 4);
      const minutes = Math.floor(Math.abs(left) / 60000);
      el.textContent =
        (left < 0 ? "-" : "") + Math.floor(minutes / 60) + ":" + String(minutes % 60).padStart(2, "0");
    }
  }
  setInterval(tick, 1000);

  // Typing presence and canned answers on the conversation page.
  const text = document.getElementById("reply-text");
  if (text) {
    let last = 0;
    text.addEventListener("input", function () {
      if (Date.now() - last > 2000) {
        last = Date.now();
        send({ type: "typing" });
      }
    });
  }
  // Files for the reply: text becomes optional, and too much is said before sending.
  const files = document.getElementById("reply-files");
  if (files && text) {
    files.addEventListener("change", function () {
      let total = 0;
      for (const file of files.files) total += file.size;
      const tooLarge = total > Number(files.dataset.maxBytes);
      files.setCustomValidity(tooLarge ? files.dataset.tooLarge : "");
      if (tooLarge) files.reportValidity();
      text.required = files.files.length === 0;
    });
  }
  const search = document.getElementById("canned-search");
  const results = document.getElementById("canned-results");
  if (search && results && text) {
    search.addEventListener(
      "input",
      debounce(async function () {
        const q = search.value.trim();
        results.replaceChildren();
        if (!q) return;
        const conversation = document.body.dataset.conversation || "";
        const response = await fetch(
          "/inbox/kb?q=" + encodeURIComponent(q) + "&conversation=" + encodeURIComponent(conversation),
          { credentials: "same-origin" }
        );
        if (!response.ok) return;
        for (const item of (await response.json()).results) {
          const li = document.createElement("li");
          const button = document.createElement("button");
          button.type = "button";
          button.className = "small canned-pick canned-" + item.kind;
          button.textContent =
            item.kind === "kb" ? item.title + " (" + item.score + ")" : "★ " + item.title;
          button.addEventListener("click", function () {
            text.value = text.value ? text.value + "\n\n" + item.answer : item.answer;
            if (item.macro) chooseMacro(item);
            results.replaceChildren();
            search.value = "";
            text.focus();
          });
          li.append(button);
          results.append(li);
        }
      }, 200)
    );
  }
  // Resolved conversations like this one, each reply one click from the reply box.
  const similar = document.getElementById("similar");
  if (similar && text) loadSimilar(similar);
  async function loadSimilar(panel) {
    const conversation = document.body.dataset.conversation || "";
    let found;
    try {
      const response = await fetch("/inbox/c/" + encodeURIComponent(conversation) + "/similar", {
        credentials: "same-origin",
      });
      if (!response.ok) return;
      found = await response.json();
    } catch (error) {
      return;
    }
    const list = document.getElementById("similar-cases");
    list.replaceChildren();
    for (const item of found.similar) {
      const li = document.createElement("li");
      li.className = "similar-case";
      li.dataset.conversation = String(item.conversation_id);
      const asked = document.createElement("p");
      asked.className = "similar-question";
      const link = document.createElement("a");
      link.href = "/inbox/c/" + item.conversation_id;
      link.textContent = "#" + item.conversation_id;
      asked.append(panel.dataset.asked + " (", link, "): " + item.question);
      const replied = document.createElement("p");
      replied.className = "similar-reply";
      replied.textContent = panel.dataset.replied + ": " + item.suggestion;
      const use = document.createElement("button");
      use.type = "button";
      use.className = "small similar-use";
      use.textContent = panel.dataset.use;
      use.addEventListener("click", function () {
        text.value = text.value ? text.value + "\n\n" + item.suggestion : item.suggestion;
        text.focus();
        text.setSelectionRange(text.value.length, text.value.length);
      });
      li.append(asked, replied, use);
      list.append(li);
    }
    const how = document.getElementById("similar-how");
    if (how && found.reads_meaning === false) {
      how.textContent = panel.dataset.byWords;
      how.hidden = false;
    }
    panel.hidden = found.similar.length === 0;
  }

  // A macro's actions (tags, priority, resolve) go with the reply it filled in.
  function chooseMacro(item) {
    const field = document.getElementById("reply-macro");
    const note = document.getElementById("macro-note");
    if (!field || !note) return;
    field.value = String(item.macro);
    const a = item.actions;
    const parts = [];
    if (a.tags.length) parts.push("+" + a.tags.join(", +"));
    if (a.priority) parts.push(a.priority);
    if (a.resolve) parts.push("✓");
    note.textContent = note.dataset.label + " — " + item.title + ": " + parts.join(" · ");
    note.hidden = false;
  }

  // Keyboard shortcuts (listed on the "?" overlay). Never while typing in a field, and
  // never with Ctrl/Alt/Meta, except Ctrl+Enter to send and Esc to leave the field.
  const help = document.getElementById("shortcuts");
  const helpButton = document.getElementById("shortcuts-open");
  if (help && helpButton) helpButton.addEventListener("click", () => help.showModal());
  let selected = -1;
  function rows() {
    return Array.from(document.querySelectorAll("#queue-rows tr.row"));
  }
  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    all[selected].scrollIntoView({ block: "nearest" });
  }
  function press(id) {
    const element = document.getElementById(id);
    if (element) element.click();
    return Boolean(element);
  }
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    const typing =
      target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
    if (typing) {
      if (event.key === "Escape") target.blur();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.id === "reply-text") {
        event.preventDefault();
        press("send-reply");
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || (help && help.open)) return;
    let done = true;
    switch (event.key) {
      case "?":
        if (help) help.showModal();
        break;
      case "j":
        select(selected + 1);
        break;
      case "k":
        select(selected - 1);
        break;
      case "o":
      case "Enter": {
        const row = rows()[selected];
        const link = row && row.querySelector("a");
        if (link) link.click();
        else done = false;
        break;
      }
      case "n":
        location.href = "/inbox/next" + (conversationId ? "?after=" + conversationId : "");
        break;
      case "c":
        done = press("claim");
        break;
      case "e":
        done = press("resolve");
        break;
      case "r": {
        const box = document.getElementById("reply-text");
        if (box) box.focus();
        done = Boolean(box);
        break;
      }
      case "/": {
        const box = document.getElementById("canned-search");
        if (box) box.focus();
        done = Boolean(box);
        break;
      }
      default:
        done = false;
    }
    if (done) event.preventDefault();
  });

  // Photos customers sent, shown under their link. The file is only ever served as a
  // download; the page turns the bytes into an image itself (a blob: URL), so nothing
  // a customer sent is rendered from our origin as a document.
  async function previewImages() {
    for (const link of document.querySelectorAll("a[data-preview]:not([data-previewed])")) {
      link.dataset.previewed = "1";
      try {
        const response = await fetch(link.href, { credentials: "same-origin" });
        if (!response.ok) continue;
        const blob = new Blob([await response.blob()], { type: link.dataset.preview });
        const img = document.createElement("img");
        img.className = "attachment-preview";
        img.alt = link.textContent;
        img.src = URL.createObjectURL(blob);
        link.after(img);
      } catch (error) {
        // No preview; the download link stays.
      }
    }
  }
  previewImages();
  new MutationObserver(previewImages).observe(document.body, { childList: true, subtree: true });

  connect();
  tick();
})();
