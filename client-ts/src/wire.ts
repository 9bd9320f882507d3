/** snake_case server JSON -> the client's camelCase types, with shape checks. */
import { LivePortraitError } from "./errors.js";
import { CONTROL_SPEC } from "./validate.js";
import {
  EMOTIONS, type Baseline, type EmotionType, type FaceControls, type HealthStatus, type MotionTarget, type RenderResult,
  type SessionInfo, type SessionState, type SessionStateEvent, type SessionStats, type VideoCodec,
  type RenderVideoResult, type VideoFormat,
} from "./types.js";

type Json = Record<string, unknown>;

function bad(what: string, body: unknown): LivePortraitError {
  return new LivePortraitError(0, "invalid_response",
                               `unexpected ${what} from the server: ${JSON.stringify(body).slice(0, 300)}`);
}

function obj(value: unknown, what: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad(what, value);
  return value as Json;
}

function num(body: Json, key: string, what: string): number {
  const v = body[key];
  if (typeof v !== "number") throw bad(what, body);
  return v;
}

function str(body: Json, key: string, what: string): string {
  const v = body[key];
  if (typeof v !== "string") throw bad(what, body);
  return v;
}

const optStr = (v: unknown): string | null => (typeof v === "string" ? v : null);

export function healthFromWire(value: unknown): HealthStatus {
  const b = obj(value, "health");
  return {
    status: str(b, "status", "health"),
    gpuAvailable: b["gpu_available"] === true,
    gpuName: optStr(b["gpu_name"]),
    cudaVersion: optStr(b["cuda_version"]),
    modelLoaded: b["model_loaded"] === true,
    engine: typeof b["engine"] === "string" ? b["engine"] : "unknown",
    version: typeof b["version"] === "string" ? b["version"] : "unknown",
  };
}

export function renderResultFromWire(value: unknown): RenderResult {
  const b = obj(value, "render result");
  const w = "render result";
  return {
    outputPath: str(b, "output_path", w),
    filename: str(b, "filename", w),
    emotion: str(b, "emotion", w) as EmotionType,
    intensity: num(b, "intensity", w),
    latencyMs: num(b, "latency_ms", w),
    gpuUsed: b["gpu_used"] === true,
    modelVersion: str(b, "model_version", w),
    width: num(b, "width", w),
    height: num(b, "height", w),
  };
}

export function batchFromWire(value: unknown): RenderResult[] {
  // The agreed protocol wraps the list ({"results": [...]}); a bare list is accepted too.
  const results = Array.isArray(value) ? value : obj(value, "batch result")["results"];
  if (!Array.isArray(results)) throw bad("batch result", value);
  return results.map(renderResultFromWire);
}

function motionFromWire(value: unknown): MotionTarget {
  const b = obj(value, "motion");
  const emotions = obj(b["emotions"], "motion emotions");
  const controls = obj(b["controls"], "motion controls");
  const outEmotions = {} as Record<EmotionType, number>;
  for (const e of EMOTIONS) outEmotions[e] = typeof emotions[e] === "number" ? emotions[e] : 0;
  const outControls = {} as Required<FaceControls>;
  for (const [name, spec] of Object.entries(CONTROL_SPEC)) {
    const v = controls[spec.wire];
    outControls[name as keyof FaceControls] = typeof v === "number" ? v : 0;
  }
  return { emotions: outEmotions, controls: outControls };
}

export function sessionInfoFromWire(value: unknown): SessionInfo {
  const b = obj(value, "session");
  const ice = Array.isArray(b["ice_servers"]) ? (b["ice_servers"] as SessionInfo["iceServers"]) : [];
  return {
    sessionId: str(b, "session_id", "session"),
    wsUrl: typeof b["ws_url"] === "string" ? b["ws_url"] : "",
    iceServers: ice,
    expiresIn: typeof b["expires_in"] === "number" ? b["expires_in"] : 0,
    fps: num(b, "fps", "session"),
    size: num(b, "size", "session"),
    codec: (typeof b["codec"] === "string" ? b["codec"] : "vp8") as VideoCodec,
    ...(typeof b["baseline"] === "string" ? { baseline: b["baseline"] as Baseline } : {}),
    ...(typeof b["session_token"] === "string" ? { sessionToken: b["session_token"] } : {}),
  };
}

export function sessionStateFromWire(value: unknown): SessionState {
  const b = obj(value, "session state");
  const w = "session state";
  return {
    sessionId: str(b, "session_id", w),
    fps: num(b, "fps", w),
    size: num(b, "size", w),
    codec: str(b, "codec", w) as VideoCodec,
    idleMotion: b["idle_motion"] === true,
    ...(typeof b["baseline"] === "string" ? { baseline: b["baseline"] as Baseline } : {}),
    viewers: num(b, "viewers", w),
    wsClients: num(b, "ws_clients", w),
    ageS: num(b, "age_s", w),
    framesRendered: num(b, "frames_rendered", w),
    motion: motionFromWire(b["motion"]),
    target: motionFromWire(b["target"]),
  };
}

export function stateEventFromWire(b: Json): SessionStateEvent {
  return {
    seq: num(b, "seq", "state event"),
    target: motionFromWire(b["target"]),
    transitionMs: typeof b["transition_ms"] === "number" ? b["transition_ms"] : 0,
    idleMotion: b["idle_motion"] === true,
  };
}

export function statsFromWire(b: Json): SessionStats {
  const n = (k: string): number => (typeof b[k] === "number" ? (b[k] as number) : 0);
  const latency = b["control_latency_ms"];
  return {
    fps: n("fps"),
    renderMs: n("render_ms"),
    dropped: n("dropped"),
    viewers: n("viewers"),
    frames: n("frames"),
    controlLatencyMs: typeof latency === "number" ? latency : null,
  };
}

export function renderVideoResultFromWire(value: unknown): RenderVideoResult {
  const w = "render video result";
  const b = obj(value, w);
  return {
    outputPath: str(b, "output_path", w),
    filename: str(b, "filename", w),
    format: str(b, "format", w) as VideoFormat,
    durationMs: num(b, "duration_ms", w),
    frames: num(b, "frames", w),
    fps: num(b, "fps", w),
    audio: b["audio"] === true,
    lipSource: typeof b["lip_source"] === "string" ? b["lip_source"] : "none",
    latencyMs: num(b, "latency_ms", w),
    width: num(b, "width", w),
    height: num(b, "height", w),
  };
}
