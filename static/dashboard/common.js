/* Supervisor dashboard: helpers shared by the calls list and the call page. Plain JS, no build. */
"use strict";

window.Dash = (function () {
  /** Create an element: el("td", {class: "num", text: "3"}, child, ...). Text is never parsed as HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function duration(ms) {
    if (!(ms >= 0)) return "—";
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
  }

  function money(value, local) {
    // local: part of the call was answered by the offline engine, priced at 0
    const n = Number(value || 0);
    const amount = "$" + (n < 1 ? n.toFixed(4) : n.toFixed(2));
    if (!local) return amount;
    return n ? amount + " + local" : "local";
  }

  function clock(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  }

  function latency(row) {
    return row.latency_p50_ms === null || row.latency_p50_ms === undefined
      ? "—" : `${row.latency_p50_ms} / ${row.latency_p95_ms} ms`;
  }

  /** Refresh every [data-started] cell: live calls tick, ended ones show their length. */
  function tickDurations(root) {
    const now = Date.now();
    for (const cell of (root || document).querySelectorAll("[data-started]")) {
      const start = Date.parse(cell.dataset.started);
      const end = cell.dataset.ended && cell.dataset.ended !== "None" ? Date.parse(cell.dataset.ended) : now;
      cell.textContent = duration(end - start);
    }
  }

  /**
   * A WebSocket that reconnects with backoff. url() is called on every (re)connect, so a page can
   * resume (the call page passes its last sequence number). Close codes 4401/4403/4404 are final.
   */
  function socket({url, onMessage, onState}) {
    let ws = null, attempt = 0, stopped = false;
    const FINAL = {4401: "You are not logged in.", 4403: "Only supervisors (staff) can watch calls.", 4404: "No such call."};
    function open() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(`${scheme}//${location.host}${url()}`);
      onState("connecting");
      ws.onopen = () => { attempt = 0; onState("live"); };
      ws.onmessage = (e) => { try { onMessage(JSON.parse(e.data)); } catch (err) { console.error(err); } };
      ws.onclose = (e) => {
        if (FINAL[e.code]) { stopped = true; onState("refused", FINAL[e.code]); return; }
        if (stopped) return;
        attempt += 1;
        const wait = Math.min(15000, 500 * 2 ** Math.min(attempt, 5));
        onState("reconnecting", `Reconnecting in ${Math.round(wait / 1000)} s…`);
        setTimeout(open, wait);
      };
    }
    open();
    return {
      send(data) {
        if (!ws || ws.readyState !== WebSocket.OPEN) return false;
        ws.send(JSON.stringify(data));
        return true;
      },
    };
  }

  function showState(node, state, detail) {
    const labels = {connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", refused: "Not allowed"};
    node.dataset.state = state;
    node.querySelector(".label").textContent = detail || labels[state] || state;
  }

  /** Play one listen frame (side c/a, a pad byte, sample rate uint16 LE, the time it passed the
   * call in ms float64 LE, then pcm16 LE) on ``ctx``, each side on its own clock in ``cursors``; a side
   * queued more than half a second ahead is behind and jumps to now. Returns {side, sentMs, energy,
   * samples} of what was played, or null for an empty frame. */
  function playListenFrame(ctx, buffer, cursors) {
    const view = new DataView(buffer);
    const side = String.fromCharCode(view.getUint8(0));
    const rate = view.getUint16(2, true);
    const sentMs = view.getFloat64(4, true);
    const pcm = new Int16Array(buffer, 12, (buffer.byteLength - 12) >> 1);
    if (!pcm.length) return null;
    const samples = new Float32Array(pcm.length);
    let energy = 0;
    for (let i = 0; i < pcm.length; i++) { samples[i] = pcm[i] / 32768; energy += samples[i] * samples[i]; }
    const audio = ctx.createBuffer(1, samples.length, rate);
    audio.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = audio;
    source.connect(ctx.destination);
    const now = ctx.currentTime;
    let at = Math.max(cursors[side] || 0, now + 0.02);
    if (at > now + 0.5) at = now + 0.02;
    source.start(at);
    cursors[side] = at + audio.duration;
    return {side, sentMs, energy, samples: pcm.length};
  }

  return {el, duration, money, clock, latency, tickDurations, socket, showState, playListenFrame};
})();
