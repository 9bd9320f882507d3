/** The seed-compatible REST client, plus live sessions. */
import { LivePortraitError, LivePortraitTimeoutError, LivePortraitValidationError } from "./errors.js";
import { HttpTransport } from "./http.js";
import { consoleLogger, type Logger, silentLogger } from "./logger.js";
import { AvatarSession } from "./session.js";
import { toSourceBlob, type SourceBlob } from "./source.js";
import type {
  Baseline, EmotionName, EmotionType, FrameMode, HealthStatus, OpenSessionOptions, OutputFormat, RenderedImage,
  RenderRequest, RenderResult, SessionInfo, SessionState, SourceImage,
  RenderedVideo, RenderVideoRequest, RenderVideoResult, VideoFormat,
} from "./types.js";
import { VIDEO_FORMATS } from "./types.js";
import {
  checkBaseline, checkEmotion, checkFilename, checkFormat, checkInteger, checkIntensity, checkRange,
} from "./validate.js";
import {
  batchFromWire, healthFromWire, renderResultFromWire, renderVideoResultFromWire, sessionInfoFromWire,
  sessionStateFromWire,
} from "./wire.js";

export interface LivePortraitClientConfig {
  /** e.g. "http://localhost:8001". */
  baseUrl: string;
  /** Per-request deadline in ms (default 30000). */
  timeout?: number;
  /** Log through console when no `logger` is given (default false: silent). */
  enableLogging?: boolean;
  logger?: Logger;
  /** Retries of a 429/503 answer, honouring Retry-After (default 3; 0 disables). */
  maxRetries?: number;
  /** A Retry-After longer than this is not waited for (default 30000 ms). */
  maxRetryDelayMs?: number;
  /** Replaces the global fetch (proxies, instrumentation). */
  fetch?: typeof fetch;
  /**
   * The server's API key (`--api-key` / LPA_API_KEYS), sent as `Authorization: Bearer`.
   * Server side only: give browsers a session token instead (joinSession).
   */
  apiKey?: string;
}

export interface JoinSessionOptions {
  /** The session_id a backend got from POST /sessions. */
  sessionId: string;
  /** Its session_token: opens only this session (WebSocket, GET and DELETE). */
  sessionToken?: string;
  frames?: FrameMode;
  frameQuality?: number;
  frameFps?: number;
}

export interface WaitForHealthyOptions {
  /** Give up after this long (default: 60000 ms). */
  timeoutMs?: number;
  /** Poll interval (default 500 ms). */
  intervalMs?: number;
}

const CONTENT_TYPES: Record<OutputFormat, string> = { png: "image/png", jpg: "image/jpeg", webp: "image/webp" };

