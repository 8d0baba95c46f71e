// The browser call page: places a call to a scenario over the call WebSocket.
//
// Wire protocol (calls/consumers.py is the server side):
//   POST {tokenUrl} {scenario, codec} -> {token, ws_url}; then WebSocket ws_url.
//   page -> server: binary = caller audio (pcm16: 24 kHz PCM16 LE mono; pcmu: 8 kHz G.711 mu-law),
//     text = {"type":"text","text"} | {"type":"playback","item_id","played_ms"} |
//            {"type":"ptt","state":"down"|"up"} | {"type":"hangup"}
//   server -> page: binary = agent audio (same codec), text = {"type":"call",...} |
//     {"type":"event","seq","event":{...}} | {"type":"audio","item_id"} | {"type":"clear"} |
//     {"type":"ended","reason"} | {"type":"refused","reason","message"} (then close 4503)
// No framework, no build step; the audio runs in call-audio-worklet.js.

const app = document.getElementById("call-app");
const $ = (id) => document.getElementById(id);

const CODEC_RATES = { pcm16: 24000, pcmu: 8000 };
const PLAYBACK_REPORT_MS = 200;
const LOG_LIMIT = 1500;
const TRANSCRIPT_TEXT_LIMIT = 20000;

const ui = {
  form: $("call-form"),
  scenario: $("scenario"),
  callButton: $("call-button"),
  hangupButton: $("hangup-button"),
  status: $("call-status"),
  micToggle: $("mic-toggle"),
  speakerToggle: $("speaker-toggle"),
  ptt: $("ptt-button"),
  copy: $("copy-button"),
  download: $("download-button"),
  transcript: $("transcript"),
  textForm: $("text-form"),
  textInput: $("text-input"),
  textSend: $("text-send"),
  log: $("event-log"),
  logClear: $("log-clear"),
  level: $("mic-level"),
  factCall: $("fact-call"),
  factAgent: $("fact-agent"),
  factTime: $("fact-time"),
  factCost: $("fact-cost"),
  factLatency: $("fact-latency"),
};

// ---- G.711 mu-law decoding (the encoder lives in the worklet) --------------------------------
const MULAW_TABLE = (() => {
  const table = new Float32Array(256);
  for (let i = 0; i < 256; i += 1) {
    const u = ~i & 0xff;
    const sign = u & 0x80;
    const exponent = (u >> 4) & 0x07;
    const mantissa = u & 0x0f;
    let s = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if (sign) s = -s;
    table[i] = s / 32768;
  }
  return table;
})();

function decodeAudio(codec, buffer) {
  if (codec === "pcmu") {
    const bytes = new Uint8Array(buffer);
    const out = new Float32Array(bytes.length);
    for (let i = 0; i < bytes.length; i += 1) out[i] = MULAW_TABLE[bytes[i]];
    return out;
  }
  const view = new DataView(buffer);
  const n = Math.floor(buffer.byteLength / 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 1) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

// ---- WAV (two channels: caller left, agent right; PCM16 at the codec rate) ---------------------
function buildWav(callerChunks, agentChunks, rate) {
  let frames = 0;
  for (const c of callerChunks) frames += c.length;
  const dataBytes = frames * 4;
  const buffer = new ArrayBuffer(44 + dataBytes);
  const v = new DataView(buffer);
  const ascii = (offset, text) => {
    for (let i = 0; i < text.length; i += 1) v.setUint8(offset + i, text.charCodeAt(i));
  };
  ascii(0, "RIFF");
  v.setUint32(4, 36 + dataBytes, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 2, true); // channels
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 4, true);
  v.setUint16(32, 4, true);
  v.setUint16(34, 16, true);
  ascii(36, "data");
  v.setUint32(40, dataBytes, true);
  let offset = 44;
  for (let k = 0; k < callerChunks.length; k += 1) {
    const c = callerChunks[k];
    const a = agentChunks[k];
    for (let i = 0; i < c.length; i += 1) {
      v.setInt16(offset, c[i], true);
      v.setInt16(offset + 2, a[i], true);
      offset += 4;
    }
  }
  return new Blob([buffer], { type: "audio/wav" });
}

