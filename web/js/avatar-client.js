// A small browser client for the liveportrait-avatar session protocol.
// It speaks only the documented protocol: REST for the session's lifecycle, one WebSocket
// for control messages and events, and WebRTC (or binary JPEG frames) for the video.

export const EMOTIONS = ["neutral", "happy", "sad", "surprised", "angry", "disgusted", "fearful"];

/** An error answered by the server as {"error":{"status","code","message"}}, or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Turn a failed fetch Response into an ApiError, whatever its body looks like. */
export async function apiErrorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = String(body.error.code || code);
      message = String(body.error.message || message);
    }
  } catch {
    // Not JSON (e.g. a proxy's HTML page): the status alone must do.
    if (response.status === 413) code = "file_too_large";
  }
  const ra = Number.parseFloat(response.headers.get("Retry-After") || "");
  return new ApiError(response.status, code, message, Number.isFinite(ra) ? ra : null);
}

async function fetchOrThrow(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, "network_error", `the server cannot be reached (${err.message})`);
  }
  if (!response.ok) throw await apiErrorFrom(response);
  return response;
}

/** POST /sessions. Resolves to the server's session object; rejects with ApiError. */
export async function createSession(image, { fps, size, codec, idleMotion, baseline, baseUrl = "" } = {}) {
  const form = new FormData();
  form.append("source_image", image, image.name || "portrait.jpg");
  if (fps !== undefined) form.append("fps", String(fps));
  if (size !== undefined) form.append("size", String(size));
  if (codec !== undefined) form.append("codec", codec);
  if (idleMotion !== undefined) form.append("idle_motion", idleMotion ? "true" : "false");
  if (baseline !== undefined) form.append("baseline", baseline);
  const response = await fetchOrThrow(`${baseUrl}/sessions`, { method: "POST", body: form });
  return response.json();
}

/** GET /sessions/{id}: the state object, or null when the session is gone. */
export async function getSession(sessionId, { baseUrl = "" } = {}) {
  const response = await fetch(`${baseUrl}/sessions/${encodeURIComponent(sessionId)}`);
  if (response.status === 404) return null;
  if (!response.ok) throw await apiErrorFrom(response);
  return response.json();
}

/** DELETE /sessions/{id}. keepalive lets it outlive the page (pagehide). Never throws. */
export function deleteSession(sessionId, { baseUrl = "", keepalive = false } = {}) {
  return fetch(`${baseUrl}/sessions/${encodeURIComponent(sessionId)}`, { method: "DELETE", keepalive })
    .then((r) => r.ok)
    .catch(() => false);
}

/** POST /render with the image bytes as the answer. Resolves to {blob, latencyMs, width, height}. */
export async function renderStill(image, { emotion, intensity, format, baseline, baseUrl = "" }) {
  const mime = { png: "image/png", jpg: "image/jpeg", webp: "image/webp" }[format] || "image/png";
  const form = new FormData();
  form.append("source_image", image, image.name || "portrait.jpg");
  form.append("emotion", emotion);
  form.append("intensity", String(intensity));
  form.append("output_format", format);
  if (baseline !== undefined) form.append("baseline", baseline);
  const response = await fetchOrThrow(`${baseUrl}/render`, {
    method: "POST", body: form, headers: { Accept: mime },
  });
  const blob = await response.blob();
  const latency = Number.parseFloat(response.headers.get("X-Latency-Ms") || "");
  return { blob, latencyMs: Number.isFinite(latency) ? latency : null };
}

/** GET /health, or null when it cannot be read (the page then offers what needs no probe). */
export async function getHealth({ baseUrl = "" } = {}) {
  try {
    const r = await fetch(`${baseUrl}/health`);
    return r.ok ? await r.json() : null;
  } catch {
    return null;
  }
}

/** POST /sessions/{id}/speech: an audio file for the avatar to say. Resolves to {id, duration_ms, queued_ms}. */
export async function postSpeech(sessionId, file, { id, baseUrl = "" } = {}) {
  const form = new FormData();
  form.append("audio", file, file.name || "speech.wav");
  if (id !== undefined) form.append("id", String(id));
  const response = await fetchOrThrow(`${baseUrl}/sessions/${encodeURIComponent(sessionId)}/speech`,
    { method: "POST", body: form });
  return response.json();
}

/** POST /sessions/{id}/say: typed text spoken by the server's espeak-ng (see GET /health speech.tts). */
export async function sayText(sessionId, text, { id, baseUrl = "" } = {}) {
  const form = new URLSearchParams({ text });
  if (id !== undefined) form.append("id", String(id));
  const response = await fetchOrThrow(`${baseUrl}/sessions/${encodeURIComponent(sessionId)}/say`,
    { method: "POST", body: form });
  return response.json();
}

