/** liveportrait-avatar-client: typed client for the liveportrait-avatar service. */
export { createLivePortraitClient, LivePortraitClient } from "./client.js";
export type { JoinSessionOptions, LivePortraitClientConfig, WaitForHealthyOptions } from "./client.js";
export { AvatarSession } from "./session.js";
export type { AvatarSessionEvents, IceCandidateInit, SpeechPcm, SubscribeOptions } from "./session.js";
export { attachVideo } from "./webrtc.js";
export type { AttachVideoOptions, VideoAttachment, VideoElementLike } from "./webrtc.js";
export {
  LivePortraitConnectionError, LivePortraitError, LivePortraitTimeoutError, LivePortraitValidationError,
} from "./errors.js";
export { consoleLogger, silentLogger } from "./logger.js";
export type { Logger } from "./logger.js";
export { BASELINES, EMOTIONS, EmotionType, VIDEO_FORMATS } from "./types.js";
export type {
  Baseline, CloseEvent, ControlName, EmotionName, EmotionWeights, FaceControls, FrameMeta, FrameMode, HealthStatus,
  IceServer, MotionTarget, OpenSessionOptions, OutputFormat, RenderedImage, RenderRequest, RenderResult,
  SessionInfo, SessionState, SessionStateEvent, SessionStats, SourceImage, SpeakOptions, SpeechEnded,
  SpeechSampleRate, SpeechStarted, TransitionOptions, VideoCodec,
  EmotionKeyframe, RenderedVideo, RenderVideoRequest, RenderVideoResult, SpeechTiming, VideoFormat,
} from "./types.js";
