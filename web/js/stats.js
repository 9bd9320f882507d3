// The live stats panel: the server's per-second "stats" event plus what this page measures
// itself (frames shown, bitrate from getStats or WebSocket bytes, round trip, connection).

const $ = (id) => document.getElementById(id);

function fmtBitrate(bps) {
  if (bps === null || !Number.isFinite(bps)) return "–";
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mbit/s`;
  return `${Math.round(bps / 1e3)} kbit/s`;
}

export class StatsPanel {
  constructor(stage) {
    this.stage = stage;
    this.el = {
      fps: $("stat-fps"), shown: $("stat-shown"), render: $("stat-render"), latency: $("stat-latency"),
      bitrate: $("stat-bitrate"), rtt: $("stat-rtt"), conn: $("stat-conn"), viewers: $("stat-viewers"),
    };
    this.pc = null;
    this.wsBytes = 0; // binary frame bytes, for the fallback's bitrate
    this._lastFrames = 0;
    this._lastBytes = null;
    this._lastT = performance.now();
    this._timer = setInterval(() => this._tick(), 1000);
  }

  setPeer(pc) {
    this.pc = pc;
    this._lastBytes = null;
  }

  setConnection(text) {
    this.el.conn.textContent = text;
  }

  setRtt(ms) {
    this.el.rtt.textContent = `${Math.round(ms)} ms`;
  }

  /** The server's "stats" event. */
  server(msg) {
    this.el.fps.textContent = Number.isFinite(msg.fps) ? `${msg.fps.toFixed(1)} fps` : "–";
    this.el.render.textContent = Number.isFinite(msg.render_ms) ? `${msg.render_ms.toFixed(1)} ms` : "–";
    this.el.latency.textContent = Number.isFinite(msg.control_latency_ms)
      ? `${Math.round(msg.control_latency_ms)} ms` : "–";
    this.el.viewers.textContent = `${msg.viewers ?? "–"} · ${msg.dropped ?? "–"}`;
  }

  async _tick() {
    const now = performance.now();
    const dt = (now - this._lastT) / 1000;
    this._lastT = now;
    const frames = this.stage.framesShown;
    this.el.shown.textContent = `${((frames - this._lastFrames) / dt).toFixed(1)} fps`;
    this._lastFrames = frames;

    let bytes = null;
    if (this.stage.transport === "webrtc" && this.pc) {
      try {
        const report = await this.pc.getStats();
        report.forEach((s) => {
          if (s.type === "inbound-rtp" && (s.kind === "video" || s.mediaType === "video")) bytes = s.bytesReceived;
        });
      } catch { /* peer closed between ticks */ }
    } else if (this.stage.transport === "websocket") {
      bytes = this.wsBytes;
    }
    if (bytes !== null && this._lastBytes !== null && bytes >= this._lastBytes) {
      this.el.bitrate.textContent = fmtBitrate(((bytes - this._lastBytes) * 8) / dt);
    }
    this._lastBytes = bytes;
  }
}
