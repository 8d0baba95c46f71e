/* Take the call on this page over from the agent: /ws/dashboard/calls/<id>/takeover/.
   The microphone goes through the call page's AudioWorklet (20 ms frames of pcm16 24 kHz) to the
   socket; the caller's audio comes back as listen frames (side, pad, rate, sent ms, pcm16) and is
   played on its own clock. {type: "hand_back"} gives the call back to the agent.
   window.takeoverStats: frames sent, caller frames heard and their energy. */
"use strict";

(function () {
  const app = document.getElementById("call-app");
  const startButton = document.getElementById("takeover-start");
  const stopButton = document.getElementById("takeover-stop");
  const status = document.getElementById("takeover-status");
  const headset = document.getElementById("takeover-headset");
  if (!app || !startButton) return;
  const stats = window.takeoverStats = {sent: 0, heard: 0, energy: 0, samples: 0, state: "idle"};
  let ws = null;
  let ctx = null;
  let node = null;
  let mic = null;
  const cursors = {}; // the caller's frames, on one clock

  function say(text) { status.textContent = text; }
  function setOn(on) { startButton.hidden = on; stopButton.hidden = !on; }

  function play(buffer) {
    const frame = Dash.playListenFrame(ctx, buffer, cursors);
    if (!frame) return;
    stats.heard += 1;
    stats.energy += frame.energy;
    stats.samples += frame.samples;
  }

  async function startMic() {
    await ctx.audioWorklet.addModule(app.dataset.workletUrl);
    // With a headset the caller's voice cannot leak into the microphone: no echo cancellation,
    // which would otherwise take out anything that sounds like what this page plays.
    const processing = !(headset && headset.checked);
    mic = await navigator.mediaDevices.getUserMedia({
      audio: {channelCount: 1, echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing},
    });
    node = new AudioWorkletNode(ctx, "call-audio", {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: {codec: "pcm16", codecRate: 24000},
    });
    node.port.onmessage = (event) => {
      const data = event.data;
      if (data.type === "frame" && ws && ws.readyState === WebSocket.OPEN) {
        ws.send(data.wire);
        stats.sent += 1;
        stats.level = Math.max(stats.level || 0, data.level || 0);
      }
    };
    const silent = ctx.createGain();
    silent.gain.value = 0; // the worklet runs, its playback output is not used here
    node.connect(silent).connect(ctx.destination);
    ctx.createMediaStreamSource(mic).connect(node);
    node.port.postMessage({type: "mic", muted: false});
  }

  function stopMic() {
    if (mic) mic.getTracks().forEach((track) => track.stop());
    if (node) node.disconnect();
    mic = null;
    node = null;
  }

  // Sound needs the page to have been used (a click) in browsers that hold audio back until then:
  // without it the call is still taken over, and the first click anywhere turns the sound on.
  function resumeAudio() {
    ctx.resume().catch(() => {});
    setTimeout(() => {
      if (!ctx || ctx.state === "running") return;
      say(`${status.textContent} Click anywhere on this page to turn the sound and your microphone on.`);
      document.addEventListener("click", () => ctx && ctx.resume(), {once: true});
    }, 500);
  }

  async function start() {
    if (ws) return;
    ctx = ctx || new AudioContext({latencyHint: "interactive"});
    resumeAudio();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${scheme}://${location.host}${app.dataset.wsPath}takeover/`);
    ws.binaryType = "arraybuffer";
    say("Taking the call over…");
    setOn(true);
    ws.onmessage = async (message) => {
      if (typeof message.data !== "string") { play(message.data); return; }
      const data = JSON.parse(message.data);
      if (data.type === "taken_over") {
        stats.state = "taken_over";
        say(data.translation
          ? `You have the call, interpreted: speak English; the caller hears ${data.translation}, you hear English.`
          : "You have the call: the caller hears you.");
        try {
          await startMic();
        } catch (err) {
          say(`You have the call, but no microphone (${err.name || err}).`);
        }
      } else if (data.type === "ended" || data.type === "stopped" || data.type === "refused") {
        say(data.reason);
      }
    };
    ws.onclose = (event) => {
      ws = null;
      stats.state = "closed";
      stopMic();
      setOn(false);
      if (event.code !== 1000) say(`${status.textContent} (${event.code})`);
    };
  }

  function handBack() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({type: "hand_back"}));
  }

  // A headset is a property of the person's desk: the choice is kept for the next call.
  if (headset) {
    headset.checked = localStorage.getItem("takeover-headset") === "1";
    headset.addEventListener("change", () => localStorage.setItem("takeover-headset", headset.checked ? "1" : "0"));
  }
  startButton.addEventListener("click", start);
  // A call accepted from the queue is connected at once: the person takes it over on arrival.
  if (new URLSearchParams(location.search).get("accepted")) {
    say("You accepted this call from the queue: connecting you to the caller…");
    start();
  }
  stopButton.addEventListener("click", handBack);
})();