/** The WebSocket URL of a session, on the page's own origin (robust behind a proxy). */
export function wsUrlFor(sessionId, loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/sessions/${encodeURIComponent(sessionId)}/ws`;
}

export function webRtcAvailable() {
  return typeof window.RTCPeerConnection === "function";
}

/**
 * One connection to one session: a WebSocket plus, optionally, one WebRTC viewer.
 * Events (CustomEvent, details in `detail`): open, hello, ready, state, stats, servererror,
 * pong, track ({stream, track, kind, pc}), frame (a Blob), pcstate, speech_started, speech_ended,
 * closed ({code, reason, serverReason, intentional}).
 */
export class SessionConnection extends EventTarget {
  constructor(session, { wsUrl } = {}) {
    super();
    this.session = session;
    this.wsUrl = wsUrl || wsUrlFor(session.session_id);
    this.ws = null;
    this.pc = null;
    this.serverCloseReason = null;
    this.gotTrack = false; // a WebRTC track arrived on this connection
    this.fellBack = false; // this connection switched to WebSocket frames
    this._intentional = false;
    this._nextId = 1;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Open the WebSocket. Resolves on open; rejects when it cannot open. */
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.wsUrl);
      ws.binaryType = "blob";
      this.ws = ws;
      let opened = false;
      ws.addEventListener("open", () => {
        opened = true;
        this._emit("open", {});
        resolve();
      });
      ws.addEventListener("message", (ev) => this._onMessage(ev));
      ws.addEventListener("close", (ev) => {
        if (!opened) reject(new ApiError(0, "ws_failed", "the live connection could not be opened"));
        this._closePeer();
        this._emit("closed", {
          code: ev.code, reason: ev.reason, serverReason: this.serverCloseReason,
          intentional: this._intentional,
        });
      });
    });
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send one protocol message; returns false when the socket is not open. */
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  _onMessage(ev) {
    if (typeof ev.data !== "string") {
      this._emit("frame", ev.data);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return; // the server only sends JSON text; ignore anything else
    }
    switch (msg.type) {
      case "answer":
        if (this.pc) {
          this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp })
            .catch((err) => this._emit("pcstate", { state: "failed", error: String(err) }));
        }
        break;
      case "error":
        this._emit("servererror", msg);
        break;
      case "closed":
        this.serverCloseReason = msg.reason || null;
        break;
      case "hello": case "ready": case "state": case "stats": case "pong":
      case "speech_started": case "speech_ended":
        this._emit(msg.type, msg);
        break;
      default:
        break; // newer servers may add events: ignore them
    }
  }

  // ---- WebRTC ----

  /**
   * Offer a receive-only viewer: video, and the avatar's speech as an Opus audio track. One
   * "track" event per track; both share one MediaStream, which browsers lip-sync.
   */
  async startWebRTC() {
    this._closePeer();
    const iceServers = Array.isArray(this.session.ice_servers) ? this.session.ice_servers : [];
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addEventListener("track", (ev) => {
      const stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      this._emit("track", { stream, track: ev.track, kind: ev.track.kind, pc });
    });
    pc.addEventListener("icecandidate", (ev) => {
      if (this.pc !== pc) return;
      const c = ev.candidate;
      this.send({
        type: "candidate",
        candidate: c && c.candidate
          ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex }
          : null,
      });
    });
    pc.addEventListener("connectionstatechange", () => {
      if (this.pc === pc) this._emit("pcstate", { state: pc.connectionState });
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    // Trickle: the offer goes now, candidates follow as they are gathered.
    this.send({ type: "offer", sdp: pc.localDescription.sdp, id: this._nextId++ });
    return pc;
  }

  _closePeer() {
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      try { pc.close(); } catch { /* already closed */ }
    }
  }

  stopWebRTC() {
    this._closePeer();
  }

  // ---- control messages (see the protocol) ----

  setEmotions(weights, transitionMs) {
    return this.send({ type: "set_emotions", weights, transition_ms: transitionMs });
  }

  setEmotion(emotion, intensity, transitionMs) {
    return this.send({ type: "set_emotion", emotion, intensity, transition_ms: transitionMs });
  }

  setControls(controls, transitionMs) {
    return this.send({ type: "set_controls", ...controls, transition_ms: transitionMs });
  }

  reset(transitionMs) {
    return this.send({ type: "reset", transition_ms: transitionMs });
  }

  setIdle(enabled) {
    return this.send({ type: "set_idle", enabled: Boolean(enabled) });
  }

  subscribeFrames({ format = "jpeg", quality = 80, fps } = {}) {
    const msg = { type: "subscribe_frames", format, quality };
    if (fps !== undefined) msg.fps = fps;
    return this.send(msg);
  }

  unsubscribeFrames() {
    return this.send({ type: "unsubscribe_frames" });
  }

  ping() {
    return this.send({ type: "ping", t: performance.now() });
  }

  // ---- speech (binary PCM chunks follow a speak message) ----

  speak(id, sampleRate) {
    return this.send({ type: "speak", id, format: "pcm_s16le", sample_rate: sampleRate, channels: 1 });
  }

  /** One chunk of s16le mono PCM (an ArrayBuffer or typed array); false when not sent. */
  sendAudio(chunk) {
    if (!this.isOpen) return false;
    this.ws.send(chunk);
    return true;
  }

  speakEnd(id) {
    return this.send({ type: "speak_end", id });
  }

  interrupt() {
    return this.send({ type: "interrupt" });
  }

  /** Close on purpose (no reconnect). The session itself stays until deleted. */
  close() {
    this._intentional = true;
    this._closePeer();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "bye");
  }
}

/**
 * Coalesces control messages so that at most one of each kind leaves per interval
 * (about 30 per second), and the newest value always wins.
 */
export class ControlCoalescer {
  constructor(flush, intervalMs = 34) {
    this._flush = flush; // (kind, payload) => void
    this.intervalMs = intervalMs;
    this._pending = new Map();
    this._timer = null;
    this._lastSent = 0;
  }

  /** kind "emotions": payload replaces; kind "controls": fields merge. */
  push(kind, payload) {
    if (kind === "controls" && this._pending.has("controls")) {
      payload = { ...this._pending.get("controls"), ...payload };
    }
    this._pending.set(kind, payload);
    this._schedule();
  }

  _schedule() {
    if (this._timer !== null) return;
    const wait = Math.max(0, this._lastSent + this.intervalMs - performance.now());
    this._timer = setTimeout(() => {
      this._timer = null;
      this._lastSent = performance.now();
      const pending = this._pending;
      this._pending = new Map();
      for (const [kind, payload] of pending) this._flush(kind, payload);
    }, wait);
  }

  clear() {
    this._pending.clear();
  }
}
