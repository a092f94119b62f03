// The waveform canvas: peaks (min/max per 1/pps s as signed bytes) drawn at any zoom, the cues as boxes on it,
// the playhead. Pure drawing and hit-testing; the page owns the state.

export class Waveform {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.peaks = null;
    this.pps = 100;
    this.duration = 0;
    this.viewStart = 0;
    this.secondsPerPixel = 0.02;
    this.height = 150;
    this.resize();
  }

  setPeaks(bytes, pps, duration) {
    this.peaks = new Int8Array(bytes);
    this.pps = pps;
    this.duration = duration;
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(200, this.canvas.clientWidth || this.canvas.parentElement.clientWidth);
    this.width = width;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.canvas.style.height = this.height + "px";
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  get viewSeconds() {
    return this.width * this.secondsPerPixel;
  }

  xOf(seconds) {
    return (seconds - this.viewStart) / this.secondsPerPixel;
  }

  secondsAt(x) {
    return this.viewStart + x * this.secondsPerPixel;
  }

  clampView(total) {
    const max = Math.max(0, total - this.viewSeconds);
    this.viewStart = Math.max(0, Math.min(max, this.viewStart));
  }

  /** cues: [{start, end, label, selected, playing}] in seconds, only those in view. */
  draw(cues, playhead) {
    const { ctx, width, height } = this;
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#14181f";
    ctx.fillRect(0, 0, width, height);
    const mid = height / 2;
    // cue boxes under the wave
    for (const c of cues) {
      const x0 = this.xOf(c.start);
      const x1 = this.xOf(c.end);
      ctx.fillStyle = c.selected ? "rgba(86, 156, 255, 0.34)" : c.bad ? "rgba(230, 80, 80, 0.22)"
        : "rgba(120, 170, 255, 0.14)";
      ctx.fillRect(x0, 16, Math.max(1, x1 - x0), height - 16);
      ctx.fillStyle = c.selected ? "#7fb2ff" : "#4d78b8";
      ctx.fillRect(x0, 16, 2, height - 16);
      ctx.fillRect(x1 - 2, 16, 2, height - 16);
      if (x1 - x0 > 24) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(x0 + 4, 0, x1 - x0 - 8, 16);
        ctx.clip();
        ctx.fillStyle = c.selected ? "#dce9ff" : "#9fb3cf";
        ctx.font = "11px system-ui, sans-serif";
        ctx.fillText(c.label, x0 + 4, 12);
        ctx.restore();
      }
    }
    // the wave
    if (this.peaks && this.peaks.length) {
      const p = this.peaks;
      const pairs = p.length / 2;
      ctx.fillStyle = "#8fd19e";
      const scale = (height - 20) / 2 / 127;
      for (let x = 0; x < width; x++) {
        const t0 = this.secondsAt(x);
        let b0 = Math.floor(t0 * this.pps);
        let b1 = Math.ceil((t0 + this.secondsPerPixel) * this.pps);
        if (b1 <= 0 || b0 >= pairs) continue;
        b0 = Math.max(0, b0);
        b1 = Math.min(pairs, Math.max(b1, b0 + 1));
        let lo = 127;
        let hi = -127;
        for (let b = b0; b < b1; b++) {
          const a = p[2 * b];
          const z = p[2 * b + 1];
          if (a < lo) lo = a;
          if (z > hi) hi = z;
        }
        const y0 = mid + 8 - hi * scale;
        const y1 = mid + 8 - lo * scale;
        ctx.fillRect(x, y0, 1, Math.max(1, y1 - y0));
      }
    } else {
      ctx.fillStyle = "#8a94a6";
      ctx.font = "13px system-ui, sans-serif";
      ctx.fillText(this.message || "no audio", 12, mid + 4);
    }
    // playhead
    const px = this.xOf(playhead);
    if (px >= 0 && px <= width) {
      ctx.fillStyle = "#ffcc4d";
      ctx.fillRect(Math.round(px) - 1, 0, 2, height);
    }
  }

  /** Which cue edge is under x: {index, edge} for the boxes given, or null. */
  edgeAt(x, y, cues, slop = 6) {
    if (y < 16) return null;
    let best = null;
    for (const c of cues) {
      for (const edge of ["start", "end"]) {
        const ex = this.xOf(edge === "start" ? c.start : c.end);
        const d = Math.abs(ex - x);
        if (d <= slop && (!best || d < best.d)) best = { index: c.index, edge, d };
      }
    }
    return best;
  }

  cueAt(x, cues) {
    const t = this.secondsAt(x);
    for (const c of cues) if (t >= c.start && t < c.end) return c.index;
    return -1;
  }
}
