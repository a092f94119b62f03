// Runs the Premiere panel (js/panel.js + js/core.js under Node) against the real ExtendScript host file
// (jsx/host.jsx) loaded in a vm context with a fake `app` that follows Adobe's documented scripting DOM: ticks
// (254016000000 per second), sequence.timebase (ticks per frame, a string), zeroPoint (start in ticks),
// sequenceID, getSettings().videoDisplayFormat, exportAsFinalCutProXML, exportAsProject, project.sequences
// (numSequences), project.openSequence(id), project.importFiles, rootItem.children with numItems,
// createCaptionTrack(projectItem, startAtTime, captionFormat). evalScript behaves like CEP's: asynchronous, and an
// uncaught ExtendScript exception answers the string "EvalScript error.".
// argv[2]: JSON config. Prints a JSON report on stdout.
"use strict";
const fs = require("fs");
const path = require("path");
const os = require("os");
const http = require("http");
const vm = require("vm");
const zlib = require("zlib");

const cfg = JSON.parse(process.argv[2]);
let flags = cfg; // per run: cfg, then each of cfg.runs (the same Premiere, captioned again)
const root = path.resolve(__dirname, "..", "..");
const TICKS = 254016000000;

const calls = { captionTracks: [], imports: [], exports: [], projectExports: [], opened: [], evalScripts: [] };

function parseRate(rate) {
  const [num, den] = String(rate).split("/").map(Number).concat([1]).slice(0, 2);
  return [num, den];
}

function makeSequence(id, name, rate, startFrame, startTc, df, displayFormat) {
  let [num, den] = parseRate(rate);
  const seq = {
    name,
    sequenceID: id,
    timebase: String(TICKS * den / num),
    zeroPoint: String(BigInt(startFrame) * BigInt(TICKS) * BigInt(den) / BigInt(num)), // exact, past 2^53
    captionTracks: [], // fake-internal: what createCaptionTrack made (the documented DOM cannot list it)
    getSettings() { return { videoDisplayFormat: displayFormat }; },
    exportAsFinalCutProXML(p, suppress) {
      calls.exports.push({ sequence: id, path: p, suppress });
      if (cfg.export_fails) return false;
      const nominal = Math.round(num / den);
      fs.writeFileSync(p, `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xmeml>
<xmeml version="4"><sequence id="${id}"><name>${this.name}</name><duration>${nominal * 600}</duration>
<rate><timebase>${nominal}</timebase><ntsc>${den === 1001 ? "TRUE" : "FALSE"}</ntsc></rate>
<timecode><rate><timebase>${nominal}</timebase><ntsc>${den === 1001 ? "TRUE" : "FALSE"}</ntsc></rate>
<string>${startTc}</string><frame>${startFrame}</frame><displayformat>${df ? "DF" : "NDF"}</displayformat></timecode>
<media><video><track/></video><audio><track/></audio></media></sequence></xmeml>
`);
      return true;
    },
    createCaptionTrack(item, startAtSeconds, format) {
      calls.captionTracks.push({ sequence: id, name: item.name, path: item.getMediaPath(), start: startAtSeconds,
                                 format });
      if (cfg.throw_on_caption) throw new Error("The caption file could not be parsed");
      if (cfg.refuse_captions) return false;
      if (!flags.caption_track_silently_missing) seq.captionTracks.push(item.getMediaPath());
      return true;
    },
    _setRate(newRate) { [num, den] = parseRate(newRate); seq.timebase = String(TICKS * den / num); },
  };
  if (!cfg.no_export_as_project) {
    // A project holding only this sequence and the media it uses (gzip-compressed XML, like a .prproj).
    seq.exportAsProject = function (p) {
      calls.projectExports.push({ sequence: id, path: p });
      const esc = (t) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
      const media = seq.captionTracks.map((m) => `<Media><FilePath>${esc(m)}</FilePath></Media>` +
        `<CaptionTrack>${fs.readFileSync(m, "utf8").split("\n\n").map((b) => `<Caption>${esc(b)}</Caption>`)
          .join("")}</CaptionTrack>`).join("");
      fs.writeFileSync(p, zlib.gzipSync(`<?xml version="1.0"?><PremiereData><Sequence ObjectUID="${id}">` +
                                        `<Name>${seq.name}</Name></Sequence>${media}</PremiereData>`));
      return true;
    };
  }
  return seq;
}

const main = makeSequence("seq-1", cfg.name || "Sequence 01", cfg.rate, cfg.start_frame, cfg.start_tc, cfg.df,
                          cfg.display_format);