// ---- helpers ----------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, val] of Object.entries(attrs)) {
      if (val === undefined || val === null || val === false) continue;
      if (k === "class") node.className = val;
      else if (k === "text") node.textContent = val;
      else node.setAttribute(k, val === true ? "" : String(val));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function shorten(value, max = 400) {
  // Long strings (base64 audio that slipped through, big tool results) stay readable in the log.
  if (typeof value === "string") {
    return value.length > max ? `${value.slice(0, max)}… (${value.length} chars)` : value;
  }
  if (Array.isArray(value)) return value.map((x) => shorten(x, max));
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, val] of Object.entries(value)) out[k] = shorten(val, max);
    return out;
  }
  return value;
}

function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(shorten(value), null, 2);
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function timeOfDay(date) {
  return date.toTimeString().slice(0, 8) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

function setStatus(text, state) {
  ui.status.textContent = text;
  if (state) ui.status.dataset.state = state;
}

function selected(name) {
  const checked = ui.form.querySelector(`input[name="${name}"]:checked`);
  return checked ? checked.value : "";
}

// Event type names: the engine's dotted names; underscore spellings are accepted too.
function eventKind(type) {
  const aliases = {
    transcript_delta: "transcript.delta",
    transcript_done: "transcript.done",
    agent_changed: "agent.changed",
    tool_started: "tool.started",
    tool_finished: "tool.finished",
    guardrail_tripped: "guardrail.tripped",
    session_recreated: "session.recreated",
    approval_requested: "approval.requested",
    call_ended: "call.ended",
    context_summarized: "context.summarized",
    playback_clear: "playback.clear",
  };
  return aliases[type] || type;
}

// ---- the call -----------------------------------------------------------------------------------
class Call {
  constructor(scenario, codec, mode) {
    this.scenario = scenario;
    this.codec = codec;
    this.rate = CODEC_RATES[codec];
    this.mode = mode;
    this.ws = null;
    this.ctx = null;
    this.node = null;
    this.mic = null;
    this.source = null;
    this.speaker = null;
    this.callId = null;
    this.open = false;
    this.ended = false;
    this.pttHeld = false;
    this.pttOpen = false;
    this.onCleared = null;
    this.clearedItem = null;
    this.micMuted = false;
    this.speakerMuted = false;
    this.currentItem = null; // assistant item whose audio is arriving
    this.dropAudio = false; // after a clear, until the next {"type":"audio"}
    this.played = new Map(); // item_id -> latest played ms (from the worklet)
    this.sent = new Map(); // item_id -> {ms, at} last reported
    this.queuedMs = 0;
    this.callerChunks = [];
    this.agentChunks = [];
    this.startedAt = 0;
    this.timer = null;
    this.stats = { framesSent: 0, bytesSent: 0, audioBytesReceived: 0, playbackReports: [], clears: 0,
      received: {} }; // item_id -> {samples, energy} of the audio the page was sent for it
  }

  async start() {
    setStatus("Starting audio…", "connecting");
    // The AudioContext is created inside the click that started the call (autoplay policy).
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    const workletReady = this.ctx.audioWorklet.addModule(app.dataset.workletUrl);
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      this.mic = null;
      addCrumb("warning", `No microphone (${err.name || err}): text only.`);
    }
    await workletReady;
    if (this.ctx.state === "suspended") await this.ctx.resume();

    setStatus("Getting a call token…", "connecting");
    const csrf = ui.form.querySelector("input[name=csrfmiddlewaretoken]");
    const response = await fetch(app.dataset.tokenUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrf ? csrf.value : "",
      },
      body: JSON.stringify({ scenario: this.scenario, codec: this.codec }),
    });
    let body = {};
    try {
      body = await response.json();
    } catch {
      body = {};
    }
    if (!response.ok || !body.ws_url) {
      const reason = body.error || body.detail || `${response.status} ${response.statusText}`;
      throw new Error(`The call could not be started: ${reason}`);
    }
    const url = new URL(body.ws_url, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";

    setStatus("Connecting…", "connecting");
    this.ws = new WebSocket(url.href);
    this.ws.binaryType = "arraybuffer";
    this.ws.addEventListener("open", () => this.onOpen());
    this.ws.addEventListener("message", (event) => this.onMessage(event));
    this.ws.addEventListener("close", (event) => this.onClose(event));
    this.ws.addEventListener("error", () => logWire("server", { type: "websocket.error" }));
  }

  onOpen() {
    this.open = true;
    this.startedAt = performance.now();
    this.timer = setInterval(() => {
      ui.factTime.textContent = clock(performance.now() - this.startedAt);
    }, 500);
    this.node = new AudioWorkletNode(this.ctx, "call-audio", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { codec: this.codec, codecRate: this.rate },
    });
    this.node.port.onmessage = (event) => this.onWorklet(event.data);
    this.speaker = this.ctx.createGain();
    this.speaker.gain.value = this.speakerMuted ? 0 : 1;
    this.node.connect(this.speaker).connect(this.ctx.destination);
    if (this.mic) {
      this.source = this.ctx.createMediaStreamSource(this.mic);
      this.source.connect(this.node);
    }
    this.node.port.postMessage({ type: "mic", muted: this.micMuted });
    setStatus(`Connected (${this.codec === "pcmu" ? "phone line, 8 kHz mu-law" : "wideband, 24 kHz"}).`, "live");
    callStarted(this);
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    if (message.type !== "playback") logWire("client", message);
    return true;
  }

  onWorklet(msg) {
    if (msg.type === "frame") {
      this.callerChunks.push(msg.caller);
      this.agentChunks.push(msg.agent);
      ui.level.style.width = `${Math.min(100, Math.round(Math.sqrt(msg.level) * 140))}%`;
      const talking = this.mode === "vad" || (this.pttHeld && this.pttOpen);
      if (talking && this.ws && this.ws.readyState === WebSocket.OPEN && !this.ended) {
        this.ws.send(msg.wire);
        this.stats.framesSent += 1;
        this.stats.bytesSent += msg.wire.byteLength;
      }
    } else if (msg.type === "played") {
      this.queuedMs = msg.queuedMs;
      for (const [itemId, ms] of msg.items) this.played.set(itemId, ms);
      this.reportPlayback(msg.drained);
    } else if (msg.type === "cleared") {
      this.queuedMs = 0;
      for (const [itemId, ms] of msg.items) this.played.set(itemId, ms);
      this.reportPlayback(true, this.clearedItem);
      if (this.onCleared) this.onCleared();
      this.onCleared = null;
    }
  }

  // {"type":"playback"} for each item whose played position moved: at most every 200 ms while
  // playing, and at once when told (drained, cleared).
  // The item being cleared is reported even when its position did not move since the last report.
  reportPlayback(now, force) {
    const t = performance.now();
    for (const [itemId, ms] of this.played) {
      if (!itemId) continue;
      const last = this.sent.get(itemId);
      if (last && last.ms === ms && itemId !== force) continue;
      if (!now && last && t - last.at < PLAYBACK_REPORT_MS) continue;
      if (this.send({ type: "playback", item_id: itemId, played_ms: ms })) {
        this.sent.set(itemId, { ms, at: t });
        this.stats.playbackReports.push({ item_id: itemId, played_ms: ms });
      }
    }
  }

  // Stop playback now and drop what is queued; the worklet answers with the played positions.
  // Resolves once the played positions are reported (or after 150 ms), so that a message sent
  // next (text, ptt down) reaches the server after the position it must truncate at.
  clearPlayback() {
    this.dropAudio = true;
    this.clearedItem = this.currentItem;
    this.stats.clears += 1;
    if (!this.node) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 150);
      this.onCleared = () => {
        clearTimeout(timer);
        resolve();
      };
      this.node.port.postMessage({ type: "clear" });
    });
  }

  onMessage(event) {
    if (typeof event.data !== "string") {
      this.stats.audioBytesReceived += event.data.byteLength;
      if (this.dropAudio || !this.node || this.ended) return;
      const samples = decodeAudio(this.codec, event.data);
      const heard = this.stats.received[this.currentItem || ""] ||= { samples: 0, energy: 0 };
      for (let i = 0; i < samples.length; i++) heard.energy += samples[i] * samples[i];
      heard.samples += samples.length;
      this.node.port.postMessage({ type: "audio", itemId: this.currentItem || "", samples }, [samples.buffer]);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      logWire("server", { type: "unreadable", data: event.data });
      return;
    }
    switch (msg.type) {
      case "call":
        this.callId = msg.call_id;
        ui.factCall.textContent = msg.call_id === undefined ? "–" : `#${msg.call_id}`;
        if (msg.agent) setAgent(msg.agent);
        logWire("server", msg);
        break;
      case "event":
        handleEngineEvent(msg.event || {}, msg.seq);
        break;
      case "audio":
        this.currentItem = msg.item_id || "";
        this.dropAudio = false;
        logWire("server", msg);
        break;
      case "clear":
        logWire("server", msg);
        if (this.queuedMs > 0) markInterrupted(this.currentItem);
        this.clearPlayback();
        break;
      case "ended":
        logWire("server", msg);
        this.finish(msg.reason || "ended");
        break;
      case "refused":
        // The server is at capacity (or restarting): say so in its words, the call never started.
        logWire("server", msg);
        this.finish(msg.message || "the call was refused");
        break;
      default:
        logWire("server", msg);
        break;
    }
  }

  onClose(event) {
    logWire("server", { type: "websocket.close", code: event.code, reason: event.reason });
    const reasons = {
      4401: "the call token is invalid or expired",
      4403: "not allowed",
      4404: "unknown scenario",
      4429: "too many calls or open pages; close one and try again",
      4415: "unsupported data",
      4500: "the call failed on our side",
      4503: "all lines are busy; try again shortly",
    };
    if (!this.ended) {
      const why = reasons[event.code] || `${this.open ? "disconnected" : "refused"} (${event.code})`;
      this.finish(why);
    }
  }

  async sendText(text) {
    if (!text) return;
    // The caller interrupts: stop what is playing here too, and report what was heard first.
    if (this.queuedMs > 0) {
      markInterrupted(this.currentItem);
      await this.clearPlayback();
    }
    if (this.send({ type: "text", text })) addUserText(text);
  }

  // Push to talk: "down" goes out (after any playback position) before the first frame of the
  // turn, "up" after its last; a tap released before "down" went out sends nothing.
  async pttDown() {
    if (this.pttHeld || this.ended) return;
    this.pttHeld = true;
    this.pttOpen = false;
    ui.ptt.setAttribute("aria-pressed", "true");
    if (this.queuedMs > 0) {
      markInterrupted(this.currentItem);
      await this.clearPlayback();
    }
    if (!this.pttHeld) return;
    this.send({ type: "ptt", state: "down" });
    this.pttOpen = true;
  }

  pttUp() {
    if (!this.pttHeld) return;
    this.pttHeld = false;
    ui.ptt.setAttribute("aria-pressed", "false");
    if (this.pttOpen) this.send({ type: "ptt", state: "up" });
    this.pttOpen = false;
  }

  setMode(mode) {
    if (mode !== "ptt" && this.pttHeld) this.pttUp();
    this.mode = mode;
  }

  setMicMuted(muted) {
    this.micMuted = muted;
    if (this.node) this.node.port.postMessage({ type: "mic", muted });
  }

  setSpeakerMuted(muted) {
    this.speakerMuted = muted;
    if (this.speaker) this.speaker.gain.value = muted ? 0 : 1;
  }

  hangup() {
    if (this.ended) return;
    setStatus("Hanging up…", "ending");
    if (!this.send({ type: "hangup" })) {
      this.finish("hangup");
      return;
    }
    // The server answers with {"type":"ended"}; close ourselves if it does not.
    setTimeout(() => {
      if (!this.ended) this.finish("hangup");
    }, 2000);
  }

  finish(reason) {
    if (this.ended) return;
    this.ended = true;
    if (this.pttHeld) this.pttUp();
    clearInterval(this.timer);
    if (this.source) this.source.disconnect();
    if (this.mic) for (const track of this.mic.getTracks()) track.stop();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "ended");
    setStatus(`Call ended: ${reason}.`, "ended");
    addCrumb("ended", `Call ended: ${reason}`);
    // Let what is already queued play out (a goodbye), then release the audio device.
    const wait = Math.min(10000, this.queuedMs + 300);
    setTimeout(() => {
      if (this.node) {
        this.node.port.postMessage({ type: "stop" });
        this.node.disconnect();
      }
      if (this.ctx && this.ctx.state !== "closed") this.ctx.close();
    }, wait);
    callEnded(this);
  }

  recording() {
    return buildWav(this.callerChunks, this.agentChunks, this.rate);
  }
}

