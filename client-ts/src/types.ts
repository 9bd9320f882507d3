/** Public data types of the liveportrait-avatar protocol, in the client's camelCase form. */

/** The seven emotions the service renders. Values are the wire names. */
export enum EmotionType {
  NEUTRAL = "neutral",
  HAPPY = "happy",
  SAD = "sad",
  SURPRISED = "surprised",
  ANGRY = "angry",
  DISGUSTED = "disgusted",
  FEARFUL = "fearful",
}

/** An emotion as the enum member or its lowercase string ("happy"). */
export type EmotionName = EmotionType | `${EmotionType}`;

export const EMOTIONS: readonly EmotionType[] = Object.freeze(Object.values(EmotionType));

export type OutputFormat = "png" | "jpg" | "webp";

/**
 * What the face is with no emotion. "neutral" (the server's default): expressions are absolute,
 * the photo's own smile or open mouth is removed first. "photo": emotions are added to the
 * face as photographed.
 */
export type Baseline = "neutral" | "photo";
export const BASELINES: readonly Baseline[] = ["neutral", "photo"];

/**
 * A portrait: a file path (Node only), raw bytes, or a Blob (Node >= 20 and browsers).
 */
export type SourceImage = string | Uint8Array | ArrayBuffer | Blob;

export interface HealthStatus {
  status: string;
  gpuAvailable: boolean;
  gpuName: string | null;
  cudaVersion: string | null;
  modelLoaded: boolean;
  engine: string;
  version: string;
}

export interface RenderRequest {
  sourceImage: SourceImage;
  emotion: EmotionName;
  /** 0..1, default 0.7 (the server's default). */
  intensity?: number;
  /** Default "png". */
  outputFormat?: OutputFormat;
  /** Default: the server's ("neutral", absolute expressions). */
  baseline?: Baseline;
}

export interface RenderResult {
  outputPath: string;
  filename: string;
  emotion: EmotionType;
  intensity: number;
  latencyMs: number;
  gpuUsed: boolean;
  modelVersion: string;
  width: number;
  height: number;
}

/** The bytes of one render, fetched in a single round trip (Accept: image/...). */
export interface RenderedImage {
  data: Buffer;
  contentType: string;
  format: OutputFormat;
  /** From the X-Latency-Ms header; null when the server did not send it. */
  latencyMs: number | null;
}

/** The low-level face controls; every field is optional and 0 means "at the baseline". */
export interface FaceControls {
  smile?: number; // -1..1
  mouthOpen?: number; // 0..1
  eyesOpen?: number; // -1..1
  eyeLeft?: number; // -1..1
  eyeRight?: number; // -1..1
  brows?: number; // -1..1
  gazeX?: number; // -1..1
  gazeY?: number; // -1..1
  yaw?: number; // -20..20 degrees
  pitch?: number; // -20..20 degrees
  roll?: number; // -20..20 degrees
}

export type ControlName = keyof FaceControls;

/** Emotion blend weights, each 0..1; emotions not named become 0. */
export type EmotionWeights = { [K in `${EmotionType}`]?: number };

export interface TransitionOptions {
  /** Ease toward the new target over this many ms (0..10000; server default 250). */
  transitionMs?: number;
}

export interface MotionTarget {
  emotions: Record<EmotionType, number>;
  controls: Required<FaceControls>;
}

/** The server's `state` event, sent after every accepted control message. */
export interface SessionStateEvent {
  seq: number;
  target: MotionTarget;
  transitionMs: number;
  idleMotion: boolean;
}

/** The server's `stats` event, once a second. */
export interface SessionStats {
  fps: number;
  renderMs: number;
  dropped: number;
  viewers: number;
  frames: number;
  controlLatencyMs: number | null;
}

export type FrameMode = "webrtc" | "jpeg" | "webp";
export type VideoCodec = "vp8" | "h264";

export interface OpenSessionOptions {
  sourceImage: SourceImage;
  /** 1..60, default 25. */
  fps?: number;
  /** 128..1024, a multiple of 16, default 512. */
  size?: number;
  /** "webrtc" (browsers, see attachVideo) or WebSocket frames as JPEG/WebP. Default "jpeg". */
  frames?: FrameMode;
  codec?: VideoCodec;
  /** Blinks and small head sway; default true. */
  idleMotion?: boolean;
  /** Default: the server's ("neutral", absolute expressions); fixed for the session. */
  baseline?: Baseline;
  /** WebSocket frame quality 1..100 (default 80). */
  frameQuality?: number;
  /** WebSocket frame rate, 1..fps (default: the session fps). */
  frameFps?: number;
}

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface SessionInfo {
  sessionId: string;
  wsUrl: string;
  iceServers: IceServer[];
  expiresIn: number;
  fps: number;
  size: number;
  codec: VideoCodec;
  /** Absent from servers older than absolute expressions. */
  baseline?: Baseline;
  /** Present when a session was created with an API key: opens only this session. */
  sessionToken?: string;
}

