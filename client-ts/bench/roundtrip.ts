/**
 * Client-side latencies against the real server (mesh engine), printed as a markdown table:
 * - the seed's flow, render() + downloadOutput() (the baseline), vs renderImage() (one round trip);
 * - a session: setEmotion() reply time, and time from setEmotion() to the first changed JPEG frame.
 * Run: npm run bench [-- --iterations 25]
 */
import { rmSync } from "node:fs";
import { readFileSync } from "node:fs";
import { createLivePortraitClient, EmotionType } from "liveportrait-avatar-client";
import { startServer, writeSamples } from "../test/helpers.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const iterations = arg("iterations", 25);
const server = await startServer();
const samples = writeSamples();
try {
  const client = createLivePortraitClient({ baseUrl: server.baseUrl, timeout: 60_000 });
  const photo = readFileSync(samples.portrait);
  const seedFlow: number[] = [];
  const oneTrip: number[] = [];
  for (let i = -3; i < iterations; i++) { // 3 warm-up rounds, then interleaved measurements
    let t = performance.now();
    const result = await client.render({ sourceImage: photo, emotion: EmotionType.HAPPY, intensity: 0.8 });
    await client.downloadOutput(result.filename);
    const a = performance.now() - t;
    await client.deleteOutput(result.filename);
    t = performance.now();
    await client.renderImage({ sourceImage: photo, emotion: EmotionType.HAPPY, intensity: 0.8 });
    const b = performance.now() - t;
    if (i >= 0) {
      seedFlow.push(a);
      oneTrip.push(b);
    }
  }

  const session = await client.openSession({
    sourceImage: photo, fps: 25, size: 256, frames: "jpeg", idleMotion: false,
  });
  let last: Uint8Array = new Uint8Array();
  session.on("frame", (frame) => {
    last = frame;
  });
  await new Promise((r) => setTimeout(r, 1000));
  const reply: number[] = [];
  const toFrame: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const before = last;
    const changed = new Promise<number>((resolve) => {
      const onFrame = (frame: Uint8Array): void => {
        if (Buffer.compare(frame, before) !== 0) {
          session.off("frame", onFrame);
          resolve(performance.now());
        }
      };
      session.on("frame", onFrame);
    });
    const t = performance.now();
    await session.setEmotion(i % 2 === 0 ? EmotionType.HAPPY : EmotionType.NEUTRAL, 1, { transitionMs: 0 });
    reply.push(performance.now() - t);
    toFrame.push((await changed) - t);
    await new Promise((r) => setTimeout(r, 200)); // let the face settle before the next change
  }
  await session.close();

  const row = (name: string, v: number[], base?: number[]): string => {
    const ratio = base === undefined ? "" : (quantile(v, 0.5) / quantile(base, 0.5)).toFixed(2);
    return `| ${name} | ${v.length} | ${quantile(v, 0.5).toFixed(1)} | ${quantile(v, 0.9).toFixed(1)} | ${ratio} |`;
  };
  console.log("| measurement | n | median ms | p90 ms | median vs baseline |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  console.log(row("render() + downloadOutput() (baseline)", seedFlow, seedFlow));
  console.log(row("renderImage() (one round trip)", oneTrip, seedFlow));
  console.log(row("session setEmotion() -> state reply", reply));
  console.log(row("session setEmotion() -> first changed JPEG frame", toFrame));
} finally {
  await server.stop();
  rmSync(samples.dir, { recursive: true, force: true });
}
