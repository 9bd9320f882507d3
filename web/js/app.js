// The demo page's main module: opens a session with a sample portrait, shows its video
// (WebRTC, else WebSocket frames), wires the controls, and keeps the session alive:
// reconnects on drops, recreates an expired session, deletes it when the tab closes.
import {
  ApiError, ControlCoalescer, SessionConnection, createSession, deleteSession, getSession,
  webRtcAvailable,
} from "./avatar-client.js";
import { buildControls } from "./controls.js";
import { describeError } from "./messages.js";
import { buildRenderPanel } from "./render-panel.js";
import { buildSpeechPanel } from "./speech-panel.js";
import { Stage, saveBlob } from "./stage.js";
import { StatsPanel } from "./stats.js";

const params = new URLSearchParams(window.location.search);
const FORCE_WEBSOCKET = params.get("transport") === "websocket";
const WEBRTC_FIRST_FRAME_TIMEOUT_MS = 5000;
const PING_INTERVAL_MS = 5000;

const $ = (id) => document.getElementById(id);
const stage = new Stage($("stage"));
const stats = new StatsPanel(stage);

const app = {
  portrait: null, // Blob of the current portrait
  session: null, // the server's session object
  conn: null, // SessionConnection
  generation: 0, // bumped on every new connection; stale callbacks check it
  attempts: 0, // consecutive reconnect attempts
  switching: false,
  timings: {}, // ms after navigation start of the first load's steps (console, bench)
};

function mark(step) {
  if (!(step in app.timings)) app.timings[step] = Math.round(performance.now());
}

// ---------- status display ----------

function setConn(state, text) {
  $("conn").dataset.state = state;
  $("conn-text").textContent = text;
}

function setTransport(kind) {
  const el = $("transport");
  el.dataset.transport = kind;
  el.textContent = { webrtc: `WebRTC · ${(app.session?.codec || "vp8").toUpperCase()}`,
    websocket: "WebSocket · JPEG", none: "no video yet" }[kind];
}

function showNotice(title, text, kind = "error") {
  const n = $("notice");
  n.classList.toggle("info", kind === "info");
  $("notice-title").textContent = title;
  $("notice-text").textContent = text;
  n.hidden = false;
}

function hideNotice() {
  $("notice").hidden = true;
}

function showError(err) {
  const { title, text } = describeError(err);
  showNotice(title, text);
}

const speech = buildSpeechPanel({
  getConn: () => app.conn,
  getSessionId: () => app.session?.session_id ?? null,
});
// How long this browser holds the video before showing it (part of audio-in -> lips).
speech.setVideoDelay(async () => {
  const pc = app.conn?.pc;
  if (!pc) return 0;
  try {
    for (const r of (await pc.getStats()).values()) {
      if (r.type === "inbound-rtp" && r.kind === "video" && r.jitterBufferEmittedCount > 0) {
        return (1000 * r.jitterBufferDelay) / r.jitterBufferEmittedCount;
      }
    }
  } catch { /* the peer closed */ }
  return 0;
});

// ---------- controls → coalesced messages ----------

const coalescer = new ControlCoalescer((kind, payload) => {
  const c = app.conn;
  if (!c) return; // the full target is re-sent on the next connect
  const t = controls.transitionMs();
  if (kind === "emotions") c.setEmotions(payload, t);
  else if (kind === "controls") c.setControls(payload, t);
});

const controls = buildControls(document, {
  onEmotions: (w) => coalescer.push("emotions", w),
  onControls: (partial) => coalescer.push("controls", partial),
  onIdle: (on) => app.conn?.setIdle(on),
  onReset: () => {
    coalescer.clear();
    app.conn?.reset(controls.transitionMs());
  },
  onBaseline: () => { if (app.portrait) usePortrait(app.portrait); },
});

/** After a (re)connect: make the server's target match the sliders. */
function resendTarget(conn) {
  const w = controls.weights();
  if (Object.values(w).some((v) => v !== 0)) conn.setEmotions(w, 0);
  const ctl = controls.controls();
  if (Object.values(ctl).some((v) => v !== 0)) conn.setControls(ctl, 0);
  if (!controls.idleEnabled()) conn.setIdle(false);
}

// ---------- video transport ----------

function useWebSocketFrames(conn, why) {
  if (conn !== app.conn || conn.fellBack) return;
  conn.fellBack = true;
  conn.stopWebRTC();
  stats.setPeer(null);
  stage.useCanvas();
  setTransport("websocket");
  conn.subscribeFrames({ format: "jpeg", quality: 80, fps: app.session.fps });
  if (why) console.info(`video over WebSocket: ${why}`);
}

