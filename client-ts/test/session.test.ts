/** Live sessions against the real server: JPEG frames over the WebSocket, controls, errors. */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, test } from "node:test";
import {
  type AvatarSession, type CloseEvent, createLivePortraitClient, EmotionType, LivePortraitError, type LivePortraitClient,
  LivePortraitValidationError, type Logger, type SessionStats,
} from "liveportrait-avatar-client";
import { isJpeg, type Samples, type ServerHandle, startServer, waitFor, writeSamples } from "./helpers.js";

let server: ServerHandle;
let samples: Samples;
let client: LivePortraitClient;
const open: AvatarSession[] = [];

before(async () => {
  server = await startServer();
  samples = writeSamples();
  client = createLivePortraitClient({ baseUrl: server.baseUrl, timeout: 30_000 });
});

after(async () => {
  await Promise.all(open.map((s) => s.close()));
  await server?.stop();
  if (samples !== undefined) rmSync(samples.dir, { recursive: true, force: true });
});

async function openStill(): Promise<AvatarSession> {
  // Idle motion off: a neutral face holds still, so any change comes from our controls.
  const session = await client.openSession({
    sourceImage: samples.portrait, fps: 10, size: 256, frames: "jpeg", idleMotion: false,
  });
  open.push(session);
  return session;
}

/** Collects the next `n` frames. */
function nextFrames(session: AvatarSession, n: number, ms = 20_000): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  return waitFor(ms, `${n} frames`, (done) => {
    const onFrame = (frame: Uint8Array): void => {
      got.push(frame);
      if (got.length === n) done(got);
    };
    session.on("frame", onFrame);
    return () => session.off("frame", onFrame);
  });
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

test("a jpeg session receives frames, and they change after setEmotion(HAPPY, 1)", { timeout: 90_000 }, async () => {
  const session = await openStill();
  assert.equal(session.frames, "jpeg");
  assert.equal(session.info.size, 256);
  assert.equal(session.info.fps, 10);
  const stats = waitFor<SessionStats>(10_000, "stats", (done) => {
    session.on("stats", done);
    return () => session.off("stats", done);
  });

  const neutral = await nextFrames(session, 4);
  for (const f of neutral) assert.ok(isJpeg(f), "each frame is one complete JPEG");
  // Without idle motion the neutral face is still: the last frames are the same image.
  assert.ok(same(neutral[2]!, neutral[3]!), "a still neutral face should give identical frames");

  const state = await session.setEmotion(EmotionType.HAPPY, 1, { transitionMs: 0 });
  assert.equal(state.target.emotions.happy, 1);
  assert.equal(state.target.emotions.neutral, 0);
  assert.equal(state.transitionMs, 0);

  const happy = await nextFrames(session, 4);
  assert.ok(isJpeg(happy[3]!));
  assert.ok(!same(happy[3]!, neutral[3]!), "frames after setEmotion(HAPPY, 1) must differ from neutral ones");
  assert.ok(session.framesReceived >= 8);

  const s = await stats;
  assert.equal(typeof s.fps, "number");
  assert.ok(s.frames > 0);

  const remote = await session.getState();
  assert.equal(remote.sessionId, session.id);
  assert.equal(remote.target.emotions.happy, 1);
  assert.equal(remote.idleMotion, false);
  assert.ok(remote.framesRendered > 0);

  const closed = waitFor<CloseEvent>(30_000, "close", (done) => {
    session.on("close", done);
    return () => session.off("close", done);
  });
  await session.close();
  await closed;
  assert.equal(session.isOpen, false);
  const gone = await fetch(`${server.baseUrl}/sessions/${session.id}`);
  assert.equal(gone.status, 404);
});