const other = makeSequence("seq-2", "Other sequence", "25", 0, "00:00:00:00", false, 101);
const sequences = [main, other];
Object.defineProperty(sequences, "numSequences", { get() { return sequences.length; } });

const children = [];
Object.defineProperty(children, "numItems", { get() { return children.length; } });
const app = {
  project: {
    activeSequence: cfg.no_sequence ? null : main,
    sequences,
    rootItem: { children },
    openSequence(id) {
      calls.opened.push(id);
      const seq = sequences.find((s) => s.sequenceID === id);
      if (!seq) return false;
      app.project.activeSequence = seq;
      return true;
    },
    importFiles(paths, suppressUI, bin, asNumbered) {
      calls.imports.push(paths.slice());
      if (cfg.import_fails) return false;
      for (const p of paths) children.push({ name: path.basename(p), getMediaPath() { return p; } });
      return true;
    },
  },
};

function File(p) { this.path = p; this.exists = fs.existsSync(p); this.length = this.exists ? fs.statSync(p).size : 0; }

const sandbox = { app, File, Sequence: { CAPTION_FORMAT_608: 0, CAPTION_FORMAT_708: 1, CAPTION_FORMAT_TELETEXT: 2,
                                         CAPTION_FORMAT_OPEN_EBU: 3, CAPTION_FORMAT_OP42: 4, CAPTION_FORMAT_OP47: 5,
                                         CAPTION_FORMAT_SUBTITLE: 6 } };
const context = vm.createContext(sandbox);
if (cfg.es3_no_json) vm.runInContext("JSON = undefined;", context);
vm.runInContext(fs.readFileSync(path.join(root, "plugin", "premiere", "jsx", "host.jsx"), "utf8"), context,
                { filename: "host.jsx" });

// CEP's evalScript: asynchronous; an uncaught exception answers "EvalScript error." instead of a value.
function evalScript(code) {
  calls.evalScripts.push(code.slice(0, 40));
  return new Promise((resolve) => setImmediate(() => {
    if (cfg.host_not_loaded || (cfg.eval_error_on && code.startsWith(cfg.eval_error_on))) {
      return resolve("EvalScript error.");
    }
    try { resolve(String(vm.runInContext(code, context))); } catch (e) { resolve("EvalScript error."); }
  }));
}

const panel = require(path.join(root, "plugin", "premiere", "js", "panel.js"));
const core = require(path.join(root, "plugin", "premiere", "js", "core.js"));
const deps = { host: panel.cepHost(evalScript), fs, path, os, http, zlib, env: process.env,
               platform: process.platform };
const cancel = core.canceller();
const OWN_STAGES = new Set(["checking the engine", "exporting sequence", "adding caption tracks"]);
let duringJobDone = false;
const progress = [];
const started = Date.now();
if (cfg.cancel_after_ms) setTimeout(() => { progress.push(["CANCEL", Date.now() - started]); cancel.cancel(); },
                                    cfg.cancel_after_ms);

function onProgress(stage, pct) {
  progress.push([stage, pct]);
  if (OWN_STAGES.has(stage)) return;
  // the engine is working on the job: the user acts in Premiere meanwhile
  if (!duringJobDone) {
    duringJobDone = true;
    if (cfg.during_job === "switch") app.project.activeSequence = other;
    if (cfg.during_job === "delete") { sequences.splice(0, 1); app.project.activeSequence = other; }
    if (cfg.during_job === "change_rate") main._setRate("30000/1001");
  }
  if (cfg.cancel) cancel.cancel();
}

async function runAll() {
  const runs = cfg.runs || [{}];
  const results = [];
  for (const overrides of runs) {
    flags = Object.assign({}, cfg, overrides);
    const options = Object.assign({ poll_ms: 5, output_dir: cfg.output_dir, timeouts: cfg.timeouts, cancel },
                                  cfg.options || {});
    results.push(await panel.core.generateCaptions(deps, options, onProgress)
      .then((result) => ({ result }), (err) => ({ error: { message: err.message, user: !!err.user } })));
  }
  const out = Object.assign({}, results[results.length - 1], { runs: results });
  out.calls = calls;
  out.progress = progress;
  out.elapsed_ms = Date.now() - started;
  out.active_sequence = app.project.activeSequence ? app.project.activeSequence.sequenceID : null;
  out.caption_tracks = Object.fromEntries(sequences.map((s) => [s.sequenceID, s.captionTracks]));
  out.temp_left = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("captionbridge-"));
  const info = vm.runInContext("cb_sequenceInfo()", context);
  try { out.info = JSON.parse(info); } catch (e) { out.info = info; }
  process.stdout.write(JSON.stringify(out));
  process.exit(0); // a stuck test server may hold sockets open
}
runAll();
