// The CaptionBridge review page: job list, and one job's waveform, cues, confidence, findings, edits and approval.
// Plain modules, no third-party code; everything is fetched from the engine that served the page.
import { makeClock, timecode, frameSeconds, frameAt, nearestFrame } from "./timecode.js";
import { History, cloneCue, splice, clampEdge, rebreak, splitTextAt, joinTexts, matchWords, isCJK,
  defaultSpeakerName, speakerLabel, relabel, speakersInOrder, newSpeakerId, markPattern } from "./edits.js";
import { Waveform } from "./waveform.js";

const $ = (sel) => document.querySelector(sel);
const perf = (window.__cbPerf = { edits: [], firstRender: null, loads: [] });

let job = null;          // the job view from the engine
let clock = null;
let cues = [];           // the draft: [{start_frame, end_frame, text, edited}]
let words = [];          // recognised words, sorted by start frame: {text, start_frame, end_frame, confidence}
let wordStarts = [];
let findings = new Map(); // cue index -> [finding]
let history = new History();
let selected = -1;
let selectedWord = -1;
let threshold = 0.5;
let wave = null;
let dirty = false;
let saveTimer = null;
let saving = null;
let editing = null;       // {index, language, textarea}
let drag = null;
let stopAt = null;
let loopCue = -1;
let generation = 0;
let speakers = [];        // who speaks: [{id, name}] (empty: the job has no speaker labels)

function status(text, kind = "") {
  const el = $("#status");
  el.textContent = text;
  el.className = kind;
}

async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || `${res.status} ${res.statusText}`);
    err.status = res.status;
    err.data = data;
    throw err;
  }
  return data;
}

// ---- routing ----------------------------------------------------------------------------------------------------
function route() {
  const m = /job=([0-9a-f]{32})/.exec(location.hash);
  const at = /cue=(\d+)/.exec(location.hash);
  if (m) openJob(m[1]).then(() => { if (at && job && job.id === m[1]) select(Number(at[1]), { seek: true }); });
  else showJobList();
}

// ---- the review queue: the least sure cues across jobs ------------------------------------------------------------
async function showQueue() {
  const input = $("#queue-threshold");
  const value = Number(input.value);
  $("#queue-threshold-value").textContent = value.toFixed(2);
  localStorage.setItem("cb-queue-threshold", String(value));
  const data = await api("GET", `api/queue?threshold=${value}`);
  const body = $("#queue tbody");
  body.replaceChildren();
  for (const item of data.items) {
    const tr = document.createElement("tr");
    const link = document.createElement("a");
    link.href = `#job=${item.job}&cue=${item.cue}`;
    link.textContent = item.text || "(empty)";
    const cells = [item.confidence.toFixed(2), item.timeline, String(item.cue + 1), item.start_timecode || "", link,
      item.reviewed ? "yes" : ""];
    for (const c of cells) {
      const td = document.createElement("td");
      if (typeof c === "string") td.textContent = c; else td.append(c);
      tr.append(td);
    }
    tr.dataset.job = item.job;
    body.append(tr);
  }
  $("#queue-count").textContent = data.total > data.items.length
    ? `${data.items.length} of ${data.total} cues` : `${data.total} cue(s)`;
}

async function showJobList() {
  generation++;
  $("#job-view").hidden = true;
  $("#joblist-view").hidden = false;
  $("#jobtitle").textContent = "";
  document.title = "CaptionBridge review";
  try {
    const data = await api("GET", "api/jobs");
    const body = $("#jobs tbody");
    body.replaceChildren();
    for (const j of data.jobs) {
      const tr = document.createElement("tr");
      const cells = [new Date(j.created_at).toLocaleString(), j.timeline, j.state, (j.languages || []).join(" + "),
        j.cues ?? "", j.low_confidence_words ?? "", j.versions ? `v${j.versions}` + (j.draft ? " + draft" : "")
          : (j.draft ? "draft" : "")];
      cells.forEach((c, k) => {
        const td = document.createElement("td");
        if (k === 1 && j.state === "succeeded") {
          const a = document.createElement("a");
          a.href = `#job=${j.id}`;
          a.textContent = c;
          td.append(a);
        } else td.textContent = c;
        if (k === 5 && j.low_confidence_words) td.className = "lowcount";
        tr.append(td);
      });
      tr.dataset.state = j.state;
      body.append(tr);
    }
    $("#jobs-empty").hidden = data.jobs.length > 0;
    await showQueue();
    status(`${data.jobs.length} job(s)`);
  } catch (e) {
    status(e.message, "error");
  }
}

// ---- one job ------------------------------------------------------------------------------------------------------
async function openJob(id) {
  const t0 = performance.now();
  const mine = ++generation;
  $("#joblist-view").hidden = true;
  $("#job-view").hidden = false;
  status("loading…");
  let view;
  try {
    view = await api("GET", `api/jobs/${id}`);
  } catch (e) {
    status(e.message, "error");
    return;
  }
  if (mine !== generation) return;
  job = view;
  clock = makeClock(view.timeline);
  words = view.words.map((w, index) => ({ ...w, index, orig: index, engineSpeaker: w.speaker || null }));
  for (const [k, id] of Object.entries(view.word_speakers || {})) if (words[Number(k)]) words[Number(k)].speaker = id;
  speakers = (view.speakers || []).map((x) => ({ ...x }));
  words.sort((a, b) => a.start_frame - b.start_frame || a.index - b.index);
  words.forEach((w, k) => (w.index = k));
  wordStarts = words.map((w) => w.start_frame);
  cues = view.cues.map((c) => ({ ...c, text: { ...c.text }, speakers: [...(c.speakers || [])], edited: false }));
  history = new History();
  selected = cues.length ? 0 : -1;
  selectedWord = -1;
  threshold = Number(localStorage.getItem("cb-threshold") ?? view.low_confidence);
  if (!Number.isFinite(threshold)) threshold = view.low_confidence;
  $("#threshold").value = threshold;
  $("#threshold-value").textContent = threshold.toFixed(2);
  setFindings(view.findings);
  const name = view.timeline.name || "timeline";
  $("#jobtitle").textContent = `${name} · ${rateLabel()} · starts ${view.timeline.start_timecode} · ` +
    view.languages.join(" + ") + (view.version ? ` · version ${view.version}` : " · engine output") +
    (view.draft ? " · draft" : "");
  document.title = `${name} – CaptionBridge review`;
  renderSummary();
  renderSpeakers();
  renderCues();
  setupWave(view);
  $("#clock").textContent = timecode(0, clock);
  $("#discard").hidden = !view.draft;
  dirty = false;
  perf.firstRender = performance.now() - t0;
  perf.loads.push({ job: id, ms: perf.firstRender, sinceNavigation: performance.now() });
  requestAnimationFrame(() => {
    perf.firstPaint = performance.now() - t0;
    status(view.draft ? `draft from ${new Date(view.draft.saved_at).toLocaleTimeString()} restored` : "ready");
    document.body.dataset.ready = id;
  });
}

