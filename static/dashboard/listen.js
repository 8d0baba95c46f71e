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
  const MAX_AHEAD_S = 0.5; // a side that queued more than this is behind: it jumps to now

  function say(text) { status.textContent = text; }
  function setListening(on) { startButton.hidden = on; stopButton.hidden = !on; modeSelect.disabled = false; }

  function play(buffer) {
    const view = new DataView(buffer);
    const side = String.fromCharCode(view.getUint8(0));
    const rate = view.getUint16(2, true);
    const sentMs = view.getFloat64(4, true);
    const pcm = new Int16Array(buffer, 12, (buffer.byteLength - 12) >> 1);
    if (!pcm.length || (side !== "c" && side !== "a")) return;
    const samples = new Float32Array(pcm.length);
    let sum = 0;
    for (let i = 0; i < pcm.length; i++) { samples[i] = pcm[i] / 32768; sum += samples[i] * samples[i]; }
    stats.frames += 1;
    stats.energy[side] += sum;
    stats.samples[side] += pcm.length;
    stats.delays.push(Date.now() - sentMs);
    if (stats.delays.length > 1000) stats.delays.shift();
    const audio = ctx.createBuffer(1, samples.length, rate);
    audio.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = audio;
    source.connect(ctx.destination);
    const now = ctx.currentTime;
    let at = Math.max(cursors[side], now + 0.02);
    if (at > now + MAX_AHEAD_S) at = now + 0.02;
    source.start(at);
    cursors[side] = at + audio.duration;
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
