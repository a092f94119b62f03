// Editing the cue list: every change is a splice (index, removed cues, inserted cues) with its inverse, so undo and
// redo are exact. Frame rules: cues never overlap and keep the preset's minimum gap; every time is a whole frame.

export class History {
  constructor() {
    this.undoStack = [];
    this.redoStack = [];
  }
  push(op) {
    this.undoStack.push(op);
    this.redoStack.length = 0;
  }
}

export function cloneCue(c) {
  return { start_frame: c.start_frame, end_frame: c.end_frame, text: { ...c.text }, edited: Boolean(c.edited),
    speakers: [...(c.speakers || [])] };
}

// ---- speakers: ids "S1", names given by the engine or the user; marks as core/captions/compose.py writes them
export function defaultSpeakerName(id) {
  const m = /^S(\d+)$/.exec(id || "");
  return m ? `Speaker ${Number(m[1])}` : id;
}

/** "ANA: " (Chinese "ANA：") for a speaker named Ana, as the engine writes labels. */
export function speakerLabel(name, language) {
  return name.toUpperCase() + (/^zh/.test(language || "") ? "：" : ": ");
}

/** Each line of `text` that starts with one of `fromLabels` starts with `toLabel` instead. */
export function relabel(text, fromLabels, toLabel) {
  return text.split("\n").map((line) => {
    const hit = fromLabels.find((label) => label && line.startsWith(label));
    return hit ? toLabel + line.slice(hit.length) : line;
  }).join("\n");
}

/** The distinct speakers of `list` (word speakers in time order), in order of first appearance. */
export function speakersInOrder(list) {
  return [...new Set(list.filter(Boolean))];
}

/** A sticky RegExp of the marks a line may start with: a dash, or one of `labels` (then spaces). */
export function markPattern(labels) {
  const esc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const alts = labels.filter(Boolean).map((x) => esc(x.trim())).sort((a, b) => b.length - a.length);
  return new RegExp(`(?:-\\s?${alts.length ? "|(?:" + alts.join("|") + ")\\s*" : ""})`, "y");
}

/** A speaker id not yet in `speakers`: S<n+1> after the highest "S<n>". */
export function newSpeakerId(speakers) {
  let n = 0;
  for (const s of speakers) {
    const m = /^S(\d+)$/.exec(s.id);
    if (m) n = Math.max(n, Number(m[1]));
  }
  return `S${n + 1}`;
}

/** Replace `remove` cues at `index` with `insert`; returns the inverse splice. */
export function splice(cues, index, remove, insert) {
  const removed = cues.splice(index, remove, ...insert);
  return { index, remove: insert.length, insert: removed };
}

/** The range an edge may move to: [lo, hi] frames. */
export function edgeRange(cues, i, edge, gap) {
  const cue = cues[i];
  if (edge === "start") {
    const lo = i > 0 ? cues[i - 1].end_frame + gap : 0;
    return [lo, cue.end_frame - 1];
  }
  const hi = i + 1 < cues.length ? cues[i + 1].start_frame - gap : Number.MAX_SAFE_INTEGER;
  return [cue.start_frame + 1, hi];
}

export function clampEdge(cues, i, edge, frame, gap) {
  const [lo, hi] = edgeRange(cues, i, edge, gap);
  return Math.max(lo, Math.min(hi, Math.round(frame)));
}

const CJK = /[\u3000-\u9fff\uf900-\ufaff\uff00-\uffef]/;

export function isCJK(language) {
  return /^(zh|ja|ko)/.test(language || "");
}

function textLength(text) {
  return [...text].length;
}

/** One line when it fits, else two balanced lines broken at a space (CJK: between characters). */
export function rebreak(text, language, maxChars) {
  const cjk = isCJK(language) || CJK.test(text);
  const flat = cjk ? text.replace(/\s*\n\s*/g, "") : text.replace(/\s+/g, " ").trim();
  if (textLength(flat) <= maxChars) return flat;
  const chars = [...flat];
  const middle = chars.length / 2;
  if (cjk) {
    const cut = Math.round(middle);
    return chars.slice(0, cut).join("") + "\n" + chars.slice(cut).join("");
  }
  let best = -1;
  for (let k = 0; k < chars.length; k++) {
    if (chars[k] === " " && (best < 0 || Math.abs(k - middle) < Math.abs(best - middle))) best = k;
  }
  if (best < 0) return flat;
  return chars.slice(0, best).join("") + "\n" + chars.slice(best + 1).join("");
}

/** Split `text` at a character fraction (0..1), at a word boundary for spaced languages. */
export function splitTextAt(text, fraction, language) {
  const flat = isCJK(language) || CJK.test(text) ? text.replace(/\s*\n\s*/g, "") : text.replace(/\s+/g, " ").trim();
  const chars = [...flat];
  let cut = Math.round(chars.length * fraction);
  if (!(isCJK(language) || CJK.test(flat))) {
    let best = -1;
    for (let k = 0; k < chars.length; k++) {
      if (chars[k] === " " && (best < 0 || Math.abs(k - cut) < Math.abs(best - cut))) best = k;
    }
    if (best < 0) return [flat, ""];
    cut = best;
    return [chars.slice(0, cut).join("").trim(), chars.slice(cut + 1).join("").trim()];
  }
  return [chars.slice(0, cut).join(""), chars.slice(cut).join("")];
}

export function joinTexts(a, b, language) {
  const cjk = isCJK(language) || CJK.test(a + b);
  const left = cjk ? a.replace(/\s*\n\s*/g, "") : a.replace(/\s+/g, " ").trim();
  const right = cjk ? b.replace(/\s*\n\s*/g, "") : b.replace(/\s+/g, " ").trim();
  if (!left) return right;
  if (!right) return left;
  return cjk ? left + right : left + " " + right;
}

/**
 * Map a cue's text onto its recognised words: [{w, from, to}] character offsets, or null when the text no longer
 * reads as those words (it was edited).
 */
export function matchWords(text, words, marks = null) {
  const out = [];
  let pos = 0;
  // a speaker mark (a dash or a name label) at the start of a line is not a word: skipped
  const skipMark = () => {
    if (!marks || !(pos === 0 || text[pos - 1] === "\n")) return;
    marks.lastIndex = pos;
    const m = marks.exec(text);
    if (m) pos += m[0].length;
  };
  for (const w of words) {
    const token = w.word.text.trim();
    if (!token) continue;
    while (pos < text.length && /\s/.test(text[pos])) { pos++; skipMark(); }
    skipMark();
    while (pos < text.length && /\s/.test(text[pos])) pos++;
    if (text.startsWith(token, pos)) {
      out.push({ w: w.index, from: pos, to: pos + token.length });
      pos += token.length;
    } else {
      return null;
    }
  }
  while (pos < text.length && /\s/.test(text[pos])) pos++;
  return pos === text.length && out.length ? out : null;
}
