/**
 * The session half in a real browser: headless Chromium loads dist/ as ES modules, opens a
 * WebRTC session with attachVideo, decodes video, and receives WebSocket JPEG frames.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { extname, join, normalize } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { CLIENT_ROOT, PYTHON, REPO_ROOT, type Samples, type ServerHandle, startServer, writeSamples } from "./helpers.js";

const run = promisify(execFile);
// LPA_CHROMIUM points elsewhere (or at nothing, to try the skip path): avatar_testkit/browsers.py.
const CHROMIUM = process.env["LPA_CHROMIUM"] || "/usr/bin/chromium";
const TYPES: Record<string, string> = { ".js": "text/javascript", ".html": "text/html", ".jpg": "image/jpeg" };

let server: ServerHandle | undefined;
let samples: Samples | undefined;
let pages: Server | undefined;

/** Serves the page, dist/ and the portrait on a loopback port. */
function servePages(portrait: string): Promise<{ server: Server; url: string }> {
  const srv = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    let file: string | undefined;
    if (path === "/page.html") file = join(CLIENT_ROOT, "test", "fixtures", "browser.html");
    else if (path === "/portrait.jpg") file = portrait;
    else if (path.startsWith("/dist/") && !path.includes("..")) file = join(CLIENT_ROOT, path);
    if (file === undefined || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => {
    const address = srv.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    resolve({ server: srv, url: `http://127.0.0.1:${port}` });
  }));
}

let pagesUrl: string | undefined;

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  samples = writeSamples();
  // The page comes from another origin than the API, as in a real app: the server must list it
  // (it refuses cross-origin WebSocket upgrades and writes from origins it does not know).
  const served = await servePages(samples.portrait);
  pages = served.server;
  pagesUrl = served.url;
  server = await startServer(["--cors-origin", pagesUrl]);
});

after(async () => {
  await server?.stop();
  if (pages !== undefined) await new Promise((r) => pages?.close(r));
  if (samples !== undefined) rmSync(samples.dir, { recursive: true, force: true });
});

test("attachVideo plays the session in headless Chromium; frames also arrive over its WebSocket",
  { timeout: 150_000, skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (apt-get install chromium, or set LPA_CHROMIUM)` },
  async () => {
    assert.ok(server !== undefined && pagesUrl !== undefined);
    const url = `${pagesUrl}/page.html?api=${encodeURIComponent(server.baseUrl)}`;
    const { stdout } = await run(PYTHON, [join(CLIENT_ROOT, "test", "fixtures", "browser_driver.py"), url],
                                 { cwd: REPO_ROOT, timeout: 120_000 });
    const { result, logs } = JSON.parse(stdout) as { result: Record<string, unknown>; logs: string[] };
    assert.equal(result["ok"], true, `${String(result["error"])}\n${logs.join("\n")}`);
    assert.equal(result["width"], 256);
    assert.equal(result["height"], 256);
    assert.equal(result["happy"], 1);
    assert.equal(result["frameIsJpeg"], true);
  });