// ---- transcript -------------------------------------------------------------------------------
const bubbles = new Map(); // "role:item_id" -> {li, text}
const tools = new Map(); // call_id -> crumb li
let current = null;

function scrollToEnd(list) {
  const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  if (nearEnd) list.scrollTop = list.scrollHeight;
}

function bubble(role, itemId, agent) {
  const key = `${role}:${itemId}`;
  let b = bubbles.get(key);
  if (!b) {
    const text = el("p", { class: "text" });
    const who = role === "user" ? "Caller" : agent ? `Agent · ${agent}` : "Agent";
    const li = el("li", { class: `bubble ${role} partial`, "data-item-id": itemId }, el("span", { class: "who", text: who }), text);
    ui.transcript.append(li);
    b = { li, text };
    bubbles.set(key, b);
  }
  return b;
}

// Typed text shows at once; when the engine's user transcript of it arrives, that bubble is this one.
const typedPending = [];

function addUserText(text) {
  const textNode = el("p", { class: "text", text });
  const li = el("li", { class: "bubble user typed" }, el("span", { class: "who", text: "Caller (typed)" }), textNode);
  ui.transcript.append(li);
  typedPending.push({ li, text: textNode, typed: text.trim() });
  scrollToEnd(ui.transcript);
}

function adoptTyped(itemId, text) {
  const key = `user:${itemId}`;
  if (bubbles.has(key) || !text) return;
  const index = typedPending.findIndex((p) => p.typed === text.trim() || p.typed.startsWith(text.trim()));
  if (index < 0) return;
  const [pending] = typedPending.splice(index, 1);
  pending.li.dataset.itemId = itemId;
  bubbles.set(key, { li: pending.li, text: pending.text });
}