function rateLabel() {
  const r = clock.num / clock.den;
  return (Number.isInteger(r) ? String(r) : r.toFixed(3)) + (clock.drop ? " DF" : "") + " fps";
}

function setFindings(list) {
  findings = new Map();
  for (const f of list || []) {
    if (!findings.has(f.cue)) findings.set(f.cue, []);
    findings.get(f.cue).push(f);
  }
}

function renderSummary() {
  const low = words.filter((w) => w.confidence < threshold).length;
  let hard = 0;
  let soft = 0;
  for (const list of findings.values()) for (const f of list) f.severity === "hard" ? hard++ : soft++;
  $("#summary").textContent = `${cues.length} cues · ${words.length} words · ${low} below ${threshold.toFixed(2)}` +
    ` · ${hard} rule violation(s) to fix, ${soft} note(s)` + (job.audio_available ? "" : " · no audio for this job");
  $("#summary").className = hard ? "has-hard" : "";
}

// the recognised words on cue c's frames (also those its edges were moved into): [{index, word}]
function cueWords(c) {
  let lo = 0;
  let hi = wordStarts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (wordStarts[mid] < c.start_frame) lo = mid + 1; else hi = mid;
  }
  while (lo > 0 && words[lo - 1].end_frame > c.start_frame) lo--;
  const out = [];
  for (let k = lo; k < words.length && words[k].start_frame < c.end_frame; k++) out.push({ index: k, word: words[k] });
  return out;
}

// the cue's text as its words, allowing a word or two at either edge that belongs to the neighbour
function matchCue(text, c) {
  const ws = cueWords(c);
  for (let a = 0; a <= Math.min(2, ws.length); a++) {
    for (let b = 0; b <= Math.min(2, ws.length - a); b++) {
      const m = matchWords(text, ws.slice(a, ws.length - b), speakerMarks());
      if (m) return m;
    }
  }
  return null;
}

function confidenceClass(conf) {
  if (conf < threshold) return "w low";
  if (conf < Math.min(1, threshold + 0.25)) return "w mid";
  return "w";
}

function renderText(el, text, c, language) {
  el.replaceChildren();
  const match = !c.edited && language === job.source_language ? matchCue(text, c) : null;
  const put = (s) => {
    const lines = s.split("\n");
    lines.forEach((line, k) => {
      if (k) el.append(document.createElement("br"));
      if (line) el.append(line);
    });
  };
  if (!match) {
    put(text);
    if (!text.trim()) el.classList.add("empty");
    return;
  }
  let pos = 0;
  for (const m of match) {
    put(text.slice(pos, m.from));
    const span = document.createElement("span");
    const w = words[m.w];
    span.className = confidenceClass(w.confidence) + (m.w === selectedWord ? " sel" : "") +
      (speakers.length && w.speaker && c.speakers.length === 1 && w.speaker !== c.speakers[0] ? " other-speaker" : "");
    span.dataset.w = m.w;
    span.textContent = text.slice(m.from, m.to);
    el.append(span);
    pos = m.to;
  }
  put(text.slice(pos));
}

function rowFor(i) {
  const c = cues[i];
  const row = document.createElement("div");
  row.className = "cue" + (i === selected ? " selected" : "") + (c.edited ? " edited" : "");
  row.dataset.i = i;
  const meta = document.createElement("div");
  meta.className = "meta";
  const num = document.createElement("span");
  num.className = "num";
  num.textContent = i + 1;
  const tin = document.createElement("span");
  tin.className = "tc in";
  tin.textContent = timecode(c.start_frame, clock);
  const tout = document.createElement("span");
  tout.className = "tc out";
  tout.textContent = timecode(c.end_frame, clock);
  const dur = document.createElement("span");
  dur.className = "dur";
  dur.textContent = `${c.end_frame - c.start_frame}f`;
  meta.append(num, tin, tout, dur);
  if (speakers.length) {
    meta.append(speakerChip(c, i));
    row.dataset.speaker = c.speakers.length === 1 ? speakerIndex(c.speakers[0]) : "mixed";
  }
  row.append(meta);
  const texts = document.createElement("div");
  texts.className = "texts" + (job.languages.length > 1 ? " bilingual" : "");
  for (const lang of job.languages) {
    const t = document.createElement("div");
    t.className = "text" + (isCJK(lang) ? " cjk" : "");
    t.dataset.lang = lang;
    t.lang = lang;
    renderText(t, c.text[lang] || "", c, lang);
    texts.append(t);
  }
  row.append(texts);
  const list = findings.get(i);
  if (list && list.length) {
    const ul = document.createElement("ul");
    ul.className = "findings";
    for (const f of list) {
      const li = document.createElement("li");
      li.className = f.severity;
      li.textContent = `${job.languages.length > 1 && !f.timing ? f.language + " " : ""}${f.rule}: ${f.message}`;
      ul.append(li);
    }
    row.append(ul);
    if (list.some((f) => f.severity === "hard")) row.classList.add("hard");
  }
  return row;
}

function renderCues() {
  const box = $("#cues");
  const frag = document.createDocumentFragment();
  for (let i = 0; i < cues.length; i++) frag.append(rowFor(i));
  box.replaceChildren(frag);
}

function rowEl(i) {
  return $("#cues").children[i] || null;
}

function refreshRows(from, to) {
  const box = $("#cues");
  for (let i = from; i < to && i < cues.length; i++) {
    const old = box.children[i];
    const row = rowFor(i);
    if (old) box.replaceChild(row, old); else box.append(row);
  }
}

// ---- selection and playback ----------------------------------------------------------------------------------------
function select(i, { scroll = true, seek = false } = {}) {
  if (i < 0 || i >= cues.length) return;
  const prev = rowEl(selected);
  if (prev) prev.classList.remove("selected");
  selected = i;
  const row = rowEl(i);
  if (row) {
    row.classList.add("selected");
    if (scroll) row.scrollIntoView({ block: "nearest" });
  }
  if (seek) audio().currentTime = frameSeconds(cues[i].start_frame, clock);
  follow(frameSeconds(cues[i].start_frame, clock), frameSeconds(cues[i].end_frame, clock));
  drawWave();
}

function selectWord(k) {
  const old = document.querySelector("#cues .w.sel");
  if (old) old.classList.remove("sel");
  selectedWord = k;
  const span = document.querySelector(`#cues .w[data-w="${k}"]`);
  if (span) span.classList.add("sel");
  showWordSpeaker();
}

