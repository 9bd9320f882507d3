"""Page-side probes of the demo page, shared by the Chromium (Playwright) and Firefox
(Marionette) tests. Each JS_* is one arrow function: Playwright's page.evaluate(JS, arg) takes it
as it is; Firefox runs `return (JS)(arguments[0])` (a returned promise is awaited by both).
"""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# Frames per second presented by the <video>, counted over `ms`; 0 if it stalls.
JS_VIDEO_FPS = """async (ms) => {
  const v = document.getElementById('video');
  let n = 0; const t0 = performance.now();
  await new Promise((resolve) => {
    const cb = () => { n++; if (performance.now() - t0 < ms) v.requestVideoFrameCallback(cb); };
    v.requestVideoFrameCallback(cb);
    setTimeout(resolve, ms);
  });
  return n * 1000 / (performance.now() - t0);
}"""

# The <video>'s own playback state: its clock, decoded frames (all browsers) and size.
JS_PLAYBACK = """() => {
  const v = document.getElementById('video');
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : { totalVideoFrames: 0 };
  return { time: v.currentTime, decoded: q.totalVideoFrames, shown: avatarDemo.framesShown,
           width: v.videoWidth, height: v.videoHeight, readyState: v.readyState, paused: v.paused };
}"""

# The current video frame as a PNG data URL (for the landmark detector in Python).
JS_FRAME_PNG = """() => {
  const v = document.getElementById('video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext('2d').drawImage(v, 0, 0);
  return c.toDataURL('image/png');
}"""

# Arm the watcher: remember the region's pixels now and the time of the slider's next input.
JS_ARM = """([x, y, w, h, sliderId]) => {
  const v = document.getElementById('video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  const grab = () => { ctx.drawImage(v, 0, 0); return ctx.getImageData(x, y, w, h).data; };
  const diff = (a, b) => { let s = 0; for (let i = 0; i < a.length; i += 4) s += Math.abs(a[i] - b[i]) + Math.abs(a[i+1] - b[i+1]) + Math.abs(a[i+2] - b[i+2]); return s / (a.length / 4 * 3); };
  window.__probe = { grab, diff, base: grab(), t0: null };
  document.getElementById(sliderId).addEventListener('input', () => { window.__probe.t0 = performance.now(); }, { once: true });
}"""

# Mean abs difference between the armed baseline and the current frame, right now.
JS_REGION_DIFF = "() => window.__probe.diff(window.__probe.base, window.__probe.grab())"

# Wait (on presented frames) until the region differs by more than `thr`: the frames it took
# (counted, so a slow machine cannot miss it by being slow) and the ms since the input (a figure).
JS_WAIT_CHANGE = """([thr, maxFrames]) => new Promise((resolve) => {
  const p = window.__probe; const v = document.getElementById('video');
  let frames = 0;
  const check = () => {
    const d = p.diff(p.base, p.grab());
    if (d > thr) return resolve({ frames, ms: performance.now() - p.t0, diff: d });
    if (frames >= maxFrames) return resolve({ frames, ms: null, diff: d });
    frames += 1;
    v.requestVideoFrameCallback(check);
  };
  check();
})"""

# Wait (on presented frames) until the region holds still: `n` frames in a row within `thr`
# of the one before (idle motion off and the last transition finished).
JS_WAIT_STILL = """([x, y, w, h, n, thr]) => new Promise((resolve) => {
  const v = document.getElementById('video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  const grab = () => { ctx.drawImage(v, 0, 0); return ctx.getImageData(x, y, w, h).data; };
  const diff = (a, b) => { let s = 0; for (let i = 0; i < a.length; i += 4) s += Math.abs(a[i] - b[i]) + Math.abs(a[i+1] - b[i+1]) + Math.abs(a[i+2] - b[i+2]); return s / (a.length / 4 * 3); };
  let prev = grab(); let still = 0; let seen = 0;
  const check = () => {
    const cur = grab(); seen += 1;
    still = diff(prev, cur) <= thr ? still + 1 : 0; prev = cur;
    if (still >= n || seen > 2000) return resolve(still >= n);
    v.requestVideoFrameCallback(check);
  };
  v.requestVideoFrameCallback(check);
})"""

# A control shows within a few frames (those rendered or in flight ahead of it); the bound is
# in frames, and far above the usual 2-6, so that only a control that never lands fails.
CHANGE_WITHIN_FRAMES = 60




def png_data_url_to_rgb(url: str) -> np.ndarray:
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def lips_box(frame: np.ndarray) -> tuple[int, int, int, int]:
    """x, y, w, h around the lips of the face in a frame (FaceMesh on that frame)."""
    from engine.landmarks import detect_landmarks

    lm = detect_landmarks(frame)
    lips = lm.points[[61, 291, 0, 17, 13, 14, 84, 314], :2]  # corners, outer and inner lip midpoints
    (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
    mx, my = 0.25 * (x1 - x0), 0.5 * (y1 - y0)  # the corners travel up and out when smiling
    h, w = frame.shape[:2]
    bx0, by0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
    bx1, by1 = min(w, int(x1 + mx)), min(h, int(y1 + my))
    return bx0, by0, bx1 - bx0, by1 - by0