function markInterrupted(itemId) {
  const b = itemId && bubbles.get(`assistant:${itemId}`);
  if (b) b.li.classList.add("interrupted");
}

function addCrumb(kind, text, detail) {
  const li = el("li", { class: `crumb ${kind}` });
  if (detail !== undefined) {
    const details = el("details", null, el("summary", { text }), el("pre", { text: pretty(detail) }));
    li.append(details);
  } else {
    li.textContent = text;
  }
  ui.transcript.append(li);
  scrollToEnd(ui.transcript);
  return li;
}

function setAgent(agent) {
  ui.factAgent.textContent = agent || "–";
}

function transcriptText() {
  const lines = [];
  for (const li of ui.transcript.children) {
    if (li.classList.contains("bubble")) {
      const who = li.querySelector(".who").textContent;
      const text = li.querySelector(".text").textContent.trim();
      if (text) lines.push(`${who}: ${text}${li.classList.contains("interrupted") ? " [interrupted]" : ""}`);
    } else {
      const summary = li.querySelector("summary");
      lines.push(`[${(summary || li).textContent.trim()}]`);
    }
  }
  return lines.join("\n");
}

function handleEngineEvent(event, seq) {
  const kind = eventKind(event.type || "");
  if (kind === "protocol") {
    logProtocol(event.direction === "client" ? "client" : "server", event.payload || {}, seq);
    return;
  }
  logEngine(kind, event, seq);
  switch (kind) {
    case "transcript.delta": {
      if (event.role === "user") adoptTyped(event.item_id || "", event.text);
      const b = bubble(event.role === "user" ? "user" : "assistant", event.item_id || "", event.agent);
      if (b.text.textContent.length < TRANSCRIPT_TEXT_LIMIT) b.text.textContent += event.text || "";
      scrollToEnd(ui.transcript);
      break;
    }
    case "transcript.done": {
      if (event.role === "user") adoptTyped(event.item_id || "", event.text);
      const b = bubble(event.role === "user" ? "user" : "assistant", event.item_id || "", event.agent);
      if (event.text) b.text.textContent = event.text;
      b.li.classList.remove("partial");
      if (event.interrupted) b.li.classList.add("interrupted");
      if (!b.text.textContent.trim() && event.role === "user") b.text.textContent = "(inaudible)";
      scrollToEnd(ui.transcript);
      break;
    }
    case "agent.changed":
      setAgent(event.agent);
      addCrumb("agent", `Agent: ${event.previous ? `${event.previous} → ` : ""}${event.agent}`);
      break;
    case "handoff":
      setAgent(event.to_agent || event.to);
      addCrumb(
        "handoff",
        `Handoff ${event.from_agent || event.from || "?"} → ${event.to_agent || event.to || "?"}${event.reason ? `: ${event.reason}` : ""}`,
        { reason: event.reason, context: event.context, depth: event.depth, fallback: event.fallback },
      );
      break;
    case "tool.started": {
      const li = addCrumb("tool running", `Tool ${event.name}… (${event.agent || ""})`, { arguments: event.arguments });
      if (event.call_id) tools.set(event.call_id, li);
      break;
    }
    case "tool.finished": {
      const detail = { arguments: event.arguments, result: event.result, error: event.error || undefined };
      if (event.approved_by) detail.approved_by = event.approved_by;
      const label = `Tool ${event.name} ${event.error ? "failed" : "done"}${event.duration_ms ? ` in ${Math.round(event.duration_ms)} ms` : ""}`;
      const old = event.call_id && tools.get(event.call_id);
      if (old) {
        old.className = `crumb tool ${event.error ? "failed" : "done"}`;
        old.replaceChildren(el("details", null, el("summary", { text: label }), el("pre", { text: pretty(detail) })));
      } else {
        addCrumb(`tool ${event.error ? "failed" : "done"}`, label, detail);
      }
      break;
    }
    case "approval.requested":
      addCrumb("tool", `Waiting for approval: ${event.name}`, { arguments: event.arguments, timeout_s: event.timeout_s });
      break;
    case "guardrail.tripped":
      addCrumb("guardrail", `Guardrail tripped (${event.category || "?"})${event.matched ? `: ${event.matched}` : ""}`, {
        text: event.text,
        matched: event.matched,
        classifier: event.classifier,
      });
      markInterrupted(event.item_id);
      break;
    case "escalation":
      addCrumb("escalation", `Escalated to a human: ${event.reason || ""}`);
      break;
    case "error":
      addCrumb("error", `Error${event.code ? ` (${event.code})` : ""}: ${event.message || ""}`);
      break;
    case "session.recreated":
      addCrumb("info", `Session renewed (${event.reason || "?"}, ${Math.round(event.gap_ms || 0)} ms gap)`);
      break;
    case "context.summarized":
      addCrumb("info", `Context summarised (${event.removed_items || 0} items)`, { summary: event.summary });
      break;
    case "dtmf":
      addCrumb("info", `Key pressed: ${event.digit}`);
      break;
    case "caller.idle":
      addCrumb("info", `Caller silent for ${Math.round(Math.max(0, Number(event.ms) || 0) / 1000)} s`);
      break;
    case "usage":
      if (typeof event.total_cost_usd === "number") {
        ui.factCost.textContent = `$${event.total_cost_usd.toFixed(4)}`;
      }
      break;
    case "latency":
      if (event.kind === "voice_to_voice" || ui.factLatency.textContent === "–") {
        ui.factLatency.textContent = `${Math.round(event.ms)} ms ${event.kind === "voice_to_voice" ? "" : `(${event.kind})`}`.trim();
      }
      break;
    case "call.ended":
      break;
    default:
      break;
  }
}