const audio = () => $("#audio");

function playCue(i = selected) {
  if (i < 0) return;
  const a = audio();
  a.currentTime = frameSeconds(cues[i].start_frame, clock);
  stopAt = frameSeconds(cues[i].end_frame, clock);
  a.play().catch((e) => status(`cannot play: ${e.message}`, "error"));
}

function togglePlay() {
  const a = audio();
  if (a.paused) {
    stopAt = null;
    a.play().catch((e) => status(`cannot play: ${e.message}`, "error"));
  } else a.pause();
}

function tick() {
  const a = audio();
  if (!a.paused) {
    const t = a.currentTime;
    if (loopCue >= 0 && loopCue < cues.length) {
      const end = frameSeconds(cues[loopCue].end_frame, clock);
      if (t >= end) a.currentTime = frameSeconds(cues[loopCue].start_frame, clock);
    } else if (stopAt !== null && t >= stopAt) {
      a.pause();
      stopAt = null;
    }
    if (wave && (t < wave.viewStart || t > wave.viewStart + wave.viewSeconds)) {
      wave.viewStart = t - wave.viewSeconds * 0.1;
      wave.clampView(duration());
      syncScroll();
    }
    $("#clock").textContent = timecode(frameAt(t, clock), clock);
    drawWave();
  }
  requestAnimationFrame(tick);
}

// ---- the waveform ---------------------------------------------------------------------------------------------------
function duration() {
  if (job && job.audio) return job.audio.duration;
  const last = cues.length ? cues[cues.length - 1].end_frame : 0;
  return frameSeconds(last, clock) + 5;
}

function visibleCues() {
  const out = [];
  if (!wave) return out;
  const t0 = wave.viewStart;
  const t1 = t0 + wave.viewSeconds;
  const f0 = frameAt(t0, clock);
  let lo = 0;
  let hi = cues.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cues[mid].end_frame < f0) lo = mid + 1; else hi = mid;
  }
  for (let i = lo; i < cues.length; i++) {
    const s = frameSeconds(cues[i].start_frame, clock);
    if (s > t1) break;
    const text = cues[i].text[job.source_language] ?? Object.values(cues[i].text)[0] ?? "";
    out.push({ index: i, start: s, end: frameSeconds(cues[i].end_frame, clock), label: text.replace(/\n/g, " "),
      selected: i === selected, bad: (findings.get(i) || []).some((f) => f.severity === "hard") });
  }
  return out;
}

let drawPending = false;
function drawWave() {
  if (!wave || drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    wave.draw(visibleCues(), audio().currentTime || 0);
  });
}

function follow(t0, t1) {
  if (!wave) return;
  if (t0 < wave.viewStart || t1 > wave.viewStart + wave.viewSeconds) {
    wave.viewStart = t0 - Math.max(0, (wave.viewSeconds - (t1 - t0)) / 3);
    wave.clampView(duration());
    syncScroll();
  }
}

function syncScroll() {
  const max = Math.max(0, duration() - wave.viewSeconds);
  $("#wave-scroll").value = max > 0 ? Math.round((wave.viewStart / max) * 1000) : 0;
}

function setupWave(view) {
  const canvas = $("#wave");
  wave = new Waveform(canvas);
  wave.secondsPerPixel = 12 / wave.width; // 12 s in view
  wave.viewStart = 0;
  const a = audio();
  if (view.audio_available) {
    wave.message = "loading the waveform…";
    a.src = `api/jobs/${view.id}/audio`;
    const mine = generation;
    fetch(`api/jobs/${view.id}/peaks`, { credentials: "same-origin" }).then(async (res) => {
      if (!res.ok) throw new Error((await res.json()).error.message);
      const pps = Number(res.headers.get("X-Peaks-Per-Second"));
      const dur = Number(res.headers.get("X-Duration"));
      const buf = await res.arrayBuffer();
      if (mine !== generation) return;
      wave.setPeaks(buf, pps, dur);
      if (!job.audio) job.audio = { duration: dur };
      drawWave();
    }).catch((e) => {
      wave.message = `no waveform: ${e.message}`;
      drawWave();
    });
  } else {
    a.removeAttribute("src");
    wave.message = `${view.audio_note || "no audio for this job"}; the cues can still be edited`;
  }
  if (selected >= 0) follow(frameSeconds(cues[selected].start_frame, clock), frameSeconds(cues[selected].end_frame, clock));
  drawWave();
}

function canvasXY(ev) {
  const r = $("#wave").getBoundingClientRect();
  return [ev.clientX - r.left, ev.clientY - r.top];
}

function onWaveDown(ev) {
  if (!wave) return;
  const [x, y] = canvasXY(ev);
  const vis = visibleCues();
  const edge = wave.edgeAt(x, y, vis);
  if (edge) {
    const c = cues[edge.index];
    drag = { index: edge.index, edge: edge.edge, before: cloneCue(c), moved: false };
    select(edge.index, { scroll: true });
    $("#wave").setPointerCapture(ev.pointerId);
    ev.preventDefault();
    return;
  }
  const i = wave.cueAt(x, vis);
  const t = wave.secondsAt(x);
  audio().currentTime = Math.max(0, t);
  stopAt = null;
  if (i >= 0) select(i, { scroll: true });
  $("#clock").textContent = timecode(frameAt(t, clock), clock);
  drawWave();
}

function onWaveMove(ev) {
  const [x, y] = canvasXY(ev);
  if (!drag) {
    $("#wave").style.cursor = wave && wave.edgeAt(x, y, visibleCues()) ? "ew-resize" : "crosshair";
    return;
  }
  const frame = clampEdge(cues, drag.index, drag.edge, nearestFrame(wave.secondsAt(x), clock), gapFrames());
  const c = cues[drag.index];
  if (drag.edge === "start") c.start_frame = frame; else c.end_frame = frame;
  drag.moved = true;
  updateRowTimes(drag.index);
  drawWave();
}

function onWaveUp() {
  if (!drag) return;
  const d = drag;
  drag = null;
  const c = cues[d.index];
  if (!d.moved || (c.start_frame === d.before.start_frame && c.end_frame === d.before.end_frame)) return;
  const after = cloneCue(c);
  cues[d.index] = d.before;
  commit(d.index, 1, [after], "move edge");
}

function updateRowTimes(i) {
  const row = rowEl(i);
  if (!row) return;
  row.querySelector(".tc.in").textContent = timecode(cues[i].start_frame, clock);
  row.querySelector(".tc.out").textContent = timecode(cues[i].end_frame, clock);
  row.querySelector(".dur").textContent = `${cues[i].end_frame - cues[i].start_frame}f`;
}

