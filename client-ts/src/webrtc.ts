/**
 * Browser-side WebRTC: one recvonly peer whose offer/answer and ICE candidates travel over
 * the session's WebSocket. Typed structurally so the package needs no DOM typings.
 */
import { LivePortraitError } from "./errors.js";
import type { AvatarSession, IceCandidateInit } from "./session.js";
import type { IceServer } from "./types.js";

/** What attachVideo needs of an HTMLVideoElement. */
export interface VideoElementLike {
  srcObject: unknown;
  muted: boolean;
  autoplay: boolean;
  playsInline?: boolean;
  play(): Promise<void>;
}

interface PeerLike {
  addTransceiver(kind: "video" | "audio", init: { direction: "recvonly" }): unknown;
  createOffer(): Promise<{ sdp?: string; type: string }>;
  setLocalDescription(desc: { sdp?: string; type: string }): Promise<void>;
  setRemoteDescription(desc: { sdp: string; type: "answer" }): Promise<void>;
  readonly localDescription: { sdp: string } | null;
  readonly connectionState: string;
  ontrack: ((event: { streams: readonly unknown[]; track: unknown }) => void) | null;
  onicecandidate: ((event: { candidate: { toJSON(): IceCandidateInit } | null }) => void) | null;
  onconnectionstatechange: (() => void) | null;
  close(): void;
}

type PeerConstructor = new (config: { iceServers: IceServer[] }) => PeerLike;
type MediaStreamConstructor = new (tracks: unknown[]) => unknown;

export interface VideoAttachment {
  /** The RTCPeerConnection, for stats or advanced use. */
  readonly peer: unknown;
  /** Closes the peer and clears the element. */
  detach(): void;
}

export interface AttachVideoOptions {
  /** Overrides the session's ICE servers. */
  iceServers?: IceServer[];
  /**
   * Also receive the session's speech (an Opus track in the same stream, lip-synced by the
   * browser). The element still starts muted (autoplay rules): unmute it after a user gesture.
   * Default false.
   */
  audio?: boolean;
}

export async function attachVideo(session: AvatarSession, video: VideoElementLike,
                                  options: AttachVideoOptions = {}): Promise<VideoAttachment> {
  const g = globalThis as { RTCPeerConnection?: PeerConstructor; MediaStream?: MediaStreamConstructor };
  if (g.RTCPeerConnection === undefined) {
    throw new LivePortraitError(0, "webrtc_unavailable",
                                "attachVideo needs a browser with RTCPeerConnection; in Node use frames: 'jpeg'");
  }
  const pc = new g.RTCPeerConnection({ iceServers: options.iceServers ?? session.iceServers });
  pc.addTransceiver("video", { direction: "recvonly" });
  if (options.audio === true) pc.addTransceiver("audio", { direction: "recvonly" });
  pc.ontrack = (event) => {
    const stream = event.streams[0] ?? (g.MediaStream !== undefined ? new g.MediaStream([event.track]) : null);
    video.muted = true; // muted autoplay is allowed without a user gesture
    video.autoplay = true;
    video.playsInline = true;
    video.srcObject = stream;
    video.play().catch(() => { /* autoplay refused: the page can call play() on a click */ });
  };
  pc.onicecandidate = (event) => {
    if (session.isOpen) session.sendCandidate(event.candidate === null ? null : event.candidate.toJSON());
  };
  const onClose = (): void => pc.close();
  session.once("close", onClose);
  try {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const sdp = pc.localDescription?.sdp ?? offer.sdp ?? "";
    const answer = await session.negotiate(sdp);
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
  } catch (err) {
    session.off("close", onClose);
    pc.close();
    throw err;
  }
  return {
    peer: pc,
    detach(): void {
      session.off("close", onClose);
      pc.close();
      video.srcObject = null;
    },
  };
}
