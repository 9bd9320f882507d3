// AudioWorklet processor for the microphone (its own file: the page's CSP forbids inline or
// blob: scripts). It turns the context's float samples into 48 kHz mono 16-bit PCM and posts
// one chunk per CHUNK_MS to the page, together with the chunk's peak level.
const OUT_RATE = 48000;
const CHUNK_MS = 20;
const CHUNK = (OUT_RATE * CHUNK_MS) / 1000; // 960 samples

class MicPcmProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    // `sampleRate` is the context's rate (a global of the worklet scope); resample linearly
    // when it is not 48 kHz. Speech sits far below either Nyquist, so linear is enough here.
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.pos = 0; // read position in the input, relative to `prev`
    this.prev = 0; // the last input sample of the previous block
    this.out = new Int16Array(CHUNK);
    this.n = 0;
    this.peak = 0;
    this.running = true;
    this.port.onmessage = (ev) => { if (ev.data === "stop") this.running = false; };
  }

  process(inputs) {
    const input = inputs[0];
    if (!this.running) return false;
    if (!input || input.length === 0 || input[0].length === 0) return true;
    const len = input[0].length;
    const mono = new Float32Array(len);
    for (const channel of input) for (let i = 0; i < len; i++) mono[i] += channel[i] / input.length;
    // Sample k of this block sits at index k + 1 of [prev, ...mono].
    while (this.pos < len) {
      const i = Math.floor(this.pos);
      const f = this.pos - i;
      const a = i === 0 ? this.prev : mono[i - 1];
      const b = mono[Math.min(i, len - 1)];
      const v = Math.max(-1, Math.min(1, a + (b - a) * f));
      this.peak = Math.max(this.peak, Math.abs(v));
      this.out[this.n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      if (this.n === CHUNK) {
        const chunk = this.out.buffer;
        this.port.postMessage({ pcm: chunk, peak: this.peak }, [chunk]);
        this.out = new Int16Array(CHUNK);
        this.n = 0;
        this.peak = 0;
      }
      this.pos += this.step;
    }
    this.pos -= len;
    this.prev = mono[len - 1];
    return true;
  }
}

registerProcessor("mic-pcm", MicPcmProcessor);
