/** Speech through the TypeScript client against the real server: speak(), interrupt(), events,
 * frame timestamps. The voice is espeak-ng's, made by the repo's Python test kit. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { after, before, test } from "node:test";
import {
  type AvatarSession, createLivePortraitClient, type FrameMeta, type LivePortraitClient, LivePortraitError,
  LivePortraitValidationError, type SpeechStarted,
} from "liveportrait-avatar-client";
import { isJpeg, PYTHON, REPO_ROOT, type Samples, type ServerHandle, startServer, waitFor, writeSamples } from "./helpers.js";

let server: ServerHandle;
let samples: Samples;
let client: LivePortraitClient;
const open: AvatarSession[] = [];

function espeak(text: string, rate: number): Buffer {
  const script = "import sys\nfrom avatar_testkit.speech import espeak\n"
    + "sys.stdout.buffer.write(espeak(sys.argv[1], int(sys.argv[2])).astype('<i2').tobytes())";
  return execFileSync(PYTHON, ["-c", script, text, String(rate)], { cwd: REPO_ROOT, maxBuffer: 64 << 20 });
}

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

async function openSession(): Promise<AvatarSession> {
  const session = await client.openSession({
    sourceImage: samples.portrait, fps: 10, size: 256, frames: "jpeg", idleMotion: false,
  });
  open.push(session);
  return session;
}

test("speak(buffer) plays the utterance: speechStarted, then it resolves with speechEnded", { timeout: 90_000 }, async () => {
  const session = await openSession();
  const pcm = espeak("Hello from the TypeScript client.", 16000);
  const started = waitFor<SpeechStarted>(60_000, "speechStarted", (done) => {
    session.on("speechStarted", done);
    return () => session.off("speechStarted", done);
  });
  const ended = await session.speak(pcm, { sampleRate: 16000, id: "hello" });
  const s = await started;
  assert.equal(s.id, "hello");
  assert.equal(ended.id, "hello");
  assert.equal(ended.interrupted, false);
  assert.ok(Math.abs(ended.durationMs - pcm.byteLength / 32) <= 20, `duration ${ended.durationMs}`);
  assert.ok(Math.abs(ended.ptsMs - s.ptsMs - ended.durationMs) <= 1);
  await session.close();
});

test("speak(async chunks of odd sizes) and interrupt()", { timeout: 90_000 }, async () => {
  const session = await openSession();
  const pcm = espeak("This is a long sentence that will be cut off before it ends, sadly.", 24000);
  async function* chunks(): AsyncIterable<Uint8Array> {
    for (let i = 0; i < pcm.byteLength; i += 1001) yield pcm.subarray(i, Math.min(pcm.byteLength, i + 1001));
  }
  const errors: LivePortraitError[] = [];
  session.on("error", (e) => errors.push(e));
  session.once("speechStarted", () => session.interrupt());
  const ended = await session.speak(chunks(), { sampleRate: 24000 });
  assert.equal(ended.interrupted, true);
  assert.ok(ended.durationMs < pcm.byteLength / 48 - 500);
  assert.deepEqual(errors, [], "odd chunk sizes are joined by the client, never sent odd");
  assert.ok((await session.ping()) >= 0, "the session goes on");
  await session.close();
});

test("speech input is validated, frames carry presentation times", { timeout: 90_000 }, async () => {
  const session = await openSession();
  await assert.rejects(session.speak(Buffer.alloc(10), { sampleRate: 44100 as never }),
                       (e: unknown) => e instanceof LivePortraitValidationError);
  await assert.rejects(session.speak(Buffer.alloc(11), { sampleRate: 16000 }),
                       (e: unknown) => e instanceof LivePortraitValidationError);
  await session.subscribeFrames("jpeg", { timestamps: true });
  const metas = await waitFor<Array<[Uint8Array, FrameMeta]>>(30_000, "5 frames", (done) => {
    const got: Array<[Uint8Array, FrameMeta]> = [];
    const onFrame = (f: Uint8Array, m: FrameMeta): void => {
      got.push([f, m]);
      if (got.length === 6) done(got.slice(1)); // the first may predate the subscription
    };
    session.on("frame", onFrame);
    return () => session.off("frame", onFrame);
  });
  for (const [frame, meta] of metas) {
    assert.ok(isJpeg(frame), "the timestamp header is stripped");
    assert.equal(typeof meta.ptsMs, "number");
  }
  for (let i = 1; i < metas.length; i++) assert.ok(metas[i]![1].ptsMs! > metas[i - 1]![1].ptsMs!);
  await session.close();
});