// ---- event log ----------------------------------------------------------------------------------
// Streaming chunks (*.append, *.delta) of the same kind in a row share one entry with a count, so
// the log stays readable while every event is still accounted for; the entry shows the latest.
let lastEntry = null;

function coalescing(label) {
  return /\.(append|delta)$/.test(label);
}

function logEntry(direction, label, data, extraClass) {
  const nearEnd = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 80;
  const pre = el("pre", { text: pretty(data) });
  if (
    lastEntry &&
    lastEntry.li.isConnected &&
    lastEntry.key === `${direction} ${label}` &&
    coalescing(label) &&
    ui.log.lastElementChild === lastEntry.li
  ) {
    lastEntry.count += 1;
    lastEntry.counter.textContent = `×${lastEntry.count}`;
    lastEntry.time.textContent = timeOfDay(new Date());
    lastEntry.pre.replaceWith(pre);
    lastEntry.pre = pre;
    return;
  }
  const arrow = direction === "client" ? "▲" : "▼";
  const time = el("time", { text: timeOfDay(new Date()) });
  const counter = el("span", { class: "count" });
  const li = el(
    "li",
    { class: `log-entry ${direction} ${extraClass || ""}`.trim() },
    el(
      "details",
      null,
      el(
        "summary",
        null,
        el("span", { class: `dir ${direction}`, title: direction === "client" ? "client → server" : "server → client", text: arrow }),
        time,
        el("span", { class: "name", text: label }),
        counter,
      ),
      pre,
    ),
  );
  lastEntry = { li, key: `${direction} ${label}`, count: 1, counter, time, pre };
  ui.log.append(li);
  while (ui.log.childElementCount > LOG_LIMIT) ui.log.firstElementChild.remove();
  if (nearEnd) ui.log.scrollTop = ui.log.scrollHeight;
}

