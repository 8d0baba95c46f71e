/* Listen in to the call on this page: /ws/dashboard/calls/<id>/listen/?mode=mixed|caller|agent.
   Each binary frame: side (c/a), a pad byte, the sample rate (uint16 LE), the time the frame passed
   the call (ms, float64 LE), then pcm16 LE. Each side is scheduled on its own clock; Web Audio mixes
   them. window.listenStats keeps the frames heard, their energy per side, and the listen delay. */
"use strict";

(function () {
  const app = document.getElementById("call-app");
  const startButton = document.getElementById("listen-start");
  const stopButton = document.getElementById("listen-stop");
  const modeSelect = document.getElementById("listen-mode");
  const status = document.getElementById("listen-status");
  if (!app || !startButton) return;
  const stats = window.listenStats = {frames: 0, energy: {c: 0, a: 0}, samples: {c: 0, a: 0}, delays: []};
  let ws = null;
  let ctx = null;
  const cursors = {c: 0, a: 0};

  function say(text) { status.textContent = text; }
  function setListening(on) { startButton.hidden = on; stopButton.hidden = !on; modeSelect.disabled = false; }

  function play(buffer) {
    const side = String.fromCharCode(new DataView(buffer).getUint8(0));
    if (side !== "c" && side !== "a") return;
    const frame = Dash.playListenFrame(ctx, buffer, cursors);
    if (!frame) return;
    stats.frames += 1;
    stats.energy[frame.side] += frame.energy;
    stats.samples[frame.side] += frame.samples;
    stats.delays.push(Date.now() - frame.sentMs);
    if (stats.delays.length > 1000) stats.delays.shift();
  }

  function start() {
    if (ws) return;
    ctx = ctx || new AudioContext();
    ctx.resume();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${scheme}://${location.host}${app.dataset.wsPath}listen/?mode=${encodeURIComponent(modeSelect.value)}`);
    ws.binaryType = "arraybuffer";
    say("Connecting…");
    setListening(true);
    ws.onmessage = (message) => {
      if (typeof message.data !== "string") { play(message.data); return; }
      const data = JSON.parse(message.data);
      if (data.type === "listening") say(`Listening (${data.mode})`);
      else if (data.type === "ended" || data.type === "stopped" || data.type === "refused") say(data.reason);
    };
    ws.onclose = (event) => {
      ws = null;
      setListening(false);
      if (event.code !== 1000 && !status.textContent.includes("behind")) say(`Not listening (${event.code})`);
      else if (event.code === 1000 && status.textContent.startsWith("Listening")) say("Not listening");
    };
  }

  function stop() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({type: "stop"}));
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
  modeSelect.addEventListener("change", () => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({type: "mode", mode: modeSelect.value}));
  });
})();
