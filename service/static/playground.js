// The inndx sessions playground: one WebSocket, frames built from the forms, replies rendered.
// Plain browser JavaScript, no build step, nothing loaded from elsewhere. Everything the server
// or a page sends is shown with textContent, never parsed as HTML.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const WS_PATH = "/v1/sessions/ws";
  const LOG_STRING_LIMIT = 160; // long strings (bodies, screenshots) are shortened in the log

  let socket = null;
  let nextId = 1;
  const pending = new Map(); // id -> action, for rendering the reply

  // ---------------------------------------------------------------- the frame log
  function shorten(value) {
    if (typeof value === "string" && value.length > LOG_STRING_LIMIT) {
      return value.slice(0, LOG_STRING_LIMIT) + "\u2026 (" + value.length + " chars)";
    }
    if (Array.isArray(value)) return value.map(shorten);
    if (value && typeof value === "object") {
      const out = {};
      for (const [k, v] of Object.entries(value)) out[k] = shorten(v);
      return out;
    }
    return value;
  }

  function logLine(kind, text) {
    const item = document.createElement("li");
    item.className = kind;
    item.textContent = text;
    const log = $("log");
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function logFrame(kind, frame) {
    const item = logLine(kind, JSON.stringify(shorten(frame)));
    if (frame && (frame.type === "error" || frame.type === "fatal")) item.classList.add("bad");
  }

  // ---------------------------------------------------------------- connection
  function setStatus(state, text) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = text;
  }

  function setConnected(connected) {
    $("open").disabled = connected;
    $("disconnect").disabled = !connected;
    $("send").disabled = !connected;
  }

  function intOrNull(id) {
    const text = $(id).value.trim();
    return text === "" ? null : Number(text);
  }

  function openFrame() {
    const frame = {};
    const kind = $("client").value;
    const width = intOrNull("viewport-width");
    const height = intOrNull("viewport-height");
    frame.client = width !== null || height !== null ? { kind: kind, viewport: { width: width, height: height } } : kind;
    const timeout = $("timeout").value.trim();
    if (timeout) frame.timeout = timeout;
    const maxRedirects = intOrNull("max-redirects");
    if (maxRedirects !== null) frame.max_redirects = maxRedirects;
    const maxRetries = intOrNull("max-retries");
    if (maxRetries !== null) frame.max_retries = maxRetries;
    const extra = $("open-extra").value.trim();
    if (extra) Object.assign(frame, JSON.parse(extra)); // a syntax error is reported by the caller
    return frame;
  }

  function credentials() {
    const query = new URLSearchParams({ tenant: $("tenant").value.trim() });
    const key = $("api-key").value;
    if (key) query.set("api_key", key);
    return query.toString();
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + WS_PATH + "?" + credentials();
  }

  // A browser session's screen, live, in another tab (the same tenant and key, in the query).
  function showLiveLink(sessionId, kind) {
    const link = $("live-link");
    if (sessionId && kind !== "standard") {
      link.href = WS_PATH.replace(/ws$/, "") + encodeURIComponent(sessionId) + "/live?" + credentials();
      link.hidden = false;
    } else {
      link.removeAttribute("href");
      link.hidden = true;
    }
  }

  function connect(event) {
    event.preventDefault();
    let frame;
    try {
      frame = openFrame();
    } catch (err) {
      setStatus("error", "The extra open fields are not a JSON object: " + err.message);
      return;
    }
    nextId = 1;
    pending.clear();
    let opened = false;
    setStatus("connecting", "Connecting\u2026");
    setConnected(true);
    $("send").disabled = true;
    socket = new WebSocket(socketUrl());
    socket.addEventListener("open", () => {
      logLine("note", "socket open");
      logFrame("sent", frame);
      socket.send(JSON.stringify(frame));
    });
    socket.addEventListener("message", (msg) => {
      let reply;
      try {
        reply = JSON.parse(msg.data);
      } catch (err) {
        logLine("note", "not JSON: " + String(msg.data).slice(0, 200));
        return;
      }
      logFrame("received", reply);
      if (reply.session_id) {
        opened = true;
        const kind = typeof frame.client === "string" ? frame.client : frame.client.kind;
        setStatus("open", "Session " + reply.session_id + " open (" + kind + ").");
        showLiveLink(reply.session_id, kind);
        $("send").disabled = false;
        return;
      }
      render(reply);
    });
    socket.addEventListener("close", (ev) => {
      logLine("note", "socket closed: " + ev.code + (ev.reason ? " " + ev.reason : ""));
      if (!opened && ev.code === 1006) {
        setStatus("error", "The upgrade was refused (unknown tenant, wrong API key, quota, or the server does not take the tenant in the query: INNDX_TENANT_QUERY=1).");
      } else if (!opened) {
        setStatus("error", "Closed before the session opened (" + ev.code + ").");
      } else {
        setStatus("idle", "Not connected (the last session closed with " + ev.code + ").");
      }
      setConnected(false);
      showLiveLink(null);
      socket = null;
    });
  }

  function disconnect() {
    if (socket) socket.close(1000, "playground");
  }

  // ---------------------------------------------------------------- actions
  function headerPairs(text) {
    const pairs = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      const at = line.indexOf(":");
      pairs.push(at < 0 ? [line.trim(), ""] : [line.slice(0, at).trim(), line.slice(at + 1).trim()]);
    }
    return pairs;
  }

  function actionFrame(action) {
    if (action === "frame") {  // any action, as its JSON frame: the service checks it like any other
      const given = JSON.parse($("frame").value);
      if (given === null || typeof given !== "object" || Array.isArray(given)) throw new Error("the frame is not a JSON object");
      return Object.assign({}, given, { id: nextId++ });
    }
    const frame = { action: action, id: nextId++ };
    if (action === "goto") {
      frame.url = $("url").value.trim();
      if ($("method").value !== "GET") frame.method = $("method").value;
      const agent = $("user-agent").value.trim();
      if (agent) frame.user_agent = agent;
      const headers = headerPairs($("headers").value);
      if (headers.length) frame.headers = headers;
    } else if (action === "click" || action === "fill") {
      frame.selector = $("selector").value;
      if (action === "fill") frame.value = $("value").value;
    } else if (action === "evaluate") {
      frame.script = $("script").value;
    }
    return frame;
  }

  function send(event) {
    event.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    let frame;
    try {
      frame = actionFrame($("action").value);
    } catch (error) {
      const box = $("action-error");
      box.hidden = false;
      box.textContent = "not sent: " + error.message;
      return;
    }
    pending.set(frame.id, frame.action);
    logFrame("sent", frame);
    socket.send(JSON.stringify(frame));
  }

  function showFields() {
    const action = $("action").value;
    for (const label of document.querySelectorAll("#action-form label[data-for]")) {
      label.hidden = !label.dataset.for.split(" ").includes(action);
    }
  }

  // ---------------------------------------------------------------- results
  function fillRows(tableId, rows) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const cell of row) tr.insertCell().textContent = cell === null || cell === undefined ? "" : String(cell);
    }
  }

  function base64Bytes(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  // A goto replaces the tables (and hides an older screenshot); a screenshot shows beside them;
  // content and evaluate results replace the text box.
  function show(id) {
    $(id).hidden = false;
    if (id === "goto-result") $("screenshot-result").hidden = true;
    if (id !== "other-result") $("other-result").hidden = true;
    $("action-error").hidden = true;
  }

  function renderGoto(reply) {
    show("goto-result");
    $("goto-status").textContent = String(reply.status_code);
    $("goto-url").textContent = reply.url;
    $("goto-content-type").textContent = reply.content_type || "(none)";
    $("goto-body-size").textContent = reply.body ? base64Bytes(reply.body).length + " bytes" : "empty";
    fillRows("goto-headers", reply.headers);
    fillRows("goto-cookies", reply.cookies.map((c) => [c.name, c.value, c.domain, c.path, c.expires, c.http_only, c.secure, c.same_site]));
    fillRows("goto-redirects", reply.redirects.map((r, i) => [i + 1, r.url, r.location, r.side, r.type]));
  }

  function renderText(text) {
    show("other-result");
    $("result-text").textContent = text;
  }

  function render(reply) {
    const action = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.type === "error" || reply.type === "fatal") {
      const box = $("action-error");
      box.hidden = false;
      box.textContent = reply.type + " " + reply.code + ": " + reply.message + (action ? " (" + action + ")" : "");
      return;
    }
    if (reply.action === "goto") {
      renderGoto(reply);
    } else if (reply.action === "screenshot") {
      show("screenshot-result");
      if (reply.screenshot) {
        $("screenshot").src = "data:image/png;base64," + reply.screenshot;
        $("screenshot-caption").textContent = base64Bytes(reply.screenshot).length + " bytes, PNG";
      } else {
        $("screenshot").removeAttribute("src");
        $("screenshot-caption").textContent = "no screenshot";
      }
    } else if (reply.action === "content") {
      renderText(reply.content ? new TextDecoder().decode(base64Bytes(reply.content)) : "");
    } else if (reply.action === "evaluated") {
      renderText(JSON.stringify(reply.result, null, 2));
    } else {
      renderText(JSON.stringify(reply));
    }
  }

  // ---------------------------------------------------------------- wiring
  $("open-form").addEventListener("submit", connect);
  $("disconnect").addEventListener("click", disconnect);
  $("action-form").addEventListener("submit", send);
  $("action").addEventListener("change", showFields);
  $("clear-log").addEventListener("click", () => $("log").replaceChildren());
  showFields();
  document.body.dataset.ready = "true";
})();