function logProtocol(direction, payload, seq) {
  logEntry(direction, payload.type || "(untyped)", seq === undefined ? payload : { seq, ...payload }, "protocol");
}

function logEngine(kind, event, seq) {
  if (kind === "transcript.delta") return; // the transcript shows them; the protocol deltas are logged
  logEntry("server", `engine: ${kind}`, seq === undefined ? event : { seq, ...event }, "engine");
}

function logWire(direction, message) {
  logEntry(direction, `call: ${message.type}`, message, "wire");
}

// ---- page wiring --------------------------------------------------------------------------------
let call = null;
let lastCall = null;

function setCalling(active) {
  ui.callButton.disabled = active || !ui.scenario || !ui.scenario.value;
  ui.hangupButton.disabled = !active;
  ui.scenario.disabled = active;
  for (const input of ui.form.querySelectorAll('input[name="codec"]')) input.disabled = active;
  ui.micToggle.disabled = !active;
  ui.speakerToggle.disabled = !active;
  ui.textInput.disabled = !active;
  ui.textSend.disabled = !active;
  ui.ptt.disabled = !active;
  app.dataset.callState = active ? "live" : "idle";
}

function syncMode() {
  const mode = selected("mode") || "vad";
  ui.ptt.hidden = mode !== "ptt";
  if (call) call.setMode(mode);
}

