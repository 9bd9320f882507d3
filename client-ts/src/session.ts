/**
 * A live avatar session: created over REST, driven over its WebSocket.
 * Control calls resolve with the server's `state` reply (matched by message id), so a
 * rejected control surfaces as a typed LivePortraitError on the call that sent it.
 */
import { TypedEmitter } from "./emitter.js";
import { LivePortraitError, LivePortraitTimeoutError, LivePortraitValidationError } from "./errors.js";
import type { HttpTransport } from "./http.js";
import type { Logger } from "./logger.js";
import {
  type CloseEvent, type EmotionName, type EmotionWeights, type FaceControls, type FrameMeta, type FrameMode,
  type SessionInfo, type SessionState, type SessionStateEvent, type SessionStats, type SpeakOptions,
  type SpeechEnded, type SpeechStarted, type TransitionOptions,
} from "./types.js";
import {
  checkEmotion, checkInteger, checkIntensity, checkRange, checkTransition, controlsToWire,
} from "./validate.js";
import { type WebSocketLike, WS_OPEN, webSocketConstructor } from "./websocket.js";
import { sessionStateFromWire, stateEventFromWire, statsFromWire } from "./wire.js";

export interface AvatarSessionEvents {
  /** One complete encoded image (JPEG/WebP) from the WebSocket; a Buffer in Node. */
  frame: (frame: Uint8Array, meta: FrameMeta) => void;
  stats: (stats: SessionStats) => void;
  state: (state: SessionStateEvent) => void;
  /** The session rendered its first frame. */
  ready: () => void;
  /** Server errors not tied to a pending call, and socket failures. */
  error: (error: LivePortraitError) => void;
  close: (event: CloseEvent) => void;
  /** An utterance's first sample is playing (on every socket of the session). */
  speechStarted: (event: SpeechStarted) => void;
  /** An utterance played out or was interrupted. */
  speechEnded: (event: SpeechEnded) => void;
}

export interface SubscribeOptions {
  quality?: number;
  fps?: number;
  /** Each frame carries its presentation time (FrameMeta.ptsMs) to sync with your own audio. */
  timestamps?: boolean;
}

/** PCM for speak(): one buffer, or chunks of any size as they come (a TTS stream). */
export type SpeechPcm = Uint8Array | AsyncIterable<Uint8Array>;

const SPEECH_RATES = [16000, 24000, 48000];
const SPEECH_CHUNK = 64 * 1024; // bytes per binary message (the server takes up to 1 MiB)
const SPEECH_HIGH_WATER = 1024 * 1024; // pause reading the source while this much is unsent

interface PendingSpeech {
  resolve: (ended: SpeechEnded) => void;
  reject: (error: LivePortraitError) => void;
}