/** A Buffer in Node; browsers have none, so they get the plain bytes. */
function toBuffer(data: ArrayBuffer): Buffer {
  const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
  return (NodeBuffer !== undefined ? NodeBuffer.from(data) : new Uint8Array(data)) as Buffer;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function form(source: SourceBlob, fields: [string, string][]): () => FormData {
  return () => {
    const body = new FormData();
    body.append("source_image", source.blob, source.filename);
    for (const [name, value] of fields) body.append(name, value);
    return body;
  };
}

export class LivePortraitClient {
  readonly baseUrl: string;
  private readonly http: HttpTransport;
  private readonly logger: Logger;

  constructor(config: LivePortraitClientConfig) {
    if (typeof config?.baseUrl !== "string" || !/^https?:\/\//.test(config.baseUrl)) {
      throw new LivePortraitValidationError("invalid_config", "baseUrl must be an http(s) URL");
    }
    const timeout = config.timeout ?? 30000;
    if (!(Number.isFinite(timeout) && timeout > 0)) {
      throw new LivePortraitValidationError("invalid_config", "timeout must be a positive number of ms");
    }
    this.logger = config.logger ?? (config.enableLogging === true ? consoleLogger() : silentLogger);
    this.http = new HttpTransport({
      baseUrl: config.baseUrl,
      timeoutMs: timeout,
      maxRetries: Math.max(0, Math.floor(config.maxRetries ?? 3)),
      maxRetryDelayMs: config.maxRetryDelayMs ?? 30000,
      logger: this.logger,
      fetchImpl: config.fetch ?? globalThis.fetch.bind(globalThis),
      ...(config.apiKey !== undefined ? { apiKey: checkApiKey(config.apiKey) } : {}),
    });
    this.baseUrl = this.http.baseUrl;
  }

  async health(): Promise<HealthStatus> {
    return healthFromWire(await this.http.json<unknown>({ method: "GET", path: "/health" }));
  }

  /** Polls /health until the service answers "healthy", or throws LivePortraitTimeoutError. */
  async waitForHealthy(options: WaitForHealthyOptions = {}): Promise<HealthStatus> {
    const timeoutMs = options.timeoutMs ?? 60000;
    const intervalMs = options.intervalMs ?? 500;
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      const left = deadline - Date.now();
      try {
        const health = await this.http.send(
          { method: "GET", path: "/health" },
          async (res) => healthFromWire(await res.json()),
          Math.max(1, Math.min(this.http.timeoutMs, left)),
        );
        if (health.status === "healthy") {
          this.logger.info("service healthy", { engine: health.engine, gpu: health.gpuAvailable });
          return health;
        }
        last = `status ${health.status}`;
      } catch (err) {
        last = err;
      }
      if (Date.now() + intervalMs > deadline) {
        const why = last instanceof Error ? last.message : String(last);
        throw new LivePortraitTimeoutError(
          `service at ${this.baseUrl} not healthy within ${timeoutMs} ms (last: ${why})`, timeoutMs, last);
      }
      this.logger.debug("waiting for the service", { reason: String(last) });
      await sleep(intervalMs);
    }
  }

  /** POST /render: renders one emotion and stores the output on the server. */
  async render(request: RenderRequest): Promise<RenderResult> {
    const { source, fields } = await this.renderForm(request);
    const started = Date.now();
    const result = renderResultFromWire(
      await this.http.json<unknown>({ method: "POST", path: "/render", body: form(source, fields) }));
    this.logger.info(`rendered ${result.emotion} in ${result.latencyMs} ms`,
                     { filename: result.filename, roundTripMs: Date.now() - started });
    return result;
  }

  /** POST /render with Accept: image/...: the image bytes in one round trip, nothing to download. */
  async renderImage(request: RenderRequest): Promise<RenderedImage> {
    const { source, fields, format } = await this.renderForm(request);
    return this.http.send(
      { method: "POST", path: "/render", body: form(source, fields), accept: CONTENT_TYPES[format] },
      async (res) => {
        const contentType = res.headers.get("content-type") ?? "";
        if (!contentType.startsWith("image/")) {
          throw new LivePortraitError(res.status, "invalid_response", `expected an image, got ${contentType}`);
        }
        const latency = Number(res.headers.get("x-latency-ms"));
        return {
          data: toBuffer(await res.arrayBuffer()),
          contentType,
          format,
          latencyMs: res.headers.has("x-latency-ms") && Number.isFinite(latency) ? latency : null,
        };
      });
  }

  /** POST /render/batch: one result per emotion, in order. */
  async renderBatch(sourceImage: SourceImage, emotions: readonly EmotionName[], intensity = 0.7,
                    outputFormat: OutputFormat = "png",
                    options: { baseline?: Baseline } = {}): Promise<RenderResult[]> {
    if (!Array.isArray(emotions) || emotions.length === 0) {
      throw new LivePortraitValidationError("invalid_emotion", "emotions must be a non-empty array");
    }
    const names: EmotionType[] = emotions.map(checkEmotion);
    const fields: [string, string][] = names.map((e): [string, string] => ["emotions", e]);
    fields.push(["intensity", String(checkIntensity(intensity))], ["output_format", checkFormat(outputFormat)]);
    if (options.baseline !== undefined) fields.push(["baseline", checkBaseline(options.baseline)]);
    const source = await toSourceBlob(sourceImage);
    return batchFromWire(
      await this.http.json<unknown>({ method: "POST", path: "/render/batch", body: form(source, fields) }));
  }

  /** POST /render/video: a lip-synced clip (mp4 or webm), stored on the server (downloadOutput). */
  async renderVideo(request: RenderVideoRequest): Promise<RenderVideoResult> {
    const body = await this.videoForm(request);
    const result = renderVideoResultFromWire(
      await this.http.json<unknown>({ method: "POST", path: "/render/video", body: body.form }));
    this.logger.info(`rendered a ${result.durationMs} ms clip in ${result.latencyMs} ms`, { filename: result.filename });
    return result;
  }

  /** POST /render/video with Accept: video/...: the clip's bytes in one round trip. */
  async renderVideoBytes(request: RenderVideoRequest): Promise<RenderedVideo> {
    const { form: body, format } = await this.videoForm(request);
    return this.http.send(
      { method: "POST", path: "/render/video", body, accept: `video/${format}` },
      async (res) => {
        const contentType = res.headers.get("content-type") ?? "";
        if (!contentType.startsWith("video/")) {
          throw new LivePortraitError(res.status, "invalid_response", `expected a video, got ${contentType}`);
        }
        const header = (name: string): number | null => {
          const v = Number(res.headers.get(name));
          return res.headers.has(name) && Number.isFinite(v) ? v : null;
        };
        return { data: toBuffer(await res.arrayBuffer()), contentType, format,
                 latencyMs: header("x-latency-ms"), frames: header("x-frames") };
      });
  }

  /** GET /output/{filename}. */
  async downloadOutput(filename: string): Promise<Buffer> {
    const name = checkFilename(filename);
    return this.http.send({ method: "GET", path: `/output/${encodeURIComponent(name)}` },
                          async (res) => toBuffer(await res.arrayBuffer()));
  }

  /** DELETE /output/{filename}; resolves true once deleted. */
  async deleteOutput(filename: string): Promise<boolean> {
    const name = checkFilename(filename);
    const body = await this.http.json<{ deleted?: unknown }>(
      { method: "DELETE", path: `/output/${encodeURIComponent(name)}` });
    return body.deleted === true;
  }

  /**
   * POST /sessions, then connects the session's WebSocket. In "jpeg"/"webp" mode frames
   * arrive as `frame` events; in "webrtc" mode call attachVideo() in a browser.
   */
  async openSession(options: OpenSessionOptions): Promise<AvatarSession> {
    if (typeof options !== "object" || options === null) {
      throw new LivePortraitValidationError("invalid_value", "openSession needs an options object");
    }
    const frames: FrameMode = options.frames ?? "jpeg";
    if (frames !== "webrtc" && frames !== "jpeg" && frames !== "webp") {
      throw new LivePortraitValidationError("invalid_value", `frames must be webrtc, jpeg or webp, got ${String(frames)}`);
    }
    const fields: [string, string][] = [];
    if (options.fps !== undefined) fields.push(["fps", String(checkInteger("fps", options.fps, 1, 60))]);
    if (options.size !== undefined) {
      const size = checkInteger("size", options.size, 128, 1024);
      if (size % 16 !== 0) throw new LivePortraitValidationError("invalid_value", "size must be a multiple of 16");
      fields.push(["size", String(size)]);
    }
    if (options.codec !== undefined) {
      if (options.codec !== "vp8" && options.codec !== "h264") {
        throw new LivePortraitValidationError("invalid_value", "codec must be vp8 or h264");
      }
      fields.push(["codec", options.codec]);
    }
    if (options.idleMotion !== undefined) fields.push(["idle_motion", options.idleMotion ? "true" : "false"]);
    if (options.baseline !== undefined) fields.push(["baseline", checkBaseline(options.baseline)]);
    if (options.frameQuality !== undefined) checkInteger("frameQuality", options.frameQuality, 1, 100);
    const source = await toSourceBlob(options.sourceImage);
    const info = sessionInfoFromWire(
      await this.http.json<unknown>({ method: "POST", path: "/sessions", body: form(source, fields) }));
    return this.startSession(info, frames, options);
  }

  /**
   * Joins a session someone else created (e.g. a backend holding the API key), with only its
   * session token: the token goes in the WebSocket URL and on GET/DELETE of that session.
   */
  async joinSession(options: JoinSessionOptions): Promise<AvatarSession> {
    if (typeof options?.sessionId !== "string" || options.sessionId === "") {
      throw new LivePortraitValidationError("invalid_value", "joinSession needs a sessionId");
    }
    const frames: FrameMode = options.frames ?? "jpeg";
    if (frames !== "webrtc" && frames !== "jpeg" && frames !== "webp") {
      throw new LivePortraitValidationError("invalid_value", `frames must be webrtc, jpeg or webp, got ${String(frames)}`);
    }
    const token = options.sessionToken;
    const state = await this.http.json<unknown>({
      method: "GET", path: `/sessions/${encodeURIComponent(options.sessionId)}`,
      ...(token !== undefined ? { bearer: token } : {}),
    });
    const info = { ...sessionInfoFromWire(state), ...(token !== undefined ? { sessionToken: token } : {}) };
    return this.startSession(info, frames, options);
  }

  private async startSession(info: SessionInfo, frames: FrameMode,
                             options: { frameQuality?: number; frameFps?: number }): Promise<AvatarSession> {
    const session = new AvatarSession(this.http, this.logger, info, frames);
    try {
      await session.connect(this.http.timeoutMs);
      if (frames !== "webrtc") {
        const sub: { quality?: number; fps?: number } = {};
        if (options.frameQuality !== undefined) sub.quality = options.frameQuality;
        if (options.frameFps !== undefined) sub.fps = options.frameFps;
        await session.subscribeFrames(frames, sub);
      }
    } catch (err) {
      await session.close();
      throw err;
    }
    this.logger.info(`session ${info.sessionId} open`, { fps: info.fps, size: info.size, frames });
    return session;
  }

  /** GET /sessions. */
  async listSessions(): Promise<SessionState[]> {
    const body = await this.http.json<{ sessions?: unknown }>({ method: "GET", path: "/sessions" });
    return Array.isArray(body.sessions) ? body.sessions.map(sessionStateFromWire) : [];
  }

  private async videoForm(request: RenderVideoRequest): Promise<{ form: () => FormData; format: VideoFormat }> {
    if (typeof request !== "object" || request === null) {
      throw new LivePortraitValidationError("invalid_value", "renderVideo needs a request object");
    }
    const format = request.outputFormat ?? "mp4";
    if (!VIDEO_FORMATS.includes(format)) {
      throw new LivePortraitValidationError("invalid_output_format",
                                            `outputFormat must be one of ${VIDEO_FORMATS.join(", ")}`);
    }
    const fields: [string, string][] = [["output_format", format]];
    if (request.emotion !== undefined) fields.push(["emotion", checkEmotion(request.emotion)]);
    if (request.intensity !== undefined) fields.push(["intensity", String(checkIntensity(request.intensity))]);
    if (request.fps !== undefined) fields.push(["fps", String(checkRange("fps", request.fps, 1, 60, "invalid_fps"))]);
    if (request.durationS !== undefined) {
      if (request.audio !== undefined) {
        throw new LivePortraitValidationError("invalid_duration_s", "durationS is only for clips without audio");
      }
      fields.push(["duration_s", String(checkRange("durationS", request.durationS, 0.04, 120, "invalid_duration_s"))]);
    }
    if (request.baseline !== undefined) fields.push(["baseline", checkBaseline(request.baseline)]);
    if (request.emotionTimeline !== undefined) {
      fields.push(["emotion_timeline", JSON.stringify(request.emotionTimeline.map((k) => ({
        t_s: k.tS, emotion: checkEmotion(k.emotion),
        ...(k.intensity !== undefined ? { intensity: k.intensity } : {}),
        ...(k.transitionS !== undefined ? { transition_s: k.transitionS } : {}),
      })))]);
    }
    if (request.timings !== undefined) {
      fields.push(["timings", JSON.stringify(request.timings.map((t) => ({
        start_ms: t.startMs, end_ms: t.endMs,
        ...(t.phoneme !== undefined ? { phoneme: t.phoneme } : {}),
        ...(t.viseme !== undefined ? { viseme: t.viseme } : {}),
        ...(t.weight !== undefined ? { weight: t.weight } : {}),
      })))]);
    }
    const source = await toSourceBlob(request.sourceImage);
    const audio = request.audio !== undefined ? await toSourceBlob(request.audio) : undefined;
    return {
      format,
      form: () => {
        const body = form(source, fields)();
        if (audio !== undefined) body.append("audio", audio.blob, audio.filename);
        return body;
      },
    };
  }

  private async renderForm(request: RenderRequest):
      Promise<{ source: SourceBlob; fields: [string, string][]; format: OutputFormat }> {
    if (typeof request !== "object" || request === null) {
      throw new LivePortraitValidationError("invalid_value", "render needs a request object");
    }
    const emotion = checkEmotion(request.emotion);
    const intensity = checkIntensity(request.intensity ?? 0.7);
    const format = checkFormat(request.outputFormat ?? "png");
    const source = await toSourceBlob(request.sourceImage);
    const fields: [string, string][] = [["emotion", emotion], ["intensity", String(intensity)], ["output_format", format]];
    if (request.baseline !== undefined) fields.push(["baseline", checkBaseline(request.baseline)]);
    return { source, format, fields };
  }
}

function checkApiKey(key: unknown): string {
  if (typeof key !== "string" || key === "" || /[\s,]/.test(key)) {
    throw new LivePortraitValidationError("invalid_config", "apiKey must be a non-empty string without spaces");
  }
  return key;
}

export function createLivePortraitClient(config: LivePortraitClientConfig): LivePortraitClient {
  return new LivePortraitClient(config);
}
