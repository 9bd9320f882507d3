/**
 * Type-level tests: the public types accept correct use and reject misuse at compile time,
 * and the README's Secretary integration example type-checks against this package.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { CLIENT_ROOT, tempDir } from "./helpers.js";

const run = promisify(execFile);
const TSC = join(CLIENT_ROOT, "node_modules", "typescript", "bin", "tsc");
const FIXTURES = join(CLIENT_ROOT, "test", "fixtures");

/** Runs tsc; returns its exit code and the "(line,col): error" lines of its report. */
async function tsc(project: string): Promise<{ code: number; errors: string[] }> {
  try {
    await run(process.execPath, [TSC, "-p", project]);
    return { code: 0, errors: [] };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, errors: (e.stdout ?? "").split("\n").filter((l) => l.includes("error TS")) };
  }
}

test("the API usage file type-checks", { timeout: 120_000 }, async () => {
  const { code, errors } = await tsc(join(FIXTURES, "tsconfig.json"));
  assert.equal(code, 0, errors.join("\n"));
});

test("every @ts-expect-error line really is a compile error", { timeout: 120_000 }, async () => {
  // Without the directives, tsc must report an error on exactly the lines they guarded.
  const source = readFileSync(join(FIXTURES, "types-usage.ts"), "utf8").split("\n");
  const guarded = new Set<number>();
  const stripped = source.map((line, i) => {
    if (!line.trim().startsWith("// @ts-expect-error")) return line;
    guarded.add(i + 2); // 1-based number of the next line
    return "";
  });
  assert.ok(guarded.size >= 10, "the usage file should hold the misuse cases");
  const dir = join(CLIENT_ROOT, "build-test", "types-negative");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(join(dir, "types-usage.ts"), stripped.join("\n"));
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      extends: join(FIXTURES, "tsconfig.json"), compilerOptions: { rootDir: ".", skipLibCheck: true }, include: ["types-usage.ts"],
    }));
    const { code, errors } = await tsc(dir);
    assert.notEqual(code, 0);
    const lines = new Set(errors.map((l) => Number(/\((\d+),\d+\): error/.exec(l)?.[1])));
    assert.deepEqual([...lines].sort((a, b) => a - b), [...guarded].sort((a, b) => a - b), errors.join("\n"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the README's Secretary integration example type-checks", { timeout: 120_000 }, async () => {
  const readme = readFileSync(join(CLIENT_ROOT, "README.md"), "utf8");
  const block = [...readme.matchAll(/```typescript\n([\s\S]*?)```/g)]
    .map((m) => m[1] ?? "")
    .find((code) => code.includes("class LivePortraitRenderer implements IAvatarRenderer"));
  assert.ok(block !== undefined, "README.md has no Secretary example");
  // Secretary's own declarations, which its example takes from the surrounding app.
  const prelude = [
    `import type { EmotionType, LivePortraitClient } from "liveportrait-avatar-client";`,
    "interface IAvatarRenderer { renderFrame(sourceImage: Buffer, emotion: EmotionType): Promise<Buffer>; }",
  ].join("\n");
  const dir = tempDir("secretary");
  try {
    writeFileSync(join(dir, "renderer.ts"), `${prelude}\n${block}`);
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true, noEmit: true,
        skipLibCheck: true,
        types: ["node"], typeRoots: [join(CLIENT_ROOT, "node_modules", "@types")],
        baseUrl: ".",
        paths: {
          // Secretary's alias for this package; and the package itself for the prelude.
          "@services/liveportrait-avatar/client": [join(CLIENT_ROOT, "dist", "index.d.ts")],
          "liveportrait-avatar-client": [join(CLIENT_ROOT, "dist", "index.d.ts")],
        },
      },
      include: ["renderer.ts"],
    }));
    const { code, errors } = await tsc(dir);
    assert.equal(code, 0, errors.join("\n"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
