// The live view: one WebSocket of frames (binary messages, one JPEG each) shown in an <img>.
// The page's own address names the session and carries the tenant and key (?tenant=&api_key=);
// the socket is that address plus /ws. Nothing is sent to the server.
(function () {
  "use strict";

  const screen = document.getElementById("screen");
  const status = document.getElementById("live-status");
  const caption = document.getElementById("live-caption");
  let frames = 0;
  let shown = null; // the blob: URL on screen
  let started = 0;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  screen.addEventListener("load", () => {
    frames += 1;
    document.body.dataset.frames = String(frames);
    const seconds = (performance.now() - started) / 1000;
    caption.textContent = screen.naturalWidth + "\u00d7" + screen.naturalHeight + ", " + frames + " frames" +
      (seconds > 1 ? ", " + (frames / seconds).toFixed(1) + " a second" : "");
  });

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const path = location.pathname.replace(/\/+$/, "") + "/ws";
  const socket = new WebSocket(scheme + "//" + location.host + path + location.search);
  socket.binaryType = "blob";
  socket.addEventListener("open", () => {
    started = performance.now();
    setStatus("live", "Live. Frames come when the screen changes.");
  });
  socket.addEventListener("message", (msg) => {
    if (!(msg.data instanceof Blob)) return;
    const previous = shown;
    shown = URL.createObjectURL(new Blob([msg.data], { type: "image/jpeg" }));
    screen.src = shown;
    if (previous) URL.revokeObjectURL(previous);
  });
  socket.addEventListener("close", (ev) => {
    if (ev.code === 1000) {
      setStatus("ended", "The session ended.");
    } else if (ev.code === 1006 && !started) {
      setStatus("error", "The live view was refused (the session ended, or has its most viewers).");
    } else {
      setStatus("error", "Disconnected (" + ev.code + (ev.reason ? ": " + ev.reason : "") + ").");
    }
  });
  document.body.dataset.ready = "true";
})();
