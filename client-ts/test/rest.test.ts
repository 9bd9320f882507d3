/** REST half against the real server: renderImage, source kinds, and every typed error. */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  createLivePortraitClient, EmotionType, LivePortraitConnectionError, LivePortraitError, type LivePortraitClient,
  LivePortraitTimeoutError, LivePortraitValidationError, type Logger,
} from "liveportrait-avatar-client";
import { freePort, isJpeg, isPng, type Samples, type ServerHandle, startServer, writeSamples } from "./helpers.js";

let server: ServerHandle;
let samples: Samples;
let client: LivePortraitClient;
let portraitBytes: Buffer;

before(async () => {
  // 1 MiB upload limit, so a 2 MiB file meets the 413 path; one queued engine call, so
  // concurrent renders meet 503 busy.
  server = await startServer(["--max-upload-mb", "1", "--engine-queue", "1"]);
  samples = writeSamples();
  portraitBytes = readFileSync(samples.portrait);
  client = createLivePortraitClient({ baseUrl: server.baseUrl, timeout: 60_000 });
});

after(async () => {
  await server?.stop();
  if (samples !== undefined) rmSync(samples.dir, { recursive: true, force: true });
});

/** Asserts `promise` rejects with `cls` and the given status/code; returns the error. */
async function rejectsWith<E extends LivePortraitError>(
  promise: Promise<unknown>, cls: new (...args: never[]) => E, status: number, code: string,
): Promise<E> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  assert.ok(err instanceof LivePortraitError);
  assert.equal(err.status, status, err.message);
  assert.equal(err.code, code, err.message);
  assert.ok(err.message.length > 0);
  return err;
}

/** A fetch that counts calls, to prove client-side validation sends nothing. */
function countingFetch(): { fetch: typeof fetch; calls: () => number } {
  let calls = 0;
  return {
    fetch: (input, init) => {
      calls += 1;
      return fetch(input, init);
    },
    calls: () => calls,
  };
}

describe("rendering", () => {
  test("health reports the mesh engine", async () => {
    const health = await client.health();
    assert.equal(health.status, "healthy");
    assert.equal(health.engine, "mesh");
    assert.equal(typeof health.gpuAvailable, "boolean");
  });

  test("render from a Buffer, then download and delete the output", async () => {
    const result = await client.render({ sourceImage: portraitBytes, emotion: EmotionType.SAD, intensity: 0.5 });
    assert.equal(result.emotion, "sad");
    assert.equal(result.intensity, 0.5);
    assert.ok(result.latencyMs > 0);
    const png = await client.downloadOutput(result.filename);
    assert.ok(isPng(png));
    assert.equal(await client.deleteOutput(result.filename), true);
    await rejectsWith(client.downloadOutput(result.filename), LivePortraitError, 404, "not_found");
    await rejectsWith(client.deleteOutput(result.filename), LivePortraitError, 404, "not_found");
  });

  test("renderImage returns the bytes in one round trip, from a Blob", async () => {
    const blob = new Blob([portraitBytes], { type: "image/jpeg" });
    const image = await client.renderImage({ sourceImage: blob, emotion: "surprised", outputFormat: "jpg" });
    assert.equal(image.contentType, "image/jpeg");
    assert.ok(isJpeg(image.data));
    assert.ok(image.latencyMs !== null && image.latencyMs > 0);
  });

  test("baseline: the default is absolute, 'photo' keeps the photo's own expression", async () => {
    const render = (baseline?: "neutral" | "photo") => client.renderImage(
      { sourceImage: portraitBytes, emotion: "neutral", ...(baseline ? { baseline } : {}) });
    const [byDefault, absolute, photo] = await Promise.all([render(), render("neutral"), render("photo")]);
    assert.ok(byDefault.data.equals(absolute.data), "the default must be the absolute baseline");
    assert.ok(!photo.data.equals(absolute.data), "'photo' must render the photo's own expression");
    const batch = await client.renderBatch(portraitBytes, ["happy", "sad"], 0.8, "png", { baseline: "photo" });
    assert.deepEqual(batch.map((r) => r.emotion), ["happy", "sad"]);
  });
});

