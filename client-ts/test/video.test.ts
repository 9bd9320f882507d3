/** renderVideo / renderVideoBytes against the real server (mesh engine). */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { after, before, test } from "node:test";
import {
  createLivePortraitClient, LivePortraitError, type LivePortraitClient, LivePortraitValidationError,
} from "liveportrait-avatar-client";
import { type Samples, type ServerHandle, startServer, writeSamples } from "./helpers.js";

let server: ServerHandle;
let samples: Samples;
let client: LivePortraitClient;

before(async () => {
  server = await startServer();
  samples = writeSamples();
  client = createLivePortraitClient({ baseUrl: server.baseUrl, timeout: 120_000 });
});

after(async () => {
  await server?.stop();
  if (samples !== undefined) rmSync(samples.dir, { recursive: true, force: true });
});

/** A 16 kHz mono WAV: `seconds` of syllable-like 220 Hz bursts (4 per second). */
function wav(seconds: number, rate = 16000): Buffer {
  const n = Math.round(seconds * rate);
  const out = Buffer.alloc(44 + 2 * n);
  out.write("RIFF", 0); out.writeUInt32LE(36 + 2 * n, 4); out.write("WAVE", 8);
  out.write("fmt ", 12); out.writeUInt32LE(16, 16); out.writeUInt16LE(1, 20); out.writeUInt16LE(1, 22);
  out.writeUInt32LE(rate, 24); out.writeUInt32LE(2 * rate, 28); out.writeUInt16LE(2, 32); out.writeUInt16LE(16, 34);
  out.write("data", 36); out.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const env = Math.max(0, Math.sin(2 * Math.PI * 2 * t));
    out.writeInt16LE(Math.round(8000 * env * Math.sin(2 * Math.PI * 220 * t)), 44 + 2 * i);
  }
  return out;
}

test("renderVideo with audio stores an mp4 whose length is the audio's", async () => {
  const result = await client.renderVideo({ sourceImage: samples.portrait, audio: wav(1.6), emotion: "happy",
                                            intensity: 0.5 });
  assert.equal(result.format, "mp4");
  assert.equal(result.audio, true);
  assert.equal(result.lipSource, "audio");
  assert.equal(result.frames, 40);
  assert.ok(Math.abs(result.durationMs - 1600) < 40, String(result.durationMs));
  const data = await client.downloadOutput(result.filename);
  assert.equal(data.subarray(4, 8).toString("latin1"), "ftyp");
});

test("renderVideoBytes returns a webm with timings and a timeline, no audio", async () => {
  const clip = await client.renderVideoBytes({
    sourceImage: readFileSync(samples.portrait), outputFormat: "webm", durationS: 0.8, fps: 10,
    emotionTimeline: [{ tS: 0, emotion: "neutral" }, { tS: 0.2, emotion: "surprised", intensity: 1 }],
    timings: [{ startMs: 100, endMs: 500, viseme: "open" }, { startMs: 500, endMs: 700, phoneme: "M" }],
  });
  assert.equal(clip.contentType, "video/webm");
  assert.equal(clip.frames, 8);
  assert.deepEqual([...clip.data.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3]); // EBML header
});

test("bad requests: checked in the client, or the server's JSON error", async () => {
  await assert.rejects(client.renderVideo({ sourceImage: samples.portrait, fps: 0 }),
                       (e: unknown) => e instanceof LivePortraitValidationError && e.code === "invalid_fps");
  await assert.rejects(client.renderVideo({ sourceImage: samples.portrait, audio: wav(0.5), durationS: 1 }),
                       (e: unknown) => e instanceof LivePortraitValidationError);
  const err = await client.renderVideo({ sourceImage: samples.portrait, audio: Buffer.from("not audio at all") })
    .then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof LivePortraitError);
  assert.equal(err.status, 400);
  assert.equal(err.code, "invalid_audio");
});