function callStarted(c) {
  app.dataset.callState = "live";
  ui.copy.disabled = false;
  ui.download.disabled = false;
  window.callPage.call = c;
}

function callEnded(c) {
  setCalling(false);
  app.dataset.callState = "ended";
  ui.download.disabled = c.callerChunks.length === 0;
  ui.copy.disabled = ui.transcript.childElementCount === 0;
  lastCall = c;
  call = null;
}

ui.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (call || !ui.scenario.value) return;
  ui.transcript.replaceChildren();
  bubbles.clear();
  typedPending.length = 0;
  tools.clear();
  ui.factCall.textContent = "–";
  ui.factAgent.textContent = "–";
  ui.factCost.textContent = "–";
  ui.factLatency.textContent = "–";
  ui.factTime.textContent = "0:00";
  const micPressed = ui.micToggle.getAttribute("aria-pressed") === "true";
  const speakerPressed = ui.speakerToggle.getAttribute("aria-pressed") === "true";
  call = new Call(ui.scenario.value, selected("codec") || "pcm16", selected("mode") || "vad");
  window.callPage.call = call;
  call.setMicMuted(micPressed);
  call.setSpeakerMuted(speakerPressed);
  setCalling(true);
  try {
    await call.start();
  } catch (err) {
    const failed = call;
    setStatus(err.message || String(err), "error");
    if (failed) {
      failed.finish("not started");
      setStatus(err.message || String(err), "error");
    }
  }
});

