// The "Speak" panel: the avatar says what you say into the microphone (streamed as 48 kHz PCM
// over the session's WebSocket), an audio file (POST /sessions/{id}/speech) or typed text
// (POST /sessions/{id}/say, with espeak-ng on the server). Its sound comes back on the WebRTC
// audio track and plays in an <audio> element, started by a click (autoplay policies).
import { getHealth, postSpeech, sayText } from "./avatar-client.js";
import { describeError } from "./messages.js";

const MIC_RATE = 48000; // what mic-worklet.js produces
const LOG_MAX = 50;
const RESUME_TIMEOUT_MS = 5000;

/**
 * getConn() returns the live SessionConnection (or null), getSessionId() the session's id.
 * Returns the hooks app.js calls: attachTrack, onEvent, setVideoDelay, snapshot.
 */
export function buildSpeechPanel({ getConn, getSessionId }) {
  const $ = (id) => document.getElementById(id);
  const micBtn = $("mic-btn");
  const micLabel = $("mic-label");
  const meter = $("mic-level");
  const fileBtn = $("speech-file-btn");
  const fileInput = $("speech-file");
  const sayForm = $("say-form");
  const sayInput = $("say-text");
  const interruptBtn = $("interrupt-btn");
  const soundBtn = $("sound-btn");
  const audio = $("speech-audio");
  const status = $("speech-status");
  const latencyOut = $("speech-latency");

  const state = {
    mic: null, // {stream, ctx, node, id} while the microphone is on
    speakConn: null, // the connection that got this utterance's `speak`
    firstChunkAt: null, // performance.now() of the utterance's first chunk sent
    requestAt: new Map(), // utterance id -> performance.now() when it was sent (file, text)
    chunksSent: 0,
    bytesSent: 0,
    counter: 0,
    latencyMs: null, // last "audio in -> lips" figure
    log: [], // speech events seen, newest last (for the page's debug view and the tests)
  };
  let videoDelay = () => Promise.resolve(0);

  const setStatus = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle("error", isError);
  };
  const nextId = (kind) => `${kind}-${++state.counter}`;

  // ---------- sound ----------

  /** Start the <audio> (it needs a user gesture to play with sound in most browsers). */
  function enableSound() {
    audio.muted = false;
    soundBtn.setAttribute("aria-pressed", "true");
    const p = audio.play();
    if (p && p.catch) p.catch(() => { /* no track yet, or still blocked: the next click retries */ });
  }

  soundBtn.addEventListener("click", () => {
    if (audio.muted || audio.paused) {
      enableSound();
    } else {
      audio.muted = true;
      soundBtn.setAttribute("aria-pressed", "false");
    }
  });

  function attachTrack(track) {
    audio.srcObject = new MediaStream([track]);
    if (soundBtn.getAttribute("aria-pressed") === "true") enableSound();
  }

  // ---------- microphone ----------

  /** An AudioContext with the microphone feeding the PCM worklet; closed again on failure. */
  async function micGraph(stream, options) {
    const ctx = new AudioContext(options);
    try {
      await ctx.audioWorklet.addModule("/js/mic-worklet.js");
      const node = new AudioWorkletNode(ctx, "mic-pcm", { numberOfInputs: 1, numberOfOutputs: 1 });
      const silent = ctx.createGain(); // keeps the node pulled by the graph; plays nothing
      silent.gain.value = 0;
      ctx.createMediaStreamSource(stream).connect(node);
      node.connect(silent).connect(ctx.destination);
      if (ctx.state === "suspended") {
        // Without an audio device (headless Firefox, for one) a context never starts: say so
        // rather than leave the button waiting.
        const started = await Promise.race([ctx.resume().then(() => true),
          new Promise((resolve) => { setTimeout(() => resolve(false), RESUME_TIMEOUT_MS); })]);
        if (!started) throw new Error("the audio system did not start (no audio device?)");
      }
      return { ctx, node };
    } catch (err) {
      ctx.close();
      throw err;
    }
  }

  async function startMic() {
    enableSound();
    if (!navigator.mediaDevices?.getUserMedia || typeof AudioWorkletNode !== "function") {
      setStatus("The microphone needs a secure page (HTTPS or localhost) and a current browser.", true);
      return;
    }
    micBtn.disabled = true;
    let stream = null;
    let ctx = null;
    try {
      // Echo cancellation: the avatar's voice comes out of the speakers while you talk.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      let graph;
      try {
        graph = await micGraph(stream, { sampleRate: MIC_RATE, latencyHint: "interactive" });
      } catch (err) {
        // Firefox cannot connect a microphone at another rate to a 48 kHz context: take the
        // device's rate instead (the worklet resamples to 48 kHz).
        if (err.name !== "NotSupportedError") throw err;
        graph = await micGraph(stream, { latencyHint: "interactive" });
      }
      ctx = graph.ctx;
      const node = graph.node;
      state.mic = { stream, ctx, node, id: nextId("mic") };
      state.speakConn = null;
      state.firstChunkAt = null;
      node.port.onmessage = (ev) => onChunk(ev.data);
      micBtn.setAttribute("aria-pressed", "true");
      micLabel.textContent = "Stop talking";
      setStatus("Listening… talk, and the avatar says it.");
    } catch (err) {
      if (stream) for (const t of stream.getTracks()) t.stop();
      if (ctx) ctx.close();
      const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      setStatus(denied ? "Microphone access was refused." : `Microphone failed: ${err.message || err}`, true);
    } finally {
      micBtn.disabled = false;
    }
  }

  function onChunk({ pcm, peak }) {
    const mic = state.mic;
    if (!mic) return;
    meter.value = Math.min(1, peak * 2);
    const conn = getConn();
    if (!conn || !conn.isOpen) return; // reconnecting: this bit of speech is lost
    if (state.speakConn !== conn) { // first chunk, or a new connection: open the utterance there
      if (!conn.speak(mic.id, MIC_RATE)) return;
      state.speakConn = conn;
      state.firstChunkAt = performance.now();
    }
    if (conn.sendAudio(pcm)) {
      state.chunksSent += 1;
      state.bytesSent += pcm.byteLength;
    }
  }

  function stopMic() {
    const mic = state.mic;
    if (!mic) return;
    state.mic = null;
    mic.node.port.postMessage("stop");
    mic.node.port.onmessage = null;
    for (const t of mic.stream.getTracks()) t.stop();
    mic.ctx.close();
    if (state.speakConn) state.speakConn.speakEnd(mic.id);
    state.speakConn = null;
    meter.value = 0;
    micBtn.setAttribute("aria-pressed", "false");
    micLabel.textContent = "Talk";
    setStatus("Microphone off.");
  }

  micBtn.addEventListener("click", () => (state.mic ? stopMic() : startMic()));

  // ---------- a file, typed text, interrupt ----------

  async function queue(kind, send) {
    const sid = getSessionId();
    if (!sid) {
      setStatus("No live session yet.", true);
      return;
    }
    enableSound();
    const id = nextId(kind);
    state.requestAt.set(id, performance.now());
    // One cut before it began never gets speech_started: keep only the newest few.
    if (state.requestAt.size > LOG_MAX) state.requestAt.delete(state.requestAt.keys().next().value);
    setStatus(kind === "say" ? "Speaking the text…" : "Sending the audio…");
    try {
      const r = await send(sid, id);
      setStatus(`Queued ${(r.duration_ms / 1000).toFixed(1)} s of speech.`);
    } catch (err) {
      state.requestAt.delete(id);
      const { title, text } = describeError(err);
      setStatus(`${title}: ${text}`, true);
    }
  }

  fileBtn.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    fileInput.value = ""; // the same file may be chosen again
    if (file) queue("file", (sid, id) => postSpeech(sid, file, { id }));
  });

  sayForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = sayInput.value.trim();
    if (text) queue("say", (sid, id) => sayText(sid, text, { id }));
  });

  interruptBtn.addEventListener("click", () => {
    stopMic();
    if (getConn()?.interrupt()) setStatus("Interrupted.");
  });

  // Offer the text box only where the server can speak text.
  let ttsChecked = false;
  getHealth().then((h) => {
    sayForm.hidden = !(h && h.speech && h.speech.tts);
    ttsChecked = true;
  });

  // ---------- events ----------

  /** A speech_started / speech_ended event (or a speech error) from the session. */
  async function onEvent(msg) {
    state.log.push({ ...msg, at: performance.now() });
    if (state.log.length > LOG_MAX) state.log.shift();
    if (msg.type === "error") {
      setStatus(`The server refused the speech: ${msg.message}`, true);
      return;
    }
    if (msg.type !== "speech_started") return;
    const mic = state.mic;
    let from = null;
    if (mic && msg.id === mic.id && state.firstChunkAt !== null) {
      from = state.firstChunkAt;
      state.firstChunkAt = null; // once per connection's utterance
    } else if (state.requestAt.has(msg.id)) from = state.requestAt.get(msg.id);
    state.requestAt.delete(msg.id);
    if (from === null) return;
    // The server plays the first sample and shows its mouth at speech_started; this browser
    // then holds the video for its jitter buffer before the lips appear.
    const serverMs = performance.now() - from;
    const bufferMs = await videoDelay();
    state.latencyMs = serverMs + bufferMs;
    latencyOut.textContent = `${Math.round(state.latencyMs)} ms`;
    latencyOut.title = `${Math.round(serverMs)} ms until the server started speaking (speech_started) `
      + `+ ${Math.round(bufferMs)} ms video buffer in this browser`;
  }

  return {
    attachTrack,
    onEvent,
    /** fn() resolves to the video's current playout delay in ms (WebRTC stats). */
    setVideoDelay(fn) { videoDelay = fn; },
    snapshot() {
      const track = audio.srcObject ? audio.srcObject.getAudioTracks()[0] : null;
      return {
        micOn: state.mic !== null,
        chunksSent: state.chunksSent,
        bytesSent: state.bytesSent,
        latencyMs: state.latencyMs,
        events: state.log.map((e) => ({ type: e.type, id: e.id, interrupted: e.interrupted })),
        audioTrack: track ? track.readyState : null,
        audioPlaying: !audio.paused && !audio.muted,
        ttsOffered: !sayForm.hidden,
        ttsChecked,
      };
    },
  };
}
