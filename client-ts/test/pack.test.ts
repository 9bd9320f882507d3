/**
 * What `npm pack` puts in the published package: the built modules, their types, README,
 * LICENSE and package.json. Nothing from src/, test/, bench/ or build-test/, and no source maps
 * that would point at sources the package does not carry.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { CLIENT_ROOT } from "./helpers.js";

const run = promisify(execFile);

interface PackEntry { path: string; size: number }
interface PackResult { name: string; files: PackEntry[] }

/** `npm pack --dry-run --json`, without the prepack rebuild: `npm test` has just built dist/. */
async function packList(): Promise<PackResult> {
  // Under `npm test`, npm_execpath is the running npm's CLI script: the same npm, whatever PATH says.
  const npmCli = process.env["npm_execpath"];
  const [cmd, pre] = npmCli !== undefined && npmCli.endsWith(".js")
    ? [process.execPath, [npmCli]] : ["npm", []];
  const { stdout } = await run(cmd, [...pre, "pack", "--dry-run", "--json", "--ignore-scripts"],
                               { cwd: CLIENT_ROOT, maxBuffer: 16 * 1024 * 1024 });
  const parsed = JSON.parse(stdout) as PackResult[];
  assert.equal(parsed.length, 1);
  return parsed[0]!;
}

test("npm pack holds exactly dist's modules and types, README, LICENSE and package.json", async () => {
  const pack = await packList();
  assert.equal(pack.name, "liveportrait-avatar-client");
  const modules = readdirSync(join(CLIENT_ROOT, "src"))
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .map((f) => f.slice(0, -".ts".length));
  assert.ok(modules.includes("index"), "src/index.ts is the entry point");
  const expected = [
    "LICENSE", "README.md", "package.json",
    ...modules.flatMap((m) => [`dist/${m}.js`, `dist/${m}.d.ts`]),
  ].sort();
  assert.deepEqual(pack.files.map((f) => f.path).sort(), expected);
  for (const f of pack.files) assert.ok(f.size > 0, `${f.path} is empty`);
});

test("the package's entry points are files it ships", async () => {
  const pkg = JSON.parse(readFileSync(join(CLIENT_ROOT, "package.json"), "utf8")) as {
    main: string; types: string; license: string; exports: Record<string, Record<string, string>>;
  };
  const shipped = new Set((await packList()).files.map((f) => f.path));
  const targets = [pkg.main, pkg.types, ...Object.values(pkg.exports["."] ?? {})];
  assert.ok(targets.length >= 4);
  for (const target of targets) assert.ok(shipped.has(target.replace(/^\.\//, "")), `${target} is not packed`);
  // The LICENSE file and the declared license agree.
  assert.equal(pkg.license, "MIT");
  assert.match(readFileSync(join(CLIENT_ROOT, "LICENSE"), "utf8"), /^MIT License\n/);
});