test("controls, blends, reset and idle round-trip through the server", { timeout: 60_000 }, async () => {
  const session = await openStill();
  const blend = await session.setEmotions({ happy: 0.5, [EmotionType.SURPRISED]: 0.3 }, { transitionMs: 100 });
  assert.equal(blend.target.emotions.happy, 0.5);
  assert.equal(blend.target.emotions.surprised, 0.3);
  assert.equal(blend.target.emotions.sad, 0);

  const controls = await session.setControls({ yaw: 10, mouthOpen: 0.3, gazeX: -0.5 });
  assert.equal(controls.target.controls.yaw, 10);
  assert.equal(controls.target.controls.mouthOpen, 0.3);
  assert.equal(controls.target.controls.gazeX, -0.5);
  assert.equal(controls.target.emotions.happy, 0.5, "set_controls keeps the emotions");
  assert.ok(controls.seq > blend.seq);

  const reset = await session.reset({ transitionMs: 0 });
  assert.equal(reset.target.controls.yaw, 0);
  assert.equal(reset.target.emotions.happy, 0);

  assert.equal((await session.setIdle(true)).idleMotion, true);
  assert.ok((await session.ping()) >= 0);
  await session.close();
});

test("bad session input gives typed errors", { timeout: 60_000 }, async () => {
  await assert.rejects(
    client.openSession({ sourceImage: samples.cat, frames: "jpeg" }),
    (e: unknown) => e instanceof LivePortraitError && e.status === 422 && e.code === "no_face");
  await assert.rejects(
    client.openSession({ sourceImage: samples.portrait, size: 200 }),
    (e: unknown) => e instanceof LivePortraitValidationError && e.code === "invalid_value");

  const session = await openStill();
  const loose = session as unknown as { setEmotion(e: string, i?: number): Promise<unknown> };
  await assert.rejects(loose.setEmotion("joyful"),
                       (e: unknown) => e instanceof LivePortraitValidationError && e.code === "invalid_emotion");
  await assert.rejects(session.setControls({ yaw: 45 }),
                       (e: unknown) => e instanceof LivePortraitValidationError && e.code === "invalid_value");
  await assert.rejects(session.setControls({ nose: 1 } as never),
                       (e: unknown) => e instanceof LivePortraitValidationError && e.code === "invalid_value");
  // An error the server finds comes back on the call that caused it; the socket stays usable.
  await assert.rejects(session.negotiate("not an sdp"),
                       (e: unknown) => e instanceof LivePortraitError && e.code === "sdp_error");
  assert.equal((await session.setEmotion(EmotionType.SAD, 0.4)).target.emotions.sad, 0.4);

  // Deleted elsewhere: the session reports close with the server's reason, then refuses calls.
  const closed = waitFor<CloseEvent>(30_000, "close", (done) => {
    session.on("close", done);
    return () => session.off("close", done);
  });
  const res = await fetch(`${server.baseUrl}/sessions/${session.id}`, { method: "DELETE" });
  assert.equal(res.status, 200);
  const event = await closed;
  assert.equal(event.code, 4000);
  assert.equal(event.reason, "deleted");
  await assert.rejects(session.setEmotion(EmotionType.HAPPY),
                       (e: unknown) => e instanceof LivePortraitError && e.code === "session_closed");
  await session.close(); // already gone on the server: still resolves
});

test("a full server answers 429 too_many_sessions; retries wait out Retry-After", { timeout: 120_000 }, async () => {
  // One slot, and sessions expire after 4 s: the server's Retry-After says when the slot frees.
  const small = await startServer(["--max-sessions", "1", "--session-max-age", "4"]);
  try {
    const opts = { sourceImage: samples.portrait, fps: 5, size: 128, frames: "jpeg" as const };
    const first = await createLivePortraitClient({ baseUrl: small.baseUrl }).openSession(opts);
    const expired = waitFor<CloseEvent>(15_000, "expiry", (done) => {
      first.on("close", done);
      return () => first.off("close", done);
    });

    const impatient = createLivePortraitClient({ baseUrl: small.baseUrl, maxRetries: 0 });
    const err = await impatient.openSession(opts).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof LivePortraitError, String(err));
    assert.equal(err.status, 429);
    assert.equal(err.code, "too_many_sessions");
    assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs >= 1000 && err.retryAfterMs <= 5000,
              String(err.retryAfterMs));

    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (m) => warnings.push(m) };
    const patient = createLivePortraitClient({ baseUrl: small.baseUrl, maxRetries: 5, logger });
    const second = await patient.openSession(opts);
    assert.ok(warnings.some((w) => w.includes("429") && w.includes("retrying")), warnings.join("\n"));
    const event = await expired;
    assert.equal(event.code, 4000);
    assert.equal(event.reason, "expired");
    await nextFrames(second, 1);
    await second.close();
  } finally {
    await small.stop();
  }
});