function gapFrames() {
  return job.limits[job.source_language]?.min_gap_frames ?? 2;
}

function maxChars(lang) {
  return job.limits[lang]?.max_chars_per_line ?? 42;
}

// ---- edits -----------------------------------------------------------------------------------------------------------
function commit(index, remove, insert, label, meta = null) {
  const t0 = performance.now();
  const op = splice(cues, index, remove, insert.map(cloneCue));
  if (meta) applyMeta(meta.after);
  history.push({ ...op, label, selected, meta: meta && { before: meta.before, after: meta.after, all: meta.all } });
  afterSplice(index, remove, insert.length);
  if (meta && meta.all) refreshRows(0, cues.length);
  select(meta && meta.keep && selected >= 0 ? selected : Math.min(index, cues.length - 1), { scroll: !(meta && meta.keep) });
  markDirty();
  requestAnimationFrame(() => setTimeout(() => perf.edits.push({ label, ms: performance.now() - t0 }), 0));
  status(label);
}

function afterSplice(index, removed, inserted) {
  // findings of cues after the edit shift with them; the edited ones wait for the next check
  const shifted = new Map();
  for (const [k, list] of findings) {
    if (k < index) shifted.set(k, list);
    else if (k >= index + removed) shifted.set(k + inserted - removed, list.map((f) => ({ ...f, cue: f.cue + inserted - removed })));
  }
  if (speakers.length) renderSpeakers();
  findings = shifted;
  const box = $("#cues");
  for (let k = 0; k < removed; k++) box.children[index]?.remove();
  const ref = box.children[index] || null;
  for (let k = 0; k < inserted; k++) box.insertBefore(rowFor(index + k), ref);
  if (inserted !== removed) {
    for (let i = index + inserted; i < cues.length; i++) {
      const row = box.children[i];
      row.dataset.i = i;
      row.querySelector(".num").textContent = i + 1;
    }
  }
  drawWave();
}

function undo() {
  const op = history.undoStack.pop();
  if (!op) return status("nothing to undo");
  const t0 = performance.now();
  const inverse = splice(cues, op.index, op.remove, op.insert);
  if (op.meta) applyMeta(op.meta.before);
  history.redoStack.push({ ...inverse, label: op.label, selected: op.selected,
    meta: op.meta && { before: op.meta.after, after: op.meta.before, all: op.meta.all } });
  afterSplice(op.index, op.remove, op.insert.length);
  if (op.meta && op.meta.all) refreshRows(0, cues.length);
  select(Math.min(op.selected >= 0 ? op.selected : op.index, cues.length - 1), { scroll: true });
  markDirty();
  requestAnimationFrame(() => setTimeout(() => perf.edits.push({ label: "undo", ms: performance.now() - t0 }), 0));
  status(`undid ${op.label}`);
}

function redo() {
  const op = history.redoStack.pop();
  if (!op) return status("nothing to redo");
  const inverse = splice(cues, op.index, op.remove, op.insert);
  if (op.meta) applyMeta(op.meta.before);
  history.undoStack.push({ ...inverse, label: op.label, selected: op.selected,
    meta: op.meta && { before: op.meta.after, after: op.meta.before, all: op.meta.all } });
  afterSplice(op.index, op.remove, op.insert.length);
  if (op.meta && op.meta.all) refreshRows(0, cues.length);
  select(Math.min(op.index, cues.length - 1), { scroll: true });
  markDirty();
  status(`redid ${op.label}`);
}

function nudge(edge, delta) {
  if (selected < 0) return;
  const c = cloneCue(cues[selected]);
  const current = edge === "start" ? c.start_frame : c.end_frame;
  const frame = clampEdge(cues, selected, edge, current + delta, gapFrames());
  if (frame === current) return status(`the ${edge === "start" ? "in" : "out"}-point cannot move further ` +
    `(cues keep a ${gapFrames()}-frame gap and never overlap)`);
  if (edge === "start") c.start_frame = frame; else c.end_frame = frame;
  commit(selected, 1, [c], edge === "start" ? "move in-point" : "move out-point");
}

function setEdgeAtPlayhead(edge) {
  if (selected < 0) return;
  const c = cloneCue(cues[selected]);
  const frame = clampEdge(cues, selected, edge, nearestFrame(audio().currentTime, clock), gapFrames());
  if (edge === "start") c.start_frame = frame; else c.end_frame = frame;
  commit(selected, 1, [c], edge === "start" ? "in-point at playhead" : "out-point at playhead");
}

function splitSelected() {
  if (selected < 0) return;
  const c = cues[selected];
  const src = job.source_language;
  let frame;
  let fraction;
  let leftSrc;
  let rightSrc;
  const match = !c.edited ? matchCue(c.text[src] || "", c) : null;
  const at = match ? match.findIndex((m) => m.w === selectedWord) : -1;
  if (match && at > 0) {
    const m = match[at];
    frame = words[m.w].start_frame;
    const text = c.text[src];
    leftSrc = text.slice(0, m.from);
    rightSrc = text.slice(m.from);
    fraction = m.from / text.length;
  } else {
    const t = audio().currentTime;
    frame = nearestFrame(t, clock);
    if (frame <= c.start_frame || frame >= c.end_frame) frame = Math.round((c.start_frame + c.end_frame) / 2);
    fraction = (frame - c.start_frame) / (c.end_frame - c.start_frame);
    [leftSrc, rightSrc] = splitTextAt(c.text[src] || "", fraction, src);
  }
  const gap = gapFrames();
  const a = cloneCue(c);
  const b = cloneCue(c);
  a.end_frame = frame - gap;
  b.start_frame = frame;
  if (a.end_frame <= a.start_frame || b.end_frame <= b.start_frame) {
    return status("too short to split here: choose a word further inside the cue", "error");
  }
  for (const lang of job.languages) {
    let left;
    let right;
    if (lang === src) [left, right] = [leftSrc, rightSrc];
    else [left, right] = splitTextAt(c.text[lang] || "", fraction, lang);
    a.text[lang] = rebreak(left, lang, maxChars(lang));
    b.text[lang] = rebreak(right, lang, maxChars(lang));
  }
  a.edited = c.edited;
  b.edited = c.edited;
  if (!c.edited) {
    // the source text still reads as its words: keep the colouring when it does
    a.edited = !matchCue(a.text[src], a);
    b.edited = !matchCue(b.text[src], b);
  }
  if (speakers.length) {  // each half is spoken by its own words' speakers (a split at a change of speaker)
    for (const half of [a, b]) {
      const own = speakersInOrder(cueWords(half).map((x) => x.word.speaker));
      if (own.length) half.speakers = own;
    }
  }
  commit(selected, 1, [a, b], "split");
}