async function startVideo(conn, gen) {
  if (FORCE_WEBSOCKET || !webRtcAvailable()) {
    useWebSocketFrames(conn, FORCE_WEBSOCKET ? "requested" : "WebRTC is not available in this browser");
    return;
  }
  try {
    await conn.startWebRTC();
  } catch (err) {
    useWebSocketFrames(conn, `WebRTC failed (${err.message})`);
    return;
  }
  // No frame in time (ICE blocked, for example): fall back rather than show a still.
  const shownBefore = stage.framesShown;
  setTimeout(() => {
    if (gen === app.generation && !conn.fellBack
        && (!conn.gotTrack || stage.transport !== "webrtc" || stage.framesShown === shownBefore)) {
      useWebSocketFrames(conn, "no WebRTC frame in time");
    }
  }, WEBRTC_FIRST_FRAME_TIMEOUT_MS);
}

// ---------- connection lifecycle ----------

function connect(session) {
  const gen = ++app.generation;
  const conn = new SessionConnection(session);
  app.conn = conn;
  app.session = session;
  $("stage").dataset.sessionId = session.session_id;
  stats.wsBytes = 0;
  const live = () => gen === app.generation;

  conn.addEventListener("hello", () => {
    if (!live()) return;
    app.attempts = 0;
    mark("ws_hello");
    setConn("connecting", "Starting video…");
    resendTarget(conn);
    startVideo(conn, gen);
  });
  conn.addEventListener("track", (ev) => {
    if (!live() || conn.fellBack) return;
    if (ev.detail.kind === "audio") { // the avatar's voice: the Speak panel plays it
      speech.attachTrack(ev.detail.track);
      return;
    }
    conn.gotTrack = true;
    stage.showStream(ev.detail.stream);
    stats.setPeer(ev.detail.pc);
    setTransport("webrtc");
  });
  conn.addEventListener("pcstate", (ev) => {
    if (!live()) return;
    const s = ev.detail.state;
    stats.setConnection(s);
    if (s === "failed") useWebSocketFrames(conn, "the WebRTC connection failed");
  });
  conn.addEventListener("frame", (ev) => {
    if (!live()) return;
    stats.wsBytes += ev.detail.size;
    stage.drawBlob(ev.detail);
  });
  conn.addEventListener("stats", (ev) => { if (live()) stats.server(ev.detail); });
  conn.addEventListener("pong", (ev) => {
    if (live() && Number.isFinite(ev.detail.t)) stats.setRtt(performance.now() - ev.detail.t);
  });
  conn.addEventListener("servererror", (ev) => {
    console.warn(`server: ${ev.detail.code}: ${ev.detail.message}`);
    const d = ev.detail;
    if (live() && (["speak", "speak_end", "speech"].includes(d.request_type) || /^(speech|audio)_/.test(d.code))) {
      speech.onEvent(d);
    }
  });
  for (const type of ["speech_started", "speech_ended"]) {
    conn.addEventListener(type, (ev) => { if (live()) speech.onEvent(ev.detail); });
  }
  conn.addEventListener("closed", (ev) => {
    if (!live() || ev.detail.intentional) return;
    stats.setConnection("disconnected");
    scheduleReconnect(ev.detail.serverReason);
  });

  stage.nextFrame().then(() => {
    if (!live()) return;
    mark("first_frame");
    setConn("live", "Live");
    stage.setBusy(false);
    if (stage.transport === "websocket") stats.setConnection("WebSocket open");
  });
  conn.open().catch(() => { /* the "closed" event schedules the retry */ });
}

function scheduleReconnect(serverReason) {
  const gen = app.generation;
  const delay = Math.min(8000, 400 * 2 ** app.attempts);
  app.attempts += 1;
  setConn("connecting", serverReason === "expired" ? "Session expired, restarting…" : "Reconnecting…");
  setTimeout(() => reconnect(gen, serverReason), delay);
}

async function reconnect(gen, serverReason) {
  if (gen !== app.generation) return;
  if (app.switching) { // an upload is deciding which session comes next; look again later
    scheduleReconnect(serverReason);
    return;
  }
  let alive = null;
  if (serverReason !== "deleted" && serverReason !== "expired") {
    try {
      alive = await getSession(app.session.session_id);
    } catch {
      scheduleReconnect(null); // server still down
      return;
    }
  }
  if (gen !== app.generation) return;
  if (alive) {
    connect(app.session);
    return;
  }
  // The session is gone: start a new one with the same portrait and the same sliders.
  try {
    const session = await createSession(app.portrait, sessionOptions());
    if (gen === app.generation) connect(session);
    else deleteSession(session.session_id);
  } catch (err) {
    if (gen !== app.generation) return;
    if (err instanceof ApiError && err.status > 0 && err.status < 500 && err.status !== 429) {
      setConn("error", "Session lost");
      showError(err);
      return;
    }
    scheduleReconnect(null);
  }
}

function sessionOptions() {
  return { idleMotion: controls.idleEnabled(), baseline: controls.baseline() };
}

