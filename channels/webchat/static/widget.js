// RelayDesk chat widget: <script src="https://support.example.com/widget.js" async></script>
// Adds a chat bubble; the chat itself runs in an iframe served by RelayDesk.
//
// The visitor's token is kept here, in the host page's own storage: browsers block or
// partition storage inside a third-party iframe, which would start a new chat on every
// reload. A signed-in shopper can be passed, signed by the shop's server (docs/webchat.md):
//   <script>window.RelayDesk = {identity: {id: "u-42", email: "li@example.com",
//                                           name: "Li Wei", hash: "<hex HMAC>"}};</script>
(function () {
  "use strict";
  if (window.__relaydeskWidget) { return; }
  window.__relaydeskWidget = true;
  var script = document.currentScript;
  var origin = script ? new URL(script.src, location.href).origin : location.origin;
  var KEY = "relaydesk.widget:" + origin;
  var settings = window.RelayDesk || {};

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  function store(value) {
    try { localStorage.setItem(KEY, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  var bubble = document.createElement("button");
  bubble.type = "button";
  bubble.id = "relaydesk-bubble";
  bubble.setAttribute("aria-label", "Chat with support");
  bubble.textContent = "💬";
  bubble.style.cssText = "position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;" +
    "border:0;background:#1f6feb;color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646";

  var frame = null;
  window.addEventListener("message", function (event) {
    // Only our iframe may hand us its token.
    if (!frame || event.origin !== origin || event.source !== frame.contentWindow) { return; }
    var data = event.data || {};
    if (data.type === "relaydesk-token" && typeof data.token === "string") {
      store({ token: data.token, epoch: data.epoch || null });
    }
  });

  bubble.addEventListener("click", function () {
    if (!frame) {
      var saved = load();
      var hash = new URLSearchParams();
      hash.set("parent", location.origin);
      if (saved.token) { hash.set("token", saved.token); }
      if (saved.epoch) { hash.set("epoch", saved.epoch); }
      if (settings.identity) { hash.set("identity", JSON.stringify(settings.identity)); }
      frame = document.createElement("iframe");
      frame.id = "relaydesk-frame";
      frame.title = "Support chat";
      frame.src = origin + "/chat?embed=1#" + hash.toString();
      frame.style.cssText = "position:fixed;right:20px;bottom:88px;width:370px;height:560px;max-height:calc(100vh - 110px);" +
        "max-width:calc(100vw - 40px);border:0;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);z-index:2147483647;background:#fff";
      document.body.appendChild(frame);
      return;
    }
    frame.hidden = !frame.hidden;
  });

  function mount() { document.body.appendChild(bubble); }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