function mergeSelected() {
  if (selected < 0 || selected + 1 >= cues.length) return status("select a cue that has a next cue to merge with");
  const a = cues[selected];
  const b = cues[selected + 1];
  const m = cloneCue(a);
  m.end_frame = b.end_frame;
  for (const lang of job.languages) m.text[lang] = rebreak(joinTexts(a.text[lang] || "", b.text[lang] || "", lang), lang, maxChars(lang));
  m.edited = a.edited || b.edited;
  if (!m.edited) m.edited = !matchCue(m.text[job.source_language] || "", m);
  m.speakers = speakersInOrder([...(a.speakers || []), ...(b.speakers || [])]);
  commit(selected, 2, [m], "merge");
}

function startEdit(i, lang) {
  if (i < 0) return;
  finishEdit(true);
  lang = lang || job.source_language;
  const row = rowEl(i);
  const cell = row && row.querySelector(`.text[data-lang="${lang}"]`);
  if (!cell) return;
  const ta = document.createElement("textarea");
  ta.value = cues[i].text[lang] || "";
  ta.rows = Math.max(2, ta.value.split("\n").length);
  ta.className = "editor";
  ta.lang = lang;
  ta.setAttribute("aria-label", `cue ${i + 1} ${lang} text`);
  cell.replaceChildren(ta);
  editing = { index: i, language: lang, textarea: ta, cell };
  ta.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { ev.preventDefault(); finishEdit(false); }
    else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); finishEdit(true); }
    ev.stopPropagation();
  });
  ta.addEventListener("blur", () => finishEdit(true));
  ta.focus();
}

function finishEdit(keep) {
  if (!editing) return;
  const { index, language, textarea, cell } = editing;
  editing = null;
  const value = textarea.value.replace(/\r/g, "").replace(/[ \t]+\n/g, "\n").replace(/\n{2,}/g, "\n").trim();
  const c = cues[index];
  if (keep && value !== (c.text[language] || "")) {
    const n = cloneCue(c);
    n.text[language] = value;
    n.edited = c.edited || language === job.source_language;
    commit(index, 1, [n], "edit text");
  } else {
    renderText(cell, c.text[language] || "", c, language);
  }
  $("#cues").focus({ preventScroll: true });
}

function nextLow(direction) {
  if (!words.length) return;
  const here = selectedWord >= 0 ? selectedWord
    : (selected >= 0 ? cueWords(cues[selected])[0]?.index ?? 0 : 0) - (direction > 0 ? 1 : 0);
  for (let k = here + direction; k >= 0 && k < words.length; k += direction) {
    if (words[k].confidence < threshold) {
      const span = document.querySelector(`#cues .w[data-w="${k}"]`);
      if (!span) continue; // its cue was edited: the word is no longer on screen
      const i = Number(span.closest(".cue").dataset.i);
      select(i, { scroll: false });
      selectWord(k);
      span.scrollIntoView({ block: "center" });
      audio().currentTime = frameSeconds(words[k].start_frame, clock);
      $("#clock").textContent = timecode(words[k].start_frame, clock);
      drawWave();
      return;
    }
  }
  status(direction > 0 ? "no more low-confidence words after this one" : "no low-confidence word before this one");
}

function applyThreshold(value) {
  threshold = value;
  localStorage.setItem("cb-threshold", String(value));
  $("#threshold-value").textContent = value.toFixed(2);
  for (const span of document.querySelectorAll("#cues .w")) {
    const k = Number(span.dataset.w);
    span.className = confidenceClass(words[k].confidence) + (k === selectedWord ? " sel" : "");
  }
  renderSummary();
}

let marksCache = null;
// what a line may start with besides words when the job has speakers: a dash, or a speaker's label
function speakerMarks() {
  if (!speakers.length) return null;
  const key = speakers.map((x) => x.id + "=" + (x.name || "")).join("|");
  if (!marksCache || marksCache.key !== key) {
    const labels = speakers.flatMap((x) => job.languages.map((lang) => speakerLabel(speakerName(x.id), lang)));
    marksCache = { key, re: markPattern(labels) };
  }
  return marksCache.re;
}

// ---- speakers: reassign a cue or a word, rename, add ------------------------------------------------------------------
function speakerName(id) {
  const s = speakers.find((x) => x.id === id);
  return (s && s.name) || defaultSpeakerName(id);
}

function speakerIndex(id) {
  return String(Math.max(0, speakers.findIndex((x) => x.id === id)) % 6);
}

// each row shows its speaker as a button (cheap for thousands of rows); a click makes it the speaker menu
function speakerChip(c, i) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "speaker";
  b.dataset.value = c.speakers.length === 1 ? c.speakers[0] : "__mixed";
  b.textContent = c.speakers.length ? c.speakers.map(speakerName).join(" + ") : "no speaker";
  b.title = "Who speaks this cue: click to give it to another speaker (or press 1-9)";
  b.setAttribute("aria-label", `cue ${i + 1} speaker: ${b.textContent}`);
  return b;
}

function openSpeakerMenu(button) {
  const row = button.closest(".cue");
  const i = Number(row.dataset.i);
  const sel = speakerSelect(cues[i], i);
  button.replaceWith(sel);
  sel.focus();
  try { sel.showPicker(); } catch { /* older browsers: the focused menu opens with a click or Alt+Down */ }
  sel.addEventListener("blur", () => {
    if (sel.isConnected) sel.replaceWith(speakerChip(cues[Number(row.dataset.i)], Number(row.dataset.i)));
  });
}

function speakerSelect(c, i) {
  const sel = document.createElement("select");
  sel.className = "speaker";
  sel.setAttribute("aria-label", `cue ${i + 1} speaker`);
  sel.title = "Who speaks this cue (a two-speaker cue shows both)";
  const add = (value, text) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    sel.append(o);
    return o;
  };
  if (c.speakers.length !== 1) add("__mixed", c.speakers.length ? c.speakers.map(speakerName).join(" + ") : "no speaker");
  for (const s of speakers) add(s.id, speakerName(s.id));
  add("__new", "New speaker…");
  sel.value = c.speakers.length === 1 ? c.speakers[0] : "__mixed";
  return sel;
}

function speakerState() {
  return speakers.map((x) => ({ ...x }));
}

// a new speaker ("S<n>", unnamed: shown as "Speaker n") added to `speakers`; returns its id
function addSpeakerMeta() {
  const id = newSpeakerId(speakers);
  speakers = [...speakers, { id }];
  return id;
}