/**
 * Make `portrait` the live face. On failure the current stream keeps running untouched and
 * the error is shown. Returns true on success.
 */
async function usePortrait(portrait) {
  if (app.switching) return false;
  app.switching = true;
  setBusyButtons(true);
  stage.setBusy(true, app.session ? "Preparing the new portrait…" : "Waking the portrait up…");
  try {
    let session;
    try {
      session = await createSession(portrait, sessionOptions());
    } catch (err) {
      showError(err);
      if (!app.session) {
        setConn("error", "No session");
        stage.setBusy(true, describeError(err).title);
        // Full or busy server: try again when it says so (the page must come alive by itself).
        if (err.retryAfter || err.code === "network_error") {
          setTimeout(() => { if (!app.session) usePortrait(portrait); }, 1000 * (err.retryAfter || 3));
        }
      }
      return false;
    }
    mark("session_created");
    hideNotice();
    const old = { session: app.session, conn: app.conn };
    app.portrait = portrait;
    connect(session);
    if (old.conn) old.conn.close();
    if (old.session) deleteSession(old.session.session_id);
    return true;
  } finally {
    app.switching = false;
    setBusyButtons(false);
    if (app.session) stage.nextFrame().then(() => stage.setBusy(false));
  }
}

function setBusyButtons(busy) {
  for (const b of document.querySelectorAll("#upload-btn, [data-sample]")) b.disabled = busy;
}

async function loadSample(name) {
  let blob;
  try {
    const r = await fetch(`/samples/${encodeURIComponent(name)}`);
    if (!r.ok) throw new ApiError(r.status, "sample_missing", `sample ${name} is not available`);
    blob = new File([await r.blob()], `${name}.jpg`, { type: r.headers.get("Content-Type") || "image/jpeg" });
    mark("sample_loaded");
  } catch (err) {
    showNotice("Sample unavailable", `${err.message}. Upload your own portrait instead.`);
    setConn("error", "No portrait");
    stage.setBusy(true, "Upload a portrait to start");
    return;
  }
  await usePortrait(blob);
}

function handleFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError({ code: "not_an_image", message: "" });
    return;
  }
  usePortrait(file);
}

// ---------- page wiring ----------

const fileInput = $("file-input");
$("upload-btn").addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  handleFile(fileInput.files[0]);
  fileInput.value = ""; // the same file may be chosen again
});
for (const b of document.querySelectorAll("[data-sample]")) {
  b.addEventListener("click", () => loadSample(b.dataset.sample));
}
// Offer only the samples this server has (astronaut needs scikit-image, for example).
fetch("/samples").then((r) => (r.ok ? r.json() : null)).then((list) => {
  if (!list || !Array.isArray(list.samples)) return;
  for (const b of document.querySelectorAll("[data-sample]")) b.hidden = !list.samples.includes(b.dataset.sample);
}).catch(() => { /* keep the buttons; a click reports what is missing */ });

let dragDepth = 0;
document.addEventListener("dragenter", (ev) => {
  if (!ev.dataTransfer?.types?.includes("Files")) return;
  dragDepth += 1;
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) document.body.classList.remove("dragging");
});
document.addEventListener("dragover", (ev) => ev.preventDefault());
document.addEventListener("drop", (ev) => {
  ev.preventDefault();
  dragDepth = 0;
  document.body.classList.remove("dragging");
  handleFile(ev.dataTransfer?.files?.[0]);
});

$("notice-close").addEventListener("click", hideNotice);

$("snapshot-btn").addEventListener("click", async () => {
  const png = await stage.snapshot();
  if (!png) {
    showNotice("No frame yet", "Wait for the video to start.", "info");
    return;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  saveBlob(png, `avatar-${stamp}.png`);
});

buildRenderPanel(() => app.portrait, () => controls.baseline());

setInterval(() => app.conn?.ping(), PING_INTERVAL_MS);

// Closing the tab frees the server's session at once (sendBeacon cannot DELETE).
window.addEventListener("pagehide", () => {
  app.generation += 1;
  if (app.conn) app.conn.close();
  if (app.session) deleteSession(app.session.session_id, { keepalive: true });
  app.session = null;
});
// Back from the back/forward cache: the old session was deleted, start a fresh one.
window.addEventListener("pageshow", (ev) => {
  if (ev.persisted && app.portrait) usePortrait(app.portrait);
});

// Read-only view for debugging in the console and for the browser tests.
window.avatarDemo = Object.freeze({
  get sessionId() { return app.session?.session_id ?? null; },
  get transport() { return stage.transport; },
  get framesShown() { return stage.framesShown; },
  get firstFrameMs() { return stage.firstFrameAt; }, // ms after navigation start
  get timings() { return { ...app.timings }; },
  get speech() { return speech.snapshot(); },
});

setConn("connecting", "Connecting…");
loadSample(params.get("sample") || "grace_hopper");