describe("errors", () => {
  test("an unknown emotion from JavaScript is refused before any request", async () => {
    const counter = countingFetch();
    const c = createLivePortraitClient({ baseUrl: server.baseUrl, fetch: counter.fetch });
    const untyped = c as unknown as { render(r: Record<string, unknown>): Promise<unknown> };
    await rejectsWith(untyped.render({ sourceImage: samples.portrait, emotion: "joyful" }),
                      LivePortraitValidationError, 0, "invalid_emotion");
    await rejectsWith(c.renderBatch(samples.portrait, ["happy", "bored" as EmotionType]),
                      LivePortraitValidationError, 0, "invalid_emotion");
    await rejectsWith(c.render({ sourceImage: samples.portrait, emotion: "happy", intensity: 1.5 }),
                      LivePortraitValidationError, 0, "invalid_intensity");
    await rejectsWith(c.downloadOutput("../etc/passwd"), LivePortraitValidationError, 0, "invalid_filename");
    await rejectsWith(untyped.render({ sourceImage: samples.portrait, emotion: "happy", baseline: "relative" }),
                      LivePortraitValidationError, 0, "invalid_baseline");
    assert.equal(counter.calls(), 0);
  });

  test("the server's own validation comes back typed too", async () => {
    // Bypass the client's checks with a raw form: the server must say the same thing.
    const form = new FormData();
    form.append("source_image", new Blob([portraitBytes]), "p.jpg");
    form.append("emotion", "joyful");
    const res = await fetch(`${server.baseUrl}/render`, { method: "POST", body: form });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "invalid_emotion");
  });

  test("a missing file", async () => {
    await rejectsWith(client.render({ sourceImage: join(samples.dir, "nope.jpg"), emotion: EmotionType.HAPPY }),
                      LivePortraitValidationError, 0, "file_not_found");
  });

  test("a server that is down", async () => {
    const port = await freePort();
    const down = createLivePortraitClient({ baseUrl: `http://127.0.0.1:${port}`, timeout: 2000 });
    await rejectsWith(down.health(), LivePortraitConnectionError, 0, "connection_failed");
    await rejectsWith(down.render({ sourceImage: portraitBytes, emotion: EmotionType.HAPPY }),
                      LivePortraitConnectionError, 0, "connection_failed");
    const err = await rejectsWith(down.waitForHealthy({ timeoutMs: 700, intervalMs: 100 }),
                                  LivePortraitTimeoutError, 0, "timeout");
    assert.equal(err.timeoutMs, 700);
  });

  test("a server that never answers gives the distinct timeout error", async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const address = silent.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    try {
      const slow = createLivePortraitClient({ baseUrl: `http://127.0.0.1:${port}`, timeout: 300 });
      const started = Date.now();
      const err = await rejectsWith(slow.health(), LivePortraitTimeoutError, 0, "timeout");
      assert.equal(err.timeoutMs, 300);
      // The client gave up on its own timer (300 ms), not at some OS or socket limit: the bound
      // sits more than an order of magnitude above the timeout, so a loaded machine cannot miss it.
      assert.ok(Date.now() - started < 5000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test("a 413 upload", async () => {
    // A real JPEG padded past the 1 MiB limit (bytes after the end marker are ignored by decoders).
    const big = Buffer.concat([portraitBytes, Buffer.alloc(2 * 1024 * 1024, 7)]);
    const err = await rejectsWith(client.render({ sourceImage: big, emotion: EmotionType.HAPPY }),
                                  LivePortraitError, 413, "file_too_large");
    assert.ok(!(err instanceof LivePortraitValidationError));
    // The server keeps serving.
    assert.equal((await client.health()).status, "healthy");
  });

  test("no face", async () => {
    await rejectsWith(client.render({ sourceImage: samples.cat, emotion: EmotionType.HAPPY }),
                      LivePortraitError, 422, "no_face");
  });

  test("an empty or undecodable image", async () => {
    await rejectsWith(client.render({ sourceImage: Buffer.alloc(0), emotion: EmotionType.HAPPY }),
                      LivePortraitValidationError, 0, "empty_file");
    await rejectsWith(client.render({ sourceImage: Buffer.from("not an image"), emotion: EmotionType.HAPPY }),
                      LivePortraitError, 422, "invalid_image");
  });
});

describe("503 busy and retries", () => {
  test("503 carries Retry-After without retries, and retries honour it", { timeout: 120_000 }, async () => {
    // Concurrent renders of never-seen portraits (each must be prepared) overfill the
    // one-slot engine queue. Bytes after the JPEG end marker change the cache key only.
    let salt = 0;
    const fresh = (): Buffer => Buffer.concat([portraitBytes, Buffer.from(`salt-${Date.now()}-${salt++}`)]);
    const burst = (c: LivePortraitClient): Promise<unknown>[] => Array.from({ length: 6 }, (_, i) =>
      c.renderImage({ sourceImage: fresh(), emotion: Object.values(EmotionType)[i % 7]!, intensity: 0.5 }));

    const noRetry = createLivePortraitClient({ baseUrl: server.baseUrl, timeout: 60_000, maxRetries: 0 });
    const outcomes = await Promise.allSettled(burst(noRetry));
    const busy = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    assert.ok(busy.length > 0, "expected at least one 503 from a burst of 6 renders");
    for (const { reason } of busy) {
      assert.ok(reason instanceof LivePortraitError);
      assert.equal(reason.status, 503);
      assert.equal(reason.code, "busy");
      assert.ok(reason.retryAfterMs !== undefined && reason.retryAfterMs >= 1000);
    }

    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (m) => warnings.push(m) };
    const patient = createLivePortraitClient({ baseUrl: server.baseUrl, timeout: 60_000, maxRetries: 20, logger });
    const all = await Promise.all(burst(patient));
    assert.equal(all.length, 6);
    assert.ok(warnings.some((w) => w.includes("503") && w.includes("retrying")), warnings.join("\n"));
  });
});
