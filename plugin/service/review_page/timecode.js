// Timecodes in the timeline's own rate and display form (drop-frame at 29.97/59.94), the same as the engine's
// Timebase.timecode: frames count from the timeline's first frame and the start timecode is added.

export function parseRate(text) {
  const s = String(text);
  if (s.includes("/")) {
    const [n, d] = s.split("/").map(Number);
    return { num: n, den: d };
  }
  const x = Number(s);
  if (Number.isInteger(x)) return { num: x, den: 1 };
  return { num: Math.round(x * 1001), den: 1001 };
}

export function makeClock(timeline) {
  const rate = parseRate(timeline.rate);
  const fps = Math.round(rate.num / rate.den);
  const drop = Boolean(timeline.drop_frame);
  const clock = { ...rate, fps, drop, startFrame: 0 };
  clock.startFrame = timecodeToFrames(timeline.start_timecode || "00:00:00:00", clock);
  return clock;
}

function pad(n) {
  return n < 10 ? "0" + n : String(n);
}

export function timecodeToFrames(text, clock) {
  const parts = text.replace(/;/g, ":").split(":").map(Number);
  const [h, m, s, f] = parts;
  const fps = clock.fps;
  let total = ((h * 60 + m) * 60 + s) * fps + f;
  if (clock.drop) {
    const dropped = fps === 60 ? 4 : 2;
    const minutes = h * 60 + m;
    total -= dropped * (minutes - Math.floor(minutes / 10));
  }
  return total;
}

/** Timecode of timeline frame `frame` (absolute: the start timecode added). */
export function timecode(frame, clock, absolute = true) {
  let f = frame + (absolute ? clock.startFrame : 0);
  const fps = clock.fps;
  if (clock.drop) {
    const dropped = fps === 60 ? 4 : 2;
    const per10 = fps * 600 - dropped * 9;
    const per1 = fps * 60 - dropped;
    const tens = Math.floor(f / per10);
    const rest = f % per10;
    f += dropped * 9 * tens + (rest > dropped ? dropped * Math.floor((rest - dropped) / per1) : 0);
  }
  const ff = f % fps;
  const totalSeconds = Math.floor(f / fps);
  const ss = totalSeconds % 60;
  const mm = Math.floor(totalSeconds / 60) % 60;
  const hh = Math.floor(totalSeconds / 3600);
  return `${pad(hh)}:${pad(mm)}:${pad(ss)}${clock.drop ? ";" : ":"}${pad(ff)}`;
}

/** Seconds from the timeline's first frame to the start of `frame` (exact rate). */
export function frameSeconds(frame, clock) {
  return (frame * clock.den) / clock.num;
}

/** The frame containing `seconds`. */
export function frameAt(seconds, clock) {
  return Math.floor((seconds * clock.num) / clock.den + 1e-9);
}

/** The frame whose start is nearest to `seconds` (for snapping a dragged edge). */
export function nearestFrame(seconds, clock) {
  return Math.round((seconds * clock.num) / clock.den);
}