/** An ICE candidate as RTCIceCandidate.toJSON() gives it. */
export interface IceCandidateInit {
  candidate?: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

interface Pending {
  expect: string;
  resolve: (message: Record<string, unknown>) => void;
  reject: (error: LivePortraitError) => void;
  timer?: ReturnType<typeof setTimeout>;
}

const CLOSE_WAIT_MS = 2000;

function frameBytes(data: unknown): Uint8Array | undefined {
  const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
  if (data instanceof ArrayBuffer) return NodeBuffer !== undefined ? NodeBuffer.from(data) : new Uint8Array(data);
  if (data instanceof Uint8Array) return data;
  if (Array.isArray(data) && NodeBuffer !== undefined) return NodeBuffer.concat(data as Buffer[]); // ws fragments
  return undefined;
}

export function sessionSocketUrl(baseUrl: string, sessionId: string, token?: string): string {
  const url = new URL(`${baseUrl}/sessions/${encodeURIComponent(sessionId)}/ws`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // Browsers cannot set headers on a WebSocket: the session token rides in the query.
  if (token !== undefined) url.searchParams.set("token", token);
  return url.toString();
}

export class AvatarSession extends TypedEmitter<AvatarSessionEvents> {
  readonly id: string;
  readonly info: SessionInfo;
  readonly frames: FrameMode;
  private ws: WebSocketLike | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private frameSeq = 0;
  private frameFormat: "jpeg" | "webp" = "jpeg";
  private frameTimestamps = false;
  private nextUtterance = 1;
  private readonly speeches = new Map<string | number, PendingSpeech>();
  private ready = false;
  private closedReason: string | undefined;
  private closeEvent: CloseEvent | undefined;
  private closing: Promise<void> | undefined;
  private helloWaiter: { resolve: () => void; reject: (e: LivePortraitError) => void } | undefined;

  /** Use LivePortraitClient.openSession(). */
  constructor(private readonly transport: HttpTransport, private readonly logger: Logger,
              info: SessionInfo, frames: FrameMode) {
    super();
    this.id = info.sessionId;
    this.info = info;
    this.frames = frames;
  }

  get isReady(): boolean {
    return this.ready;
  }

  get isOpen(): boolean {
    return this.ws !== undefined && this.ws.readyState === WS_OPEN && this.closeEvent === undefined;
  }

  get framesReceived(): number {
    return this.frameSeq;
  }

  get iceServers(): SessionInfo["iceServers"] {
    return this.info.iceServers;
  }

  /** Opens the socket and waits for the server's hello. */
  async connect(timeoutMs: number): Promise<void> {
    const WebSocketImpl = await webSocketConstructor();
    const url = sessionSocketUrl(this.transport.baseUrl, this.id, this.info.sessionToken);
    const ws = new WebSocketImpl(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    const hello = new Promise<void>((resolve, reject) => {
      this.helloWaiter = { resolve, reject };
    });
    let failure = "";
    ws.addEventListener("message", (event) => this.onMessage(event.data));
    ws.addEventListener("error", (event) => {
      failure = event.message ?? (event.error instanceof Error ? event.error.message : "WebSocket error");
      this.logger.warn(`session ${this.id}: socket error: ${failure}`);
    });
    ws.addEventListener("close", (event) => this.onClose(event.code, event.reason, failure));
    const timer = setTimeout(() => {
      this.helloWaiter?.reject(new LivePortraitTimeoutError(
        `session ${this.id}: no hello within ${timeoutMs} ms`, timeoutMs));
    }, timeoutMs);
    try {
      await hello;
    } catch (err) {
      ws.close();
      throw err;
    } finally {
      clearTimeout(timer);
      this.helloWaiter = undefined;
    }
  }

  async setEmotion(emotion: EmotionName, intensity = 1, opts: TransitionOptions = {}): Promise<SessionStateEvent> {
    return this.control({
      type: "set_emotion", emotion: checkEmotion(emotion), intensity: checkIntensity(intensity),
      ...transition(opts),
    });
  }

  async setEmotions(weights: EmotionWeights, opts: TransitionOptions = {}): Promise<SessionStateEvent> {
    if (typeof weights !== "object" || weights === null) {
      throw new LivePortraitValidationError("invalid_value", "weights must be an object");
    }
    const wire: Record<string, number> = {};
    for (const [name, weight] of Object.entries(weights)) {
      if (weight === undefined) continue;
      wire[checkEmotion(name)] = checkRange(`weight of ${name}`, weight, 0, 1);
    }
    return this.control({ type: "set_emotions", weights: wire, ...transition(opts) });
  }

  async setControls(controls: FaceControls, opts: TransitionOptions = {}): Promise<SessionStateEvent> {
    return this.control({ type: "set_controls", ...controlsToWire(controls), ...transition(opts) });
  }

  /** Neutral emotions and all controls back to 0. */
  async reset(opts: TransitionOptions = {}): Promise<SessionStateEvent> {
    return this.control({ type: "reset", ...transition(opts) });
  }

  async setIdle(enabled: boolean): Promise<SessionStateEvent> {
    if (typeof enabled !== "boolean") {
      throw new LivePortraitValidationError("invalid_value", "setIdle(enabled) needs a boolean");
    }
    return this.control({ type: "set_idle", enabled });
  }

  /** Round-trip time in ms. */
  async ping(): Promise<number> {
    const started = Date.now();
    await this.request({ type: "ping", t: started }, "pong");
    return Date.now() - started;
  }

  /**
   * Asks for frames as binary WebSocket messages. The server has no direct reply to a
   * subscription, so a ping after it acts as a barrier: an error for it arrives first.
   */
  async subscribeFrames(format: "jpeg" | "webp", opts: SubscribeOptions = {}): Promise<void> {
    if (format !== "jpeg" && format !== "webp") {
      throw new LivePortraitValidationError("invalid_value", `frame format must be jpeg or webp, got ${String(format)}`);
    }
    const msg: Record<string, unknown> = { type: "subscribe_frames", format };
    if (opts.quality !== undefined) msg["quality"] = checkInteger("quality", opts.quality, 1, 100);
    if (opts.fps !== undefined) msg["fps"] = checkInteger("fps", opts.fps, 1, this.info.fps);
    if (opts.timestamps !== undefined) {
      if (typeof opts.timestamps !== "boolean") {
        throw new LivePortraitValidationError("invalid_value", "timestamps must be a boolean");
      }
      msg["timestamps"] = opts.timestamps;
    }
    this.frameFormat = format;
    this.frameTimestamps = opts.timestamps === true;
    await this.withBarrier(msg);
  }

  async unsubscribeFrames(): Promise<void> {
    await this.withBarrier({ type: "unsubscribe_frames" });
  }

  /**
   * Says `pcm` (16-bit little-endian mono at `sampleRate`) with lip-synced mouth movements.
   * Chunks may have any size; they are sent as they come, faster than real time is fine.
   * Resolves when the utterance has played out or was interrupted (speechEnded); rejects
   * with the server's error for it (e.g. speech_buffer_full past 120 s of queued audio).
   */
  async speak(pcm: SpeechPcm, opts: SpeakOptions): Promise<SpeechEnded> {
    const rate = opts?.sampleRate;
    if (!SPEECH_RATES.includes(rate as number)) {
      throw new LivePortraitValidationError("invalid_value", `sampleRate must be one of ${SPEECH_RATES.join(", ")}`);
    }
    const id = opts.id ?? `utt-${this.nextUtterance++}`;
    if (typeof id !== "string" || id === "" || this.speeches.has(id)) {
      throw new LivePortraitValidationError("invalid_value", "id must be a new non-empty string");
    }
    const isBuffer = pcm instanceof Uint8Array;
    if (isBuffer && pcm.byteLength % 2 !== 0) {
      throw new LivePortraitValidationError("invalid_value", "16-bit PCM needs an even byte count");
    }
    const ended = new Promise<SpeechEnded>((resolve, reject) => this.speeches.set(id, { resolve, reject }));
    ended.catch(() => {}); // the caller observes it below
    try {
      this.sendRaw({ type: "speak", id, format: "pcm_s16le", sample_rate: rate, channels: 1 });
      if (isBuffer) {
        for (let i = 0; i < pcm.byteLength; i += SPEECH_CHUNK) {
          if (!this.speeches.has(id)) break; // refused: stop sending
          await this.sendAudio(pcm.subarray(i, Math.min(pcm.byteLength, i + SPEECH_CHUNK)));
        }
      } else {
        let carry: Uint8Array | undefined; // an odd byte waits for the next chunk
        for await (const chunk of pcm) {
          if (!this.speeches.has(id)) break; // refused: stop sending
          let bytes = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk as ArrayBuffer);
          if (carry !== undefined) {
            const joined = new Uint8Array(carry.byteLength + bytes.byteLength);
            joined.set(carry);
            joined.set(bytes, carry.byteLength);
            bytes = joined;
            carry = undefined;
          }
          if (bytes.byteLength % 2 !== 0) {
            carry = bytes.slice(bytes.byteLength - 1);
            bytes = bytes.subarray(0, bytes.byteLength - 1);
          }
          for (let i = 0; i < bytes.byteLength; i += SPEECH_CHUNK) {
            await this.sendAudio(bytes.subarray(i, Math.min(bytes.byteLength, i + SPEECH_CHUNK)));
          }
        }
      }
      this.sendRaw({ type: "speak_end", id });
    } catch (err) {
      this.speeches.delete(id);
      throw err;
    }
    return ended;
  }

  /** Drops all queued speech; the face returns to listening (every pending speak() resolves
   * with interrupted: true). */
  interrupt(): void {
    this.sendRaw({ type: "interrupt" });
  }

  private async sendAudio(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength === 0) return;
    const ws = this.ws;
    if (ws === undefined || ws.readyState !== WS_OPEN || this.closeEvent !== undefined) {
      throw new LivePortraitError(0, "session_closed", `session ${this.id} is not open`);
    }
    ws.send(bytes);
    while ((ws.bufferedAmount ?? 0) > SPEECH_HIGH_WATER && this.closeEvent === undefined) {
      await new Promise((r) => setTimeout(r, 10)); // bounded memory on a slow link
    }
  }

  /** WebRTC: sends an SDP offer, resolves with the server's answer SDP (one viewer per offer). */
  async negotiate(offerSdp: string): Promise<string> {
    if (typeof offerSdp !== "string" || offerSdp === "") {
      throw new LivePortraitValidationError("invalid_value", "offer SDP must be a non-empty string");
    }
    const reply = await this.request({ type: "offer", sdp: offerSdp }, "answer");
    if (typeof reply["sdp"] !== "string") {
      throw new LivePortraitError(0, "invalid_response", "answer without sdp");
    }
    return reply["sdp"];
  }

  /** WebRTC: trickles one local ICE candidate; null ends trickling. */
  sendCandidate(candidate: IceCandidateInit | null): void {
    this.sendRaw({ type: "candidate", candidate });
  }

  /** The session's state over REST (GET /sessions/{id}). */
  async getState(): Promise<SessionState> {
    const body = await this.transport.json<unknown>({ method: "GET", path: `/sessions/${encodeURIComponent(this.id)}` });
    return sessionStateFromWire(body);
  }

  /** Deletes the session on the server and closes the socket. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** The token, when this client holds no API key (a browser that joined with a token). */
  private ownToken(): string | undefined {
    return this.transport.hasApiKey ? undefined : this.info.sessionToken;
  }

  private async doClose(): Promise<void> {
    try {
      await this.transport.send(
        { method: "DELETE", path: `/sessions/${encodeURIComponent(this.id)}`,
          ...(this.ownToken() !== undefined ? { bearer: this.ownToken() as string } : {}) },
        async () => undefined);
    } catch (err) {
      // Already gone (expired, or deleted elsewhere) is fine; anything else is worth a log line.
      if (!(err instanceof LivePortraitError && err.status === 404)) {
        this.logger.warn(`session ${this.id}: delete failed: ${(err as Error).message}`);
      }
    }
    const ws = this.ws;
    if (ws === undefined || this.closeEvent !== undefined) return;
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      this.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (ws.readyState === WS_OPEN) ws.close(1000, "client closed");
    await closed;
  }

  private async withBarrier(msg: Record<string, unknown>): Promise<void> {
    const id = this.nextId++;
    const failed = new Promise<never>((_, reject) => {
      // Only an error reply can settle this entry: success is the barrier's pong.
      this.pending.set(id, { expect: "", resolve: () => {}, reject });
    });
    failed.catch(() => {}); // observed below through Promise.race
    this.sendRaw({ ...msg, id });
    try {
      await Promise.race([this.request({ type: "ping", t: Date.now() }, "pong"), failed]);
    } finally {
      this.pending.delete(id);
    }
  }

  private async control(msg: Record<string, unknown>): Promise<SessionStateEvent> {
    return this.request(msg, "state").then((reply) => stateEventFromWire(reply));
  }

  private request(msg: Record<string, unknown>, expect: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const timeoutMs = this.transport.timeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new LivePortraitTimeoutError(
          `session ${this.id}: no ${expect} reply to ${String(msg["type"])} within ${timeoutMs} ms`, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { expect, resolve, reject, timer });
      try {
        this.sendRaw({ ...msg, id });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err);
      }
    });
  }

  private sendRaw(msg: Record<string, unknown>): void {
    if (this.ws === undefined || this.ws.readyState !== WS_OPEN || this.closeEvent !== undefined) {
      throw new LivePortraitError(0, "session_closed", `session ${this.id} is not open`);
    }
    this.ws.send(JSON.stringify(msg));
  }

  private onMessage(data: unknown): void {
    if (typeof data !== "string") {
      const bytes = frameBytes(data);
      if (bytes === undefined) return;
      this.frameSeq += 1;
      let image = bytes;
      let ptsMs: number | undefined;
      if (this.frameTimestamps && bytes.byteLength > 8) {
        // [float64 LE pts_ms][image] (docs/protocol.md, subscribe_frames timestamps)
        ptsMs = new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true);
        image = bytes.subarray(8);
      }
      this.emit("frame", image, {
        seq: this.frameSeq, format: this.frameFormat, bytes: image.byteLength, receivedAt: Date.now(),
        ...(ptsMs !== undefined ? { ptsMs } : {}),
      });
      return;
    }
    let msg: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(data);
      if (typeof parsed !== "object" || parsed === null) throw new Error("not an object");
      msg = parsed as Record<string, unknown>;
    } catch {
      this.logger.warn(`session ${this.id}: ignoring malformed server message`);
      return;
    }
    const id = typeof msg["id"] === "number" ? msg["id"] : undefined;
    const pending = id === undefined ? undefined : this.pending.get(id);
    switch (msg["type"]) {
      case "hello":
        this.helloWaiter?.resolve();
        return;
      case "ready":
        this.ready = true;
        this.emit("ready");
        return;
      case "stats":
        this.emit("stats", statsFromWire(msg));
        return;
      case "state":
        this.settle(id, pending, msg);
        this.emit("state", stateEventFromWire(msg));
        return;
      case "speech_started":
        this.emit("speechStarted", { id: msg["id"] as string | number, ptsMs: Number(msg["pts_ms"]) });
        return;
      case "speech_ended": {
        const ended: SpeechEnded = {
          id: msg["id"] as string | number, durationMs: Number(msg["duration_ms"]),
          interrupted: msg["interrupted"] === true, ptsMs: Number(msg["pts_ms"]),
        };
        const waiting = this.speeches.get(ended.id);
        if (waiting !== undefined) {
          this.speeches.delete(ended.id);
          waiting.resolve(ended);
        }
        this.emit("speechEnded", ended);
        return;
      }
      case "closed":
        this.closedReason = typeof msg["reason"] === "string" ? msg["reason"] : "closed";
        return;
      case "error": {
        const error = new LivePortraitError(
          0, typeof msg["code"] === "string" ? msg["code"] : "unknown_error",
          typeof msg["message"] === "string" ? msg["message"] : "server error");
        const speech = (typeof msg["id"] === "string" || typeof msg["id"] === "number")
          ? this.speeches.get(msg["id"]) : undefined;
        if (pending !== undefined && id !== undefined) {
          clearTimeout(pending.timer);
          this.pending.delete(id);
          pending.reject(error);
        } else if (speech !== undefined && error.code !== "invalid_audio") {
          // the utterance failed (refused or over the bound): its speak() rejects
          this.speeches.delete(msg["id"] as string | number);
          speech.reject(error);
        } else {
          this.emitError(error);
        }
        return;
      }
      default:
        this.settle(id, pending, msg);
    }
  }

  private settle(id: number | undefined, pending: Pending | undefined, msg: Record<string, unknown>): void {
    if (id === undefined || pending === undefined || pending.expect !== msg["type"]) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    pending.resolve(msg);
  }

  private emitError(error: LivePortraitError): void {
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else this.logger.warn(`session ${this.id}: ${error.code}: ${error.message}`);
  }

  private onClose(code: number, reason: string, failure: string): void {
    if (this.closeEvent !== undefined) return;
    const event: CloseEvent = { code, reason: this.closedReason ?? reason };
    this.closeEvent = event;
    const error = new LivePortraitError(
      0, "session_closed", `session ${this.id} socket closed (${code}${failure ? `: ${failure}` : ""})`);
    this.helloWaiter?.reject(failure.includes("404")
      ? new LivePortraitError(404, "not_found", `session ${this.id} not found`)
      : error);
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
    for (const speech of this.speeches.values()) speech.reject(error);
    this.speeches.clear();
    this.logger.info(`session ${this.id} closed`, { code, reason: event.reason });
    this.emit("close", event);
  }
}

function transition(opts: TransitionOptions): Record<string, number> {
  const ms = checkTransition(opts?.transitionMs);
  return ms === undefined ? {} : { transition_ms: ms };
}
