// The stage: shows either the WebRTC <video> or the WebSocket frames on a <canvas>,
// counts the frames actually shown, and takes snapshots of whichever is live.

export class Stage {
  constructor(root) {
    this.root = root;
    this.video = root.querySelector("#video");
    this.canvas = root.querySelector("#canvas");
    this.ctx = this.canvas.getContext("2d");
    this.overlayText = root.querySelector("#stage-overlay-text");
    this.transport = "none";
    this.framesShown = 0; // total, for the "shown here" fps and for tests
    this.firstFrameAt = null;
    this._drawing = false;
    this._pendingBlob = null;
    this._waiters = [];
    this._watchVideo();
  }

  /** Resolve on the next shown frame (either transport). */
  nextFrame() {
    return new Promise((resolve) => { this._waiters.push(resolve); });
  }

  _frameShown() {
    this.framesShown += 1;
    if (this.firstFrameAt === null) this.firstFrameAt = performance.now();
    this.root.classList.add("playing");
    if (this._waiters.length) {
      const waiters = this._waiters;
      this._waiters = [];
      for (const f of waiters) f();
    }
  }

  _watchVideo() {
    const v = this.video;
    if (typeof v.requestVideoFrameCallback === "function") {
      const tick = () => {
        if (this.transport === "webrtc") this._frameShown();
        v.requestVideoFrameCallback(tick);
      };
      v.requestVideoFrameCallback(tick);
    } else {
      // Older browsers: count decoded frames through the quality API, sampled 4x per second.
      let last = 0;
      setInterval(() => {
        if (this.transport !== "webrtc" || !v.getVideoPlaybackQuality) return;
        const n = v.getVideoPlaybackQuality().totalVideoFrames;
        for (let i = last; i < n; i++) this._frameShown();
        last = n;
      }, 250);
    }
  }

  setBusy(busy, text) {
    this.root.classList.toggle("busy", busy);
    if (text) this.overlayText.textContent = text;
  }

  /** Show a WebRTC stream in the <video>. */
  showStream(stream) {
    this.transport = "webrtc";
    this.root.dataset.transport = "webrtc";
    this.canvas.hidden = true;
    this.video.hidden = false;
    if (this.video.srcObject !== stream) this.video.srcObject = stream;
    const p = this.video.play();
    if (p && p.catch) p.catch(() => { /* autoplay of a muted video is allowed; ignore races */ });
  }

  /** Switch to canvas frames (WebSocket fallback). */
  useCanvas() {
    this.transport = "websocket";
    this.root.dataset.transport = "websocket";
    this.video.hidden = true;
    this.canvas.hidden = false;
    if (this.video.srcObject) {
      this.video.srcObject = null;
    }
  }

  /** Draw one encoded frame (Blob). Frames that arrive while one is decoding replace each other. */
  drawBlob(blob) {
    if (this.transport !== "websocket") return;
    this._pendingBlob = blob;
    if (this._drawing) return;
    this._drawing = true;
    const drawNext = async () => {
      while (this._pendingBlob) {
        const b = this._pendingBlob;
        this._pendingBlob = null;
        try {
          const bmp = await createImageBitmap(b);
          if (this.canvas.width !== bmp.width || this.canvas.height !== bmp.height) {
            this.canvas.width = bmp.width;
            this.canvas.height = bmp.height;
          }
          this.ctx.drawImage(bmp, 0, 0);
          bmp.close();
          this._frameShown();
        } catch {
          // A corrupt frame is skipped; the next one replaces it.
        }
      }
      this._drawing = false;
    };
    drawNext();
  }

  /** The current frame as a PNG Blob, or null before the first frame. */
  async snapshot() {
    const src = this.transport === "websocket" ? this.canvas : this.video;
    const w = src === this.video ? this.video.videoWidth : this.canvas.width;
    const h = src === this.video ? this.video.videoHeight : this.canvas.height;
    if (!w || !h || this.framesShown === 0) return null;
    const c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    c.getContext("2d").drawImage(src, 0, 0, w, h);
    return new Promise((resolve) => c.toBlob(resolve, "image/png"));
  }
}

/** Save a Blob as a download with the given file name. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
