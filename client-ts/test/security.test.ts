/** API keys and session tokens against the real server started with --api-key. */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, test } from "node:test";
import { createLivePortraitClient, EmotionType, LivePortraitError, LivePortraitValidationError } from "liveportrait-avatar-client";
import { type Samples, type ServerHandle, startServer, waitFor, writeSamples } from "./helpers.js";

const KEY = "client-test-key-0123456789";
let server: ServerHandle;
let samples: Samples;

before(async () => {
  server = await startServer(["--api-key", KEY]);
  samples = writeSamples();
});

after(async () => {
  await server?.stop();
  if (samples !== undefined) rmSync(samples.dir, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown>, status: number, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof LivePortraitError && err.status === status && err.code === code);
}

test("apiKey is sent as a Bearer header; without it the server answers 401", { timeout: 60_000 }, async () => {
  const keyed = createLivePortraitClient({ baseUrl: server.baseUrl, apiKey: KEY });
  const anonymous = createLivePortraitClient({ baseUrl: server.baseUrl, maxRetries: 0 });
  assert.deepEqual(await keyed.listSessions(), []);
  await rejectsWith(anonymous.listSessions(), 401, "unauthorized");
  assert.equal((await anonymous.health()).status, "healthy"); // /health stays open
  assert.throws(() => createLivePortraitClient({ baseUrl: server.baseUrl, apiKey: "two words" }),
    LivePortraitValidationError);
});

test("a backend's session token lets a key-less client join, steer and close only that session", { timeout: 90_000 }, async () => {
  const backend = createLivePortraitClient({ baseUrl: server.baseUrl, apiKey: KEY });
  const owned = await backend.openSession({ sourceImage: samples.portrait, fps: 5, size: 128, idleMotion: false });
  const token = owned.info.sessionToken;
  assert.ok(typeof token === "string" && token.length >= 32);

  const browser = createLivePortraitClient({ baseUrl: server.baseUrl, maxRetries: 0 });
  const joined = await browser.joinSession({ sessionId: owned.id, sessionToken: token, frames: "jpeg" });
  await waitFor<void>(20_000, "a frame", (done) => {
    const onFrame = (): void => done();
    joined.on("frame", onFrame);
    return () => joined.off("frame", onFrame);
  });
  const state = await joined.setEmotion(EmotionType.HAPPY, 1, { transitionMs: 0 });
  assert.equal(state.target.emotions.happy, 1);
  await rejectsWith(browser.listSessions(), 401, "unauthorized");
  await rejectsWith(browser.joinSession({ sessionId: owned.id, sessionToken: "not-the-token" }), 401, "unauthorized");

  await joined.close(); // DELETE with the token
  assert.deepEqual(await backend.listSessions(), []);
  await owned.close(); // already gone: fine
});