/** GET /sessions/{id}. */
export interface SessionState {
  sessionId: string;
  fps: number;
  size: number;
  codec: VideoCodec;
  idleMotion: boolean;
  baseline?: Baseline;
  viewers: number;
  wsClients: number;
  ageS: number;
  framesRendered: number;
  motion: MotionTarget;
  target: MotionTarget;
}

export interface FrameMeta {
  /** 1-based count of frames received on this session. */
  seq: number;
  format: "jpeg" | "webp";
  bytes: number;
  /** Date.now() when the frame arrived. */
  receivedAt: number;
  /**
   * With subscribeFrames(format, {timestamps: true}): the frame's presentation time in ms on
   * the session's media clock, the clock of SpeechStarted.ptsMs (docs/protocol.md, Speech).
   */
  ptsMs?: number;
}

/** PCM sample rates the server accepts for speech. */
export type SpeechSampleRate = 16000 | 24000 | 48000;

export interface SpeakOptions {
  sampleRate: SpeechSampleRate;
  /** The utterance id in the speech events; default "utt-<n>". */
  id?: string;
}

/** The first sample of an utterance is playing. */
export interface SpeechStarted {
  id: string | number;
  /** Where that sample sits on the session's media clock (ms). */
  ptsMs: number;
}

/** An utterance played out, or was cut by interrupt(). */
export interface SpeechEnded {
  id: string | number;
  /** The audio that actually played. */
  durationMs: number;
  interrupted: boolean;
  ptsMs: number;
}

export interface CloseEvent {
  code: number;
  /** "deleted" | "expired" from the server, or the socket's close reason. */
  reason: string;
}

/** POST /render/video containers: "mp4" (H.264 + AAC) or "webm" (VP8 + Opus). */
export type VideoFormat = "mp4" | "webm";
export const VIDEO_FORMATS: readonly VideoFormat[] = ["mp4", "webm"];

/** One keyframe of an emotion timeline: from tS on, the weights ease to this emotion. */
export interface EmotionKeyframe {
  tS: number;
  emotion: EmotionName;
  /** 0..1, default 0.7. */
  intensity?: number;
  /** Seconds of easing, default 0.4. */
  transitionS?: number;
}

/** A TTS's phoneme or viseme timing (docs/speech.md); these replace the server's analysis. */
export interface SpeechTiming {
  startMs: number;
  endMs: number;
  /** ARPAbet or IPA. */
  phoneme?: string;
  /** closed, open, round, spread, teeth_lip, silence, or an Oculus viseme (PP, FF, aa...). */
  viseme?: string;
  /** 0..1, default 1. */
  weight?: number;
}

export interface RenderVideoRequest {
  sourceImage: SourceImage;
  /** Speech (wav, mp3, ogg/opus, m4a, flac): a path, bytes or a Blob. It sets the length. */
  audio?: SourceImage;
  /** Held emotion (default neutral); the clip eases into it. Ignored with emotionTimeline. */
  emotion?: EmotionName;
  intensity?: number;
  emotionTimeline?: readonly EmotionKeyframe[];
  timings?: readonly SpeechTiming[];
  /** 1..60, default 25. */
  fps?: number;
  /** Default "mp4". */
  outputFormat?: VideoFormat;
  /** Only without audio: 0.04..120 s (server default 3). */
  durationS?: number;
  baseline?: Baseline;
}

export interface RenderVideoResult {
  outputPath: string;
  filename: string;
  format: VideoFormat;
  durationMs: number;
  frames: number;
  fps: number;
  audio: boolean;
  /** "audio", "timings" or "none". */
  lipSource: string;
  latencyMs: number;
  width: number;
  height: number;
}

/** The clip's bytes in one round trip (Accept: video/...). */
export interface RenderedVideo {
  data: Buffer;
  contentType: string;
  format: VideoFormat;
  latencyMs: number | null;
  frames: number | null;
}
