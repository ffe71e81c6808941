/* The helpdesk chat widget, for any site that a brand allows:
   <script src="https://help.example/widget.js" data-brand="acme" async></script>
   No framework, no build step. It draws inside a shadow root (no styles leak in or out) and
   puts every text in with textContent. API: see "Chat widget" in the README. */
(() => {
  const me = document.currentScript;
  const brand = me && me.dataset.brand;
  if (!brand || window["helpdesk-chat-" + brand]) return;
  window["helpdesk-chat-" + brand] = 1;
  const api = me.src.replace(/\/widget\.js([?#].*)?$/, "") + "/widget/" + encodeURIComponent(brand);
  const KEY = "helpdesk-chat:" + api;
  const store = (value) => {
    try {
      if (value === undefined) return localStorage.getItem(KEY);
      value ? localStorage.setItem(KEY, value) : localStorage.removeItem(KEY);
    } catch (e) { /* storage switched off: the chat lasts as long as the page */ }
  };
  let token = store(), status, source, reference, after = 0, lastTyping = 0, typingTimer, visitor = {};
  const shown = new Set(), pending = {};

  const el = (tag, props, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  };
  const errorLine = () => {
    const node = el("p", {className: "err"});
    node.setAttribute("role", "alert");
    return node;
  };

  async function call(method, path, body) {
    const headers = {};
    if (body) headers["Content-Type"] = "application/json";
    if (token && path != "/status") headers["X-Visitor-Token"] = token;
    let response, data = {};
    try {
      response = await fetch(api + path, {method, headers, body: body && JSON.stringify(body)});
      if (response.status != 204) data = await response.json();
    } catch (e) {
      if (!response) throw Object.assign(new Error("We could not reach the chat; please try again."), {status: 0});
    }
    if (!response.ok) {
      throw Object.assign(new Error(data.error || "Something went wrong; please try again."),
        {status: response.status, code: data.code, field: data.field});
    }
    return data;
  }

  const host = document.createElement("helpdesk-chat");
  const root = host.attachShadow({mode: "open"});
  const panel = el("section", {className: "panel", hidden: true});
  const title = el("strong");
  const body = el("div", {className: "body"});
  const foot = el("div", {className: "foot", hidden: true});
  const launcher = el("button", {className: "launch", type: "button"});
  const closeButton = el("button", {type: "button", textContent: "×", title: "Close"});
  closeButton.setAttribute("aria-label", "Close the chat");
  panel.setAttribute("aria-label", "Chat");
  panel.append(el("header", {}, title, closeButton), body, foot);
  root.append(panel, launcher);

  const open = (yes) => {
    panel.hidden = !yes;
    launcher.setAttribute("aria-expanded", yes ? "true" : "false");
  };
  launcher.onclick = () => open(panel.hidden);
  closeButton.onclick = () => open(false);

  function style(color) {
    if (!/^#[0-9a-f]{6}$/i.test(color)) color = "#2f5fd0";
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
    const ink = r * 0.299 + g * 0.587 + b * 0.114 > 160 ? "#111" : "#fff";
    const css = `:host{all:initial;position:fixed;z-index:2147483000;right:16px;bottom:16px;display:flex;flex-direction:column;align-items:flex-end;gap:10px;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330}
*{box-sizing:border-box;font:inherit;color:inherit}
[hidden]{display:none!important}
button{cursor:pointer;border:0;border-radius:8px;padding:8px 14px;background:${color};color:${ink}}
.launch{border-radius:22px;padding:10px 18px;box-shadow:0 4px 14px rgba(0,0,0,.25)}
.panel{width:min(360px,calc(100vw - 32px));height:min(520px,calc(100vh - 90px));background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}
header{background:${color};color:${ink};padding:10px 14px;display:flex;justify-content:space-between;align-items:center}
header button{padding:0 4px;font-size:20px;line-height:1}
.body{flex:1;overflow:auto;padding:12px;display:flex;flex-direction:column;gap:8px}
p{margin:0}.note{color:#555}.err{color:#b42318}
form{display:flex;flex-direction:column;gap:8px}
label{display:flex;flex-direction:column;gap:2px;color:#555;font-size:13px}
input,textarea{border:1px solid #c9ced8;border-radius:6px;padding:7px;width:100%;background:#fff;color:#1d2330}
[aria-invalid=true]{border-color:#b42318}
textarea{resize:vertical;min-height:60px}
ol{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:6px}
li{max-width:85%;align-self:flex-start;padding:6px 10px;border-radius:10px;background:#eef0f4;white-space:pre-wrap;overflow-wrap:anywhere}
li.me{align-self:flex-end;background:${color};color:${ink}}
li.sending{opacity:.6}
li small{display:block;opacity:.75;font-size:11px}
.typing{color:#666;font-style:italic;min-height:1.4em}
.foot{border-top:1px solid #e3e6eb;padding:8px;display:flex;flex-direction:column;gap:6px}
.row{display:flex;gap:6px;align-items:flex-end}.row textarea{min-height:40px}
.link{background:none;color:#555;padding:0;text-decoration:underline;align-self:flex-start;font-size:12px}`;
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.prepend(el("style", {textContent: css}));
    }
  }

  function field(label, name, type, value) {
    const input = el(type == "textarea" ? "textarea" : "input", {name, value: value || "", required: true});
    if (type != "textarea") input.type = type;
    return el("label", {}, label, input);
  }

  // The start form: a live chat when someone is online and it is open hours, else a message.
  function showStart(message) {
    const offline = status.show != "chat";
    const error = errorLine();
    const form = el("form", {noValidate: true},  // the server's errors say what is wrong, in words
      field("Your name", "name", "text", visitor.name),
      field("Your email", "email", "email", visitor.email),
      field(offline ? "Your message" : "How can we help?", "message", "textarea", message),
      error, el("button", {type: "submit", textContent: offline ? "Send message" : "Start chat"}));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const values = Object.fromEntries(new FormData(form));
      visitor = {name: values.name, email: values.email};
      form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
      form.lastChild.disabled = true;
      try {
        const result = await call("POST", offline ? "/offline" : "/chats",
          {...values, page_url: location.href.slice(0, 2000)});
        token = result.token;
        store(token);
        showConversation(result);
      } catch (e) {
        form.lastChild.disabled = false;
        if (e.code == "unavailable") {  // everyone left in the meantime: offer the message form
          status.show = "offline";
          status.notice = e.message;
          launcher.textContent = "Leave us a message";
          return showStart(values.message);
        }
        error.textContent = e.message;
        if (form.elements[e.field]) form.elements[e.field].setAttribute("aria-invalid", "true");
      }
    };
    foot.hidden = true;
    body.replaceChildren(...(offline ? [el("p", {className: "note", textContent: status.notice})] : []), form);
  }

  const list = el("ol");
  const typing = el("p", {className: "typing"});
  const input = el("textarea", {rows: 2, placeholder: "Write a message…"});
  const sendError = errorLine();
  input.setAttribute("aria-label", "Write a message");
  typing.setAttribute("aria-live", "polite");

  function bubble(message) {
    const node = el("li", {className: message.from == "visitor" ? "me" : ""},
      el("small", {textContent: message.from == "visitor" ? "You" : message.name}), message.text);
    list.append(node);
    node.scrollIntoView({block: "end"});
    return node;
  }

  function add(message) {
    if (shown.has(message.id)) return;
    shown.add(message.id);
    after = Math.max(after, message.id);
    const mine = message.client_id && pending[message.client_id];
    if (mine) {
      mine.classList.remove("sending");
      delete pending[message.client_id];
    } else {
      bubble(message);
    }
    if (message.from == "agent") typing.textContent = "";
  }

  function showConversation(transcript) {
    visitor = transcript.visitor;
    reference = transcript.reference;
    list.replaceChildren();
    shown.clear();
    transcript.messages.forEach(add);
    body.replaceChildren(list, typing);
    if (transcript.state == "live") {
      foot.hidden = false;
      listen();
    } else {
      ended();
    }
  }

  const endNote = el("p", {className: "note"});
  const again = el("button", {type: "button", className: "link", textContent: "Start a new conversation"});
  again.onclick = () => {
    token = null;
    store(null);
    refresh();
  };

  // Said once, whether the visitor ended it, the stream said so, or it ended long ago.
  function ended() {
    if (source) source.close();
    foot.hidden = true;
    typing.textContent = "";
    if (endNote.isConnected) return;
    endNote.textContent = `Thank you! We will answer by email at ${visitor.email} (reference ${reference}).`;
    body.append(endNote, again);
  }

  function listen() {
    if (source) source.close();
    source = new EventSource(`${api}/chats/stream?token=${encodeURIComponent(token)}&after=${after}`);
    source.addEventListener("message", (e) => add(JSON.parse(e.data)));
    source.addEventListener("state", () => ended());
    source.addEventListener("typing", (e) => {
      typing.textContent = (JSON.parse(e.data).name || status.name) + " is typing…";
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => { typing.textContent = ""; }, 6000);
    });
  }

  async function send() {
    const text = input.value.trim();
    if (!text) return;
    // The same id again after a failure: a message that did arrive is not stored twice.
    const id = input.dataset.id || Math.random().toString(36).slice(2) + Date.now().toString(36);
    const node = pending[id] = bubble({from: "visitor", text});
    node.classList.add("sending");
    input.value = "";
    sendError.textContent = "";
    try {
      add((await call("POST", "/chats/messages", {text, client_id: id})).message);
      delete input.dataset.id;
    } catch (e) {
      node.remove();
      delete pending[id];
      input.value = text;
      input.dataset.id = id;
      sendError.textContent = e.message;
      if (e.code == "ended") ended();
    }
  }

  const sendButton = el("button", {type: "button", textContent: "Send"});
  const endButton = el("button", {type: "button", className: "link", textContent: "End chat"});
  sendButton.onclick = send;
  input.onkeydown = (e) => {
    if (e.key == "Enter" && !e.shiftKey) {
      e.preventDefault();
      send();
    }
  };
  input.oninput = () => {
    if (Date.now() - lastTyping > 2500) {
      lastTyping = Date.now();
      call("POST", "/chats/typing").catch(() => {});
    }
  };
  endButton.onclick = async () => {
    try {
      await call("POST", "/chats/end");
      ended();
    } catch (e) {
      sendError.textContent = e.message;
    }
  };
  foot.append(el("div", {className: "row"}, input, sendButton), sendError, endButton);

  async function refresh() {
    try {
      status = await call("GET", "/status");
    } catch (e) {
      return;  // this site may not use the chat: show nothing
    }
    style(status.color);
    title.textContent = status.name;
    launcher.textContent = status.show == "chat" ? "Chat with us" : "Leave us a message";
    if (!host.isConnected) (document.body || document.documentElement).append(host);
    if (token) {
      try {
        const transcript = await call("GET", "/chats/transcript");
        showConversation(transcript);
        if (transcript.state == "live") open(true);
        return;
      } catch (e) {
        if (e.status == 403 || e.status == 404) {  // not this site's, or gone: start afresh
          token = null;
          store(null);
        }
      }
    }
    showStart();
  }

  open(false);
  refresh();
})();