ui.hangupButton.addEventListener("click", () => {
  if (call) call.hangup();
});

ui.form.addEventListener("change", (event) => {
  if (event.target.name === "mode") syncMode();
});

function toggle(button, labelOn, labelOff, apply) {
  const pressed = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(pressed));
  button.textContent = pressed ? labelOn : labelOff;
  apply(pressed);
}

ui.micToggle.addEventListener("click", () =>
  toggle(ui.micToggle, "Unmute microphone", "Mute microphone", (muted) => call && call.setMicMuted(muted)),
);
ui.speakerToggle.addEventListener("click", () =>
  toggle(ui.speakerToggle, "Unmute speaker", "Mute speaker", (muted) => call && call.setSpeakerMuted(muted)),
);

// Push to talk: hold the button (pointer or keyboard) or the space bar anywhere outside a text field.
ui.ptt.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  ui.ptt.setPointerCapture(event.pointerId);
  if (call) call.pttDown();
});
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
  ui.ptt.addEventListener(type, () => call && call.pttUp());
}

function typingTarget(target) {
  return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) && target.type !== "radio";
}

document.addEventListener("keydown", (event) => {
  if (event.code !== "Space" || !call || call.mode !== "ptt" || typingTarget(event.target)) return;
  event.preventDefault();
  if (!event.repeat) call.pttDown();
});
document.addEventListener("keyup", (event) => {
  if (event.code !== "Space" || !call || call.mode !== "ptt" || typingTarget(event.target)) return;
  event.preventDefault();
  call.pttUp();
});
window.addEventListener("blur", () => call && call.pttUp());

ui.textForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.textInput.value.trim();
  if (!text || !call) return;
  call.sendText(text);
  ui.textInput.value = "";
});

ui.copy.addEventListener("click", async () => {
  const text = transcriptText();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea", { class: "visually-hidden", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const previous = ui.copy.textContent;
  ui.copy.textContent = "Copied";
  setTimeout(() => {
    ui.copy.textContent = previous;
  }, 1500);
});

ui.download.addEventListener("click", () => {
  const c = call || lastCall;
  if (!c) return;
  const blob = c.recording();
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: `call-${c.callId ?? "recording"}-${c.scenario}.wav` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
});

ui.logClear.addEventListener("click", () => ui.log.replaceChildren());

window.addEventListener("beforeunload", () => {
  if (call && !call.ended) call.send({ type: "hangup" });
});

// For people debugging a call in the console (and the browser tests): the live call object.
window.callPage = { call: null, get last() { return lastCall; }, transcriptText };

setCalling(false);
syncMode();
app.dataset.ready = "true";
