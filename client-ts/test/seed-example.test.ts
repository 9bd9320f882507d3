/**
 * The README's usage example is the seed's, importing this package by name instead of the seed's
 * `./client/LivePortraitClient`. It is compiled with tsc and run as written against the real
 * server (only the URL string differs); the seed's verbatim code compiles too, with
 * `./client/LivePortraitClient` a one-line re-export of the package.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, mkdirSync, writeFileSync, copyFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { createLivePortraitClient, EmotionType } from "liveportrait-avatar-client";
import { CLIENT_ROOT, type Samples, type ServerHandle, startServer, tempDir, writeSamples } from "./helpers.js";

const run = promisify(execFile);

/** The seed's example, verbatim: the README keeps it, bar the import path. */
const SEED_EXAMPLE = `import { createLivePortraitClient, EmotionType } from "./client/LivePortraitClient";

// Create client
const client = createLivePortraitClient({
  baseUrl: "http://localhost:8001",
  timeout: 30000,
  enableLogging: true,
});

// Wait for service to be ready
await client.waitForHealthy();

// Render avatar
const result = await client.render({
  sourceImage: "./portrait.jpg",
  emotion: EmotionType.HAPPY,
  intensity: 0.8,
  outputFormat: "png",
});

console.log(\`Rendered in \${result.latencyMs}ms\`);
console.log(\`Output: \${result.filename}\`);

// Download output
const imageBuffer = await client.downloadOutput(result.filename);

// Batch render all emotions
const results = await client.renderBatch("./portrait.jpg", Object.values(EmotionType), 0.7);

console.log(\`Generated \${results.length} variations\`);

// Clean up
await client.deleteOutput(result.filename);
`;

let server: ServerHandle;
let samples: Samples;

before(async () => {
  server = await startServer();
  samples = writeSamples();
});

after(async () => {
  await server?.stop();
  if (samples !== undefined) rmSync(samples.dir, { recursive: true, force: true });
});

const SEED_IMPORT = `from "./client/LivePortraitClient"`;
const PACKAGE_IMPORT = `from "liveportrait-avatar-client"`;

/** The README's ```typescript block with the seed's example (the one that renders a batch). */
function readmeSeedBlock(): string {
  const readme = readFileSync(join(CLIENT_ROOT, "README.md"), "utf8");
  for (const match of readme.matchAll(/```typescript\n([\s\S]*?)```/g)) {
    const code = match[1] ?? "";
    if (code.includes(`client.renderBatch("./portrait.jpg"`)) return code;
  }
  throw new Error("README.md has no seed example block");
}

test("the README keeps the seed's usage example, importing the package by name", () => {
  assert.ok(SEED_EXAMPLE.includes(SEED_IMPORT));
  assert.equal(readmeSeedBlock(), SEED_EXAMPLE.replace(SEED_IMPORT, PACKAGE_IMPORT));
});

test("the seed example compiles and runs as written", { timeout: 180_000 }, async () => {
  const dir = tempDir("seed");
  try {
    const code = readmeSeedBlock();
    const pointed = code.replace(`"http://localhost:8001"`, JSON.stringify(server.baseUrl));
    assert.notEqual(pointed, code, "the example's URL was not found");
    // The app's node_modules holds this package, as `npm install` would put it there.
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(CLIENT_ROOT, join(dir, "node_modules", "liveportrait-avatar-client"), "dir");
    writeFileSync(join(dir, "example.ts"), pointed);
    // The seed's code as it was, with `./client/LivePortraitClient` re-exporting the package:
    // it compiles, so every name it uses is still there.
    mkdirSync(join(dir, "client"));
    writeFileSync(join(dir, "seed.ts"), SEED_EXAMPLE);
    writeFileSync(join(dir, "client", "LivePortraitClient.ts"), `export * ${PACKAGE_IMPORT};\n`);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        // The seed's relative import has no file extension (bundler style), as apps built with
        // a bundler or tsx write it; only example.ts (the package import) is run.
        target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true,
        outDir: "out", rootDir: ".", types: ["node"], typeRoots: [join(CLIENT_ROOT, "node_modules", "@types")],
        skipLibCheck: true,
      },
      include: ["example.ts", "seed.ts", "client/*.ts"],
    }));
    copyFileSync(samples.portrait, join(dir, "portrait.jpg"));

    const tsc = join(CLIENT_ROOT, "node_modules", "typescript", "bin", "tsc");
    await run(process.execPath, [tsc, "-p", dir]).catch((err: { stdout?: string }) => {
      throw new Error(`tsc failed on the seed example:\n${err.stdout ?? String(err)}`);
    });
    const { stdout } = await run(process.execPath, [join(dir, "out", "example.js")],
                                 { cwd: dir, timeout: 150_000 });

    const rendered = /Rendered in ([\d.]+)ms/.exec(stdout);
    assert.ok(rendered !== null && Number(rendered[1]) > 0, stdout);
    const output = /Output: (\S+)/.exec(stdout);
    assert.ok(output !== null, stdout);
    assert.match(stdout, /Generated 7 variations/);
    // The example's clean-up really deleted its output.
    const res = await fetch(`${server.baseUrl}/output/${output[1]}`);
    assert.equal(res.status, 404);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("renderBatch returns 7 results for all emotions, in order", { timeout: 120_000 }, async () => {
  const client = createLivePortraitClient({ baseUrl: server.baseUrl, timeout: 60_000 });
  const results = await client.renderBatch(samples.portrait, Object.values(EmotionType), 0.7);
  assert.equal(results.length, 7);
  assert.deepEqual(results.map((r) => r.emotion), Object.values(EmotionType));
  assert.equal(new Set(results.map((r) => r.filename)).size, 7);
  for (const r of results) {
    assert.equal(r.intensity, 0.7);
    assert.ok(r.width > 0 && r.height > 0);
    assert.equal(typeof r.modelVersion, "string");
    assert.equal(await client.deleteOutput(r.filename), true);
  }
});