function wordState(list) {
  const out = {};
  for (const w of list) out[w.orig] = w.speaker;
  return out;
}

function applyMeta(state) {
  if (state.speakers) speakers = state.speakers.map((x) => ({ ...x }));
  if (state.words) for (const [orig, id] of Object.entries(state.words)) {
    const w = words.find((x) => x.orig === Number(orig));
    if (w) w.speaker = id;
  }
  renderSpeakers();
  showWordSpeaker();
}

function labelsOf(ids, lang) {
  return ids.map((id) => speakerLabel(speakerName(id), lang));
}

/** Cue i (all of it, words included) to speaker `id`; null: a new speaker. Name labels follow. */
function reassignCue(i, id) {
  const before = { speakers: speakerState(), words: wordState(cueWords(cues[i]).map((x) => x.word)) };
  if (id === null) id = addSpeakerMeta();
  const c = cloneCue(cues[i]);
  const old = c.speakers;
  if (old.length === 1 && old[0] === id) return;
  if (job.limits[job.source_language]?.speaker_marks === "label") {
    for (const lang of job.languages) c.text[lang] = relabel(c.text[lang] || "", labelsOf(old, lang), speakerLabel(speakerName(id), lang));
  }
  c.speakers = [id];
  const after = { speakers: speakerState(), words: {} };
  for (const x of cueWords(c)) after.words[x.word.orig] = id;
  speakers = before.speakers;  // commit applies `after`
  commit(i, 1, [c], `cue ${i + 1} to ${speakerName(id) || id}`, { before, after });
  status(`cue ${i + 1} is ${speakerNameIn(after.speakers, id)}'s`);
}

function speakerNameIn(list, id) {
  const s = list.find((x) => x.id === id);
  return (s && s.name) || defaultSpeakerName(id);
}

/** Word k to speaker `id`: its cue's speakers become its words' speakers (two in one cue must then take the
 * two-speaker form or be split at the word, as the findings say). */
function reassignWord(k, id) {
  const w = words[k];
  if (w.speaker === id) return status(`"${w.text.trim()}" is ${speakerName(id)}'s already`);
  const i = cues.findIndex((c) => c.start_frame <= w.start_frame && w.start_frame < c.end_frame);
  const before = { speakers: speakerState(), words: { [w.orig]: w.speaker } };
  const afterSpeakers = speakerState();
  if (!speakers.find((x) => x.id === id)) afterSpeakers.push({ id });
  const after = { speakers: afterSpeakers, words: { [w.orig]: id } };
  if (i < 0) return commit(0, 0, [], `word to ${id}`, { before, after, keep: true });
  const c = cloneCue(cues[i]);
  const own = speakersInOrder(cueWords(c).map((x) => (x.index === k ? id : x.word.speaker)));
  if (own.length) c.speakers = own;
  speakers = before.speakers;
  commit(i, 1, [c], `word "${w.text.trim()}" to ${speakerNameIn(afterSpeakers, id)}`, { before, after });
  selectWord(k);
}

/** Rename speaker `id`: the list, the selects and (with name labels) every label of that speaker. */
function renameSpeaker(id, name) {
  name = name.replace(/\s+/g, " ").trim().slice(0, 60);
  const before = { speakers: speakerState() };
  const oldName = speakerName(id);
  const afterSpeakers = speakerState().map((x) => (x.id === id ? (name ? { id, name } : { id }) : x));
  const after = { speakers: afterSpeakers };
  const newName = speakerNameIn(afterSpeakers, id);
  if (newName === oldName) return renderSpeakers();
  let lo = -1;
  let hi = -1;
  const changed = [];
  if (job.limits[job.source_language]?.speaker_marks === "label") {
    cues.forEach((c, i) => {
      if (!c.speakers.includes(id)) return;
      const n = cloneCue(c);
      for (const lang of job.languages) n.text[lang] = relabel(n.text[lang] || "", [speakerLabel(oldName, lang)], speakerLabel(newName, lang));
      if (JSON.stringify(n.text) !== JSON.stringify(c.text)) {
        if (lo < 0) lo = i;
        hi = i;
        changed.push([i, n]);
      }
    });
  }
  const insert = lo < 0 ? [] : cues.slice(lo, hi + 1).map(cloneCue);
  for (const [i, n] of changed) insert[i - lo] = n;
  // every row's select shows the new name (all), and the selection stays where it was (keep)
  commit(lo < 0 ? 0 : lo, lo < 0 ? 0 : hi - lo + 1, insert, `${oldName} renamed ${newName}`,
    { before, after, all: true, keep: true });
}

function renderSpeakers() {
  const box = $("#speakers");
  if (!job || !speakers.length) {
    box.hidden = true;
    $("#word-speaker-label").hidden = true;
    return;
  }
  box.hidden = false;
  $("#word-speaker-label").hidden = false;
  const counts = new Map();
  for (const c of cues) for (const id of c.speakers || []) counts.set(id, (counts.get(id) || 0) + 1);
  const frag = document.createDocumentFragment();
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = "Speakers";
  frag.append(title);
  speakers.forEach((s, k) => {
    const label = document.createElement("label");
    label.className = "speaker-name";
    label.dataset.speaker = String(k % 6);
    const input = document.createElement("input");
    input.type = "text";
    input.value = s.name || "";
    input.placeholder = defaultSpeakerName(s.id);
    input.dataset.speaker = s.id;
    input.maxLength = 60;
    input.setAttribute("aria-label", `name of ${s.id}`);
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = `${counts.get(s.id) || 0} cues`;
    label.append(input, count);
    frag.append(label);
  });
  box.replaceChildren(frag);
  const sel = $("#word-speaker");
  const keep = sel.value;
  sel.replaceChildren();
  const none = document.createElement("option");
  none.value = "";
  none.textContent = "select a word";
  sel.append(none);
  for (const s of speakers) {
    const o = document.createElement("option");
    o.value = s.id;
    o.textContent = speakerName(s.id);
    sel.append(o);
  }
  const o = document.createElement("option");
  o.value = "__new";
  o.textContent = "New speaker…";
  sel.append(o);
  sel.value = keep;
  showWordSpeaker();
}

function showWordSpeaker() {
  const sel = $("#word-speaker");
  if (!sel || !speakers.length) return;
  const w = selectedWord >= 0 ? words[selectedWord] : null;
  sel.disabled = !w;
  sel.value = (w && w.speaker) || "";
}

// ---- draft autosave, findings, approval -------------------------------------------------------------------------------
function draftBody() {
  const body = { base_version: job.version, cues: cues.map((c) => ({ start_frame: c.start_frame, end_frame: c.end_frame, text: c.text })) };
  if (speakers.length) {
    body.cues.forEach((c, i) => (c.speakers = cues[i].speakers));
    body.speakers = speakers;
    body.word_speakers = {};
    for (const w of words) if (w.speaker && w.speaker !== w.engineSpeaker) body.word_speakers[w.orig] = w.speaker;
  }
  return body;
}

