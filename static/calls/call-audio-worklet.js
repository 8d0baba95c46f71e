// The call page's audio processor (AudioWorklet, runs on the audio thread).
//
// One node does the three audio jobs of a browser call, on the same sample clock:
//   capture:  the microphone (input 0) is resampled from the context rate to the codec rate
//             (24 kHz for pcm16, 8 kHz for pcmu), cut into 20 ms frames and encoded for the wire
//             (PCM16 little-endian, or G.711 mu-law), then posted to the page as {type: "frame"};
//   playback: agent audio posted by the page ({type: "audio", itemId, samples} at the codec rate)
//             goes into a queue that is played (resampled to the context rate) on output 0; the
//             processor counts, per assistant item, how many samples were actually played and
//             reports them ({type: "played"}) about every 50 ms, when an item drains, and at once
//             when the page asks it to clear (barge-in: {type: "clear"} -> {type: "cleared"});
//   recording: each frame message also carries the caller and the agent audio of those 20 ms at
//             the codec rate (PCM16), aligned, so the page can build a two-channel WAV.

const FRAME_MS = 20;
const REPORT_MS = 50;

function clamp16(x) {
  const v = x < -1 ? -1 : x > 1 ? 1 : x;
  return v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
}

// G.711 mu-law encoding of one signed 16-bit sample, bit-exact with the ITU-T reference (Sun's
// g711.c, which the server's realtime.audio also matches): 14-bit magnitude, bias 33, 8 segments.
const MULAW_SEGMENT_END = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
function linearToMulaw(sample) {
  let v = sample >> 2;
  let mask = 0xff;
  if (v < 0) {
    v = -v;
    mask = 0x7f;
  }
  if (v > 8159) v = 8159;
  v += 0x21;
  let segment = 0;
  while (segment < 8 && v > MULAW_SEGMENT_END[segment]) segment += 1;
  if (segment >= 8) return 0x7f ^ mask;
  return ((segment << 4) | ((v >> (segment + 1)) & 0x0f)) ^ mask;
}

// Resamples a stream of stereo sample pairs (caller, agent) from inRate to outRate and calls
// emit(caller, agent) for each output sample. Downsampling averages the input samples that fall
// in each output period (a box filter, enough against aliasing for speech at these ratios);
// upsampling interpolates linearly. Both channels share one clock, so they stay aligned.
class PairResampler {
  constructor(inRate, outRate, emit) {
    this.step = outRate / inRate;
    this.emit = emit;
    this.acc = 0;
    this.sumA = 0;
    this.sumB = 0;
    this.count = 0;
    this.prevA = 0;
    this.prevB = 0;
    this.t = 0;
  }

  push(a, b) {
    if (this.step <= 1) {
      this.sumA += a;
      this.sumB += b;
      this.count += 1;
      this.acc += this.step;
      if (this.acc >= 1 - 1e-9) {
        this.acc -= 1;
        this.emit(this.sumA / this.count, this.sumB / this.count);
        this.sumA = 0;
        this.sumB = 0;
        this.count = 0;
      }
      return;
    }
    const inc = 1 / this.step;
    while (this.t < 1) {
      this.emit(this.prevA + (a - this.prevA) * this.t, this.prevB + (b - this.prevB) * this.t);
      this.t += inc;
    }
    this.t -= 1;
    this.prevA = a;
    this.prevB = b;
  }
}

class CallAudioProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.codec = opts.codec === "pcmu" ? "pcmu" : "pcm16";
    this.codecRate = opts.codecRate || (this.codec === "pcmu" ? 8000 : 24000);
    this.frameSamples = Math.round((this.codecRate * FRAME_MS) / 1000);
    this.caller = new Int16Array(this.frameSamples);
    this.agent = new Int16Array(this.frameSamples);
    this.fill = 0;
    this.energy = 0;
    this.micMuted = false;
    this.running = true;
    this.resampler = new PairResampler(sampleRate, this.codecRate, (a, b) => this.captured(a, b));

    // Playback: a queue of {itemId, data: Float32Array at codecRate, offset}.
    this.queue = [];
    this.queued = 0; // samples waiting, at codecRate
    this.played = new Map(); // itemId -> samples played (codecRate)
    this.dirty = new Set();
    this.pStep = this.codecRate / sampleRate;
    this.pT = 1;
    this.pA = 0;
    this.pB = 0;
    this.sinceReport = 0;
    this.reportEvery = Math.round((sampleRate * REPORT_MS) / 1000);

    this.port.onmessage = (event) => this.command(event.data);
  }

  command(msg) {
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "audio":
        if (msg.samples && msg.samples.length) {
          this.queue.push({ itemId: msg.itemId || "", data: msg.samples, offset: 0 });
          this.queued += msg.samples.length;
          if (!this.played.has(msg.itemId || "")) this.played.set(msg.itemId || "", 0);
        }
        break;
      case "clear": {
        this.queue = [];
        this.queued = 0;
        this.pA = 0;
        this.pB = 0;
        this.port.postMessage({ type: "cleared", items: this.positions(true), queuedMs: 0 });
        this.dirty.clear();
        break;
      }
      case "mic":
        this.micMuted = !!msg.muted;
        break;
      case "stop":
        this.running = false;
        break;
      default:
        break;
    }
  }

  positions(all) {
    const out = [];
    const ids = all ? this.played.keys() : this.dirty.values();
    for (const id of ids) {
      out.push([id, Math.round(((this.played.get(id) || 0) * 1000) / this.codecRate)]);
    }
    return out;
  }

  report(drained) {
    if (this.dirty.size === 0 && !drained) return;
    this.port.postMessage({
      type: "played",
      items: this.positions(false),
      queuedMs: Math.round((this.queued * 1000) / this.codecRate),
      drained: !!drained,
    });
    this.dirty.clear();
  }

  // The next agent sample at the codec rate, or null when nothing is queued (silence, not counted).
  pull() {
    while (this.queue.length) {
      const head = this.queue[0];
      if (head.offset < head.data.length) {
        const v = head.data[head.offset];
        head.offset += 1;
        this.queued -= 1;
        this.played.set(head.itemId, (this.played.get(head.itemId) || 0) + 1);
        this.dirty.add(head.itemId);
        if (head.offset >= head.data.length) {
          this.queue.shift();
          if (this.queue.length === 0) this.drainedNow = true;
        }
        return v;
      }
      this.queue.shift();
    }
    return null;
  }

  nextPlaybackSample() {
    while (this.pT >= 1) {
      this.pA = this.pB;
      const v = this.pull();
      this.pB = v === null ? 0 : v;
      this.pT -= 1;
    }
    const out = this.pA + (this.pB - this.pA) * this.pT;
    this.pT += this.pStep;
    return out;
  }

  captured(callerSample, agentSample) {
    const c = clamp16(callerSample);
    this.caller[this.fill] = c;
    this.agent[this.fill] = clamp16(agentSample);
    this.energy += c * c;
    this.fill += 1;
    if (this.fill < this.frameSamples) return;
    const n = this.frameSamples;
    let wire;
    if (this.codec === "pcmu") {
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i += 1) bytes[i] = linearToMulaw(this.caller[i]);
      wire = bytes.buffer;
    } else {
      wire = new ArrayBuffer(n * 2);
      const view = new DataView(wire);
      for (let i = 0; i < n; i += 1) view.setInt16(i * 2, this.caller[i], true);
    }
    const caller = this.caller.slice();
    const agent = this.agent.slice();
    const level = Math.sqrt(this.energy / n) / 32768;
    this.port.postMessage({ type: "frame", wire, caller, agent, level }, [wire, caller.buffer, agent.buffer]);
    this.fill = 0;
    this.energy = 0;
  }

  process(inputs, outputs) {
    if (!this.running) return false;
    const input = inputs[0] && inputs[0].length ? inputs[0][0] : null;
    const output = outputs[0];
    const frames = output && output[0] ? output[0].length : input ? input.length : 128;
    this.drainedNow = false;
    for (let i = 0; i < frames; i += 1) {
      const agentSample = this.nextPlaybackSample();
      if (output) {
        for (let ch = 0; ch < output.length; ch += 1) output[ch][i] = agentSample;
      }
      const mic = this.micMuted || !input ? 0 : input[i];
      this.resampler.push(mic, agentSample);
    }
    this.sinceReport += frames;
    if (this.drainedNow || this.sinceReport >= this.reportEvery) {
      this.sinceReport = 0;
      this.report(this.drainedNow);
    }
    return true;
  }
}

registerProcessor("call-audio", CallAudioProcessor);
