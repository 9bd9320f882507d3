/** Test support: the real Python server on a free loopback port, and sample photos. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** client-ts/ (this file runs from client-ts/build-test/test/). */
export const CLIENT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const REPO_ROOT = resolve(CLIENT_ROOT, "..");
export const PYTHON = process.env["LIVEPORTRAIT_PYTHON"] ?? join(REPO_ROOT, ".venv", "bin", "python");

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `lp-client-${prefix}-`));
}

export interface ServerHandle {
  baseUrl: string;
  port: number;
  outputDir: string;
  log(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** Starts `python -m streamer serve --engine mesh` and waits until /health answers. */
export async function startServer(extraArgs: string[] = [], startTimeoutMs = 120_000): Promise<ServerHandle> {
  const port = await freePort();
  const workDir = tempDir("server");
  const outputDir = join(workDir, "out");
  const child = spawn(PYTHON, [
    "-m", "streamer", "serve", "--host", "127.0.0.1", "--port", String(port), "--engine", "mesh",
    // Admission by measured load (503 server_busy) is off: these tests open sessions back to
    // back on a busy CI box, and the Python suite tests admission itself.
    "--output-dir", outputDir, "--max-session-load", "0", ...extraArgs,
  ], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let output = "";
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  let dead = false;
  void exited.then(() => {
    dead = true;
    children.delete(child);
  });

  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (dead) throw new Error(`the server exited during start-up:\n${output}`);
    try {
      const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the server did not become healthy within ${startTimeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    baseUrl, port, outputDir,
    log: () => output,
    async stop(): Promise<void> {
      if (!dead) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

export interface Samples {
  dir: string;
  /** matplotlib's grace_hopper.jpg: a real face. */
  portrait: string;
  /** skimage.data.chelsea(): a cat, so no human face. */
  cat: string;
}

/** Writes the sample photos (from packages the server already depends on) into a new folder. */
export function writeSamples(dir = tempDir("samples")): Samples {
  const script = [
    "import sys",
    "from streamer.samples import sample_portrait_bytes as s",
    "open(sys.argv[1] + '/portrait.jpg', 'wb').write(s('grace_hopper'))",
    "open(sys.argv[1] + '/cat.jpg', 'wb').write(s('chelsea'))",
  ].join("\n");
  execFileSync(PYTHON, ["-c", script, dir], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
  return { dir, portrait: join(dir, "portrait.jpg"), cat: join(dir, "cat.jpg") };
}

export function isJpeg(buf: Uint8Array): boolean {
  return buf.length > 4 && buf[0] === 0xff && buf[1] === 0xd8 && buf[buf.length - 2] === 0xff
    && buf[buf.length - 1] === 0xd9;
}

export function isPng(buf: Uint8Array): boolean {
  return buf.length > 8 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47;
}

/** Resolves with the value `pick` returns for the first matching event, or rejects after `ms`. */
export function waitFor<T>(ms: number, what: string,
                           subscribe: (done: (value: T) => void) => () => void): Promise<T> {
  return new Promise((resolveWait, reject) => {
    let unsubscribe: () => void = () => {};
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    unsubscribe = subscribe((value) => {
      clearTimeout(timer);
      unsubscribe();
      resolveWait(value);
    });
  });
}