function markDirty() {
  dirty = true;
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveDraft, 700);
}

async function saveDraft() {
  clearTimeout(saveTimer);
  if (!dirty || !job) return;
  if (saving) await saving.catch(() => {});
  dirty = false;
  const id = job.id;
  const body = draftBody();
  saving = api("PUT", `api/jobs/${id}/draft`, body);
  try {
    const res = await saving;
    if (!job || job.id !== id) return;
    if (dirty) return; // edited again meanwhile: the next save brings fresh findings
    const before = findings;
    setFindings(res.findings);
    refreshChangedFindings(before);
    renderSummary();
    status(`draft saved ${new Date(res.saved_at).toLocaleTimeString()}`);
    $("#discard").hidden = false;
  } catch (e) {
    dirty = true;
    status(`draft not saved: ${e.message}`, "error");
  } finally {
    saving = null;
  }
}

function refreshChangedFindings(before) {
  const key = (list) => (list || []).map((f) => f.language + f.rule + f.message).join("|");
  const changed = [];
  const all = new Set([...before.keys(), ...findings.keys()]);
  for (const i of all) if (key(before.get(i)) !== key(findings.get(i))) changed.push(i);
  for (const i of changed) if (i < cues.length) refreshRows(i, i + 1);
  drawWave();
}

async function discardDraft() {
  if (!job) return;
  if (!window.confirm("Discard the draft and go back to " + (job.version ? `version ${job.version}` : "the engine's captions") + "?")) return;
  clearTimeout(saveTimer);
  dirty = false;
  try {
    await api("DELETE", `api/jobs/${job.id}/draft`);
    openJob(job.id);
  } catch (e) {
    status(`draft not discarded: ${e.message}`, "error");
  }
}

async function approve() {
  finishEdit(true);
  if (!job) return;
  status("checking and writing every format…");
  $("#approve").disabled = true;
  try {
    dirty = true;
    await saveDraft();
    const res = await api("POST", `api/jobs/${job.id}/approve`, draftBody());
    job.version = res.version;
    $("#discard").hidden = true;
    showVersion(res);
    status(`version ${res.version} approved: ${res.files.length} files written`, "ok");
    $("#jobtitle").textContent = $("#jobtitle").textContent.replace(/ · (engine output|version \d+)( · draft)?$/, ` · version ${res.version}`);
  } catch (e) {
    if (e.data && e.data.error && e.data.error.details && e.data.error.details.findings) {
      const hard = e.data.error.details.findings;
      const before = findings;
      const merged = new Map(findings);
      for (const f of hard) {
        const list = (merged.get(f.cue) || []).filter((x) => !(x.rule === f.rule && x.language === f.language));
        list.unshift(f);
        merged.set(f.cue, list);
      }
      findings = merged;
      refreshChangedFindings(before);
      renderSummary();
      if (hard.length) select(hard[0].cue, { scroll: true });
    }
    status(`not approved: ${e.message}`, "error");
  } finally {
    $("#approve").disabled = false;
  }
}

function showVersion(res) {
  const box = $("#versions");
  box.replaceChildren();
  const h = document.createElement("strong");
  h.textContent = `Version ${res.version} approved`;
  box.append(h, document.createTextNode(" — files: "));
  res.files.forEach((name, k) => {
    const a = document.createElement("a");
    a.href = `api/jobs/${job.id}/versions/${res.version}/files/${encodeURIComponent(name)}`;
    a.textContent = name;
    a.download = name;
    if (k) box.append(document.createTextNode(", "));
    box.append(a);
  });
  if (res.exported_to) box.append(document.createTextNode(` (also written to ${res.exported_to})`));
  if (res.warnings && res.warnings.length) box.append(document.createTextNode(` — ${res.warnings.join("; ")}`));
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "×";
  close.title = "Close";
  close.addEventListener("click", () => {
    box.hidden = true;
    fitVersionsBox();
  });
  box.append(close);
  box.hidden = false;
  fitVersionsBox();
}

// The approval box floats over the bottom of the cue list: the list gets room to scroll its last cue above it.
function fitVersionsBox() {
  const box = $("#versions");
  $("#cues").style.paddingBottom = box.hidden ? "" : `${box.offsetHeight + 32}px`;
}

// ---- wiring ----------------------------------------------------------------------------------------------------------
function onKey(ev) {
  if (!job || $("#job-view").hidden || editing) return;
  const tag = (ev.target.tagName || "").toLowerCase();
  if (tag === "input" && ev.target.type !== "range" && ev.target.type !== "checkbox") return;
  if (tag === "select") return;
  const key = ev.key;
  const ctrl = ev.ctrlKey || ev.metaKey;
  let handled = true;
  if (ctrl && (key === "z" || key === "Z")) ev.shiftKey ? redo() : undo();
  else if (ctrl && (key === "y" || key === "Y")) redo();
  else if (ctrl) handled = false;
  else if (ev.altKey && (key === "ArrowLeft" || key === "ArrowRight")) nudge(ev.shiftKey ? "end" : "start", key === "ArrowLeft" ? -1 : 1);
  else if (/^Digit[1-9]$/.test(ev.code || "") && speakers.length && !ev.altKey) {
    // 1-9: the selected cue to speaker n; Shift+1-9: the selected word
    const who = speakers[Number(ev.code.slice(5)) - 1];
    if (!who) status(`there is no speaker ${ev.code.slice(5)} (${speakers.length} speakers)`, "error");
    else if (ev.shiftKey) { if (selectedWord >= 0) reassignWord(selectedWord, who.id); else status("select a word first"); }
    else if (selected >= 0) reassignCue(selected, who.id);
  }
  else if (key === " ") togglePlay();
  else if (key === "Enter") playCue();
  else if (key === "ArrowDown") select(Math.min(cues.length - 1, selected + 1), { seek: true });
  else if (key === "ArrowUp") select(Math.max(0, selected - 1), { seek: true });
  else if (key === "n" || key === "N") nextLow(1);
  else if (key === "p" || key === "P") nextLow(-1);
  else if (key === "s" || key === "S") splitSelected();
  else if (key === "m" || key === "M") mergeSelected();
  else if (key === "e" || key === "E" || key === "F2") startEdit(selected);
  else if (key === "l" || key === "L") toggleLoop();
  else if (key === "i" || key === "I") setEdgeAtPlayhead("start");
  else if (key === "o" || key === "O") setEdgeAtPlayhead("end");
  else if (key === "+" || key === "=") zoom(0.5);
  else if (key === "-") zoom(2);
  else handled = false;
  if (handled) ev.preventDefault();
}

function toggleLoop(force) {
  const on = force ?? loopCue < 0;
  loopCue = on ? selected : -1;
  $("#loop").checked = on;
  if (on) playCue(selected);
}

function zoom(factor) {
  if (!wave) return;
  const centre = wave.viewStart + wave.viewSeconds / 2;
  wave.secondsPerPixel = Math.max(0.0005, Math.min(duration() / wave.width * 1.05, wave.secondsPerPixel * factor));
  wave.viewStart = centre - wave.viewSeconds / 2;
  wave.clampView(duration());
  syncScroll();
  drawWave();
}

function init() {
  window.addEventListener("hashchange", route);
  const saved = Number(localStorage.getItem("cb-queue-threshold") ?? "0.5");
  $("#queue-threshold").value = Number.isFinite(saved) ? saved : 0.5;
  $("#queue-threshold").addEventListener("input", () => showQueue().catch((e) => status(e.message, "error")));
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", () => { if (wave) { wave.resize(); drawWave(); } });
  window.addEventListener("beforeunload", () => { if (dirty) saveDraft(); });
  $("#play").addEventListener("click", togglePlay);
  $("#play-cue").addEventListener("click", () => playCue());
  $("#loop").addEventListener("change", (ev) => toggleLoop(ev.target.checked));
  $("#zoom-in").addEventListener("click", () => zoom(0.5));
  $("#zoom-out").addEventListener("click", () => zoom(2));
  $("#split").addEventListener("click", splitSelected);
  $("#merge").addEventListener("click", mergeSelected);
  $("#undo").addEventListener("click", undo);
  $("#redo").addEventListener("click", redo);
  $("#next-low").addEventListener("click", () => nextLow(1));
  $("#approve").addEventListener("click", approve);
  window.addEventListener("resize", fitVersionsBox);
  $("#word-speaker").addEventListener("change", (ev) => {
    const value = ev.target.value;
    if (selectedWord >= 0 && value) reassignWord(selectedWord, value === "__new" ? newSpeakerId(speakers) : value);
  });
  $("#speakers").addEventListener("change", (ev) => {
    const input = ev.target.closest("input[data-speaker]");
    if (input) renameSpeaker(input.dataset.speaker, input.value);
  });
  $("#speakers").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && ev.target.tagName === "INPUT") ev.target.blur();
    ev.stopPropagation();
  });
  $("#discard").addEventListener("click", discardDraft);
  $("#threshold").addEventListener("input", (ev) => applyThreshold(Number(ev.target.value)));
  $("#wave-scroll").addEventListener("input", (ev) => {
    if (!wave) return;
    wave.viewStart = (Number(ev.target.value) / 1000) * Math.max(0, duration() - wave.viewSeconds);
    drawWave();
  });
  const canvas = $("#wave");
  canvas.addEventListener("pointerdown", onWaveDown);
  canvas.addEventListener("pointermove", onWaveMove);
  canvas.addEventListener("pointerup", onWaveUp);
  canvas.addEventListener("pointercancel", onWaveUp);
  canvas.addEventListener("dblclick", (ev) => {  // play from here
    if (!wave) return;
    const [x] = canvasXY(ev);
    audio().currentTime = Math.max(0, wave.secondsAt(x));
    stopAt = null;
    audio().play().catch((e) => status(`cannot play: ${e.message}`, "error"));
  });
  canvas.addEventListener("wheel", (ev) => {
    if (!wave) return;
    ev.preventDefault();
    if (ev.ctrlKey) zoom(ev.deltaY > 0 ? 1.25 : 0.8);
    else {
      wave.viewStart += (ev.deltaX || ev.deltaY) * wave.secondsPerPixel;
      wave.clampView(duration());
      syncScroll();
      drawWave();
    }
  }, { passive: false });
  const list = $("#cues");
  list.addEventListener("change", (ev) => {
    const sel = ev.target.closest("select.speaker");
    if (!sel) return;
    const i = Number(sel.closest(".cue").dataset.i);
    if (sel.value === "__new") reassignCue(i, null);
    else if (!sel.value.startsWith("__")) reassignCue(i, sel.value);
  });
  list.addEventListener("click", (ev) => {
    const row = ev.target.closest(".cue");
    if (!row || ev.target.tagName === "TEXTAREA" || ev.target.tagName === "SELECT") return;
    const chip = ev.target.closest("button.speaker");
    if (chip) {
      if (Number(row.dataset.i) !== selected) select(Number(row.dataset.i), { scroll: false });
      return openSpeakerMenu(chip);
    }
    const i = Number(row.dataset.i);
    const span = ev.target.closest(".w");
    if (span) {
      select(i, { scroll: false });
      selectWord(Number(span.dataset.w));
      audio().currentTime = frameSeconds(words[Number(span.dataset.w)].start_frame, clock);
      drawWave();
    } else if (i !== selected) {
      select(i, { scroll: false, seek: true });
    }
  });
  list.addEventListener("mouseover", (ev) => {
    const span = ev.target.closest && ev.target.closest(".w");
    if (span && !span.title) {
      const w = words[Number(span.dataset.w)];
      span.title = `${Math.round(w.confidence * 100)}% confidence · ${timecode(w.start_frame, clock)}`;
    }
  });
  list.addEventListener("dblclick", (ev) => {
    const cell = ev.target.closest(".text");
    const row = ev.target.closest(".cue");
    if (cell && row) startEdit(Number(row.dataset.i), cell.dataset.lang);
  });
  audio().addEventListener("error", () => {
    if (audio().getAttribute("src")) status("the audio did not load: " + (audio().error?.message || "unknown error"), "error");
  });
  requestAnimationFrame(tick);
  route();
}

// Exposed for tests and the benchmark: the page's own timecode function and state.
window.__cbReview = {
  timecode: (f, tl) => timecode(f, makeClock(tl)),
  state: () => ({ cues, selected, selectedWord, history: history.undoStack.length, dirty, speakers,
    wordSpeakers: Object.fromEntries(words.filter((w) => w.speaker !== w.engineSpeaker).map((w) => [w.orig, w.speaker])) }),
  // where a cue's edge is drawn, in CSS pixels from the canvas' left, or null when off screen
  edgeX: (i, edge) => {
    if (!wave || !cues[i]) return null;
    const x = wave.xOf(frameSeconds(edge === "start" ? cues[i].start_frame : cues[i].end_frame, clock));
    return x >= 0 && x <= wave.width ? x : null;
  },
};
init();
