// Runs the panel's Review captions / Update captions (js/review.js under Node) against the real ExtendScript files
// (jsx/host.jsx + jsx/review.jsx) in a vm context with a fake `app` following Adobe's documented API: ticks
// (254016000000 per second), sequence.timebase/zeroPoint, project.sequences (numSequences), project.importFiles,
// rootItem.children with numItems, createCaptionTrack, ProjectItem.name, Sequence.exportAsProject ("a new project
// containing only the given sequence and its constituent media": gzip-compressed XML, as tests/premiere/harness.js
// models it). argv[2]: JSON config {action: "review"|"update", rate, start_frame, display_format, name, output_dir,
// refuse_captions, caption_track_silently_missing, no_export_as_project}. Prints a JSON report on stdout.
"use strict";
const fs = require("fs");
const path = require("path");
const os = require("os");
const http = require("http");
const vm = require("vm");
const zlib = require("zlib");

const cfg = JSON.parse(process.argv[2]);
const root = path.resolve(__dirname, "..", "..");
const TICKS = 254016000000;
const calls = { captionTracks: [], imports: [], opened: [], projectExports: [] };
const [num, den] = cfg.rate.split("/").map(Number).concat([1]).slice(0, 2);
const ticksPerFrame = TICKS * den / num;
const children = [];
Object.defineProperty(children, "numItems", { get() { return children.length; } });
const app = {
  project: {
    activeSequence: {
      name: cfg.name, sequenceID: "seq-1", timebase: String(ticksPerFrame),
      zeroPoint: String(cfg.start_frame * ticksPerFrame),
      getSettings() { return { videoDisplayFormat: cfg.display_format }; },
      createCaptionTrack(item, startAtSeconds, format) {
        calls.captionTracks.push({ name: item.name, path: item.getMediaPath(), start: startAtSeconds, format });
        if (cfg.refuse_captions) return false;
        if (!cfg.caption_track_silently_missing) placed.push(item.getMediaPath());
        return true;
      },
    },
    rootItem: { children },
    importFiles(paths) {
      calls.imports.push(paths.slice());
      for (const p of paths) children.push({ name: path.basename(p), getMediaPath() { return p; } });
      return true;
    },
  },
};
const placed = []; // fake-internal: the SRT behind each caption track made (the documented DOM cannot list them)
const sequence = app.project.activeSequence;
app.project.sequences = [sequence];
Object.defineProperty(app.project.sequences, "numSequences", { get() { return 1; } });
if (!cfg.no_export_as_project) {
  sequence.exportAsProject = function (p) {
    calls.projectExports.push(p);
    const esc = (t) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const media = placed.map((m) => `<Media><FilePath>${esc(m)}</FilePath></Media>` +
      `<CaptionTrack>${fs.readFileSync(m, "utf8").split("\n\n").map((b) => `<Caption>${esc(b)}</Caption>`)
        .join("")}</CaptionTrack>`).join("");
    fs.writeFileSync(p, zlib.gzipSync(`<?xml version="1.0"?><PremiereData><Sequence ObjectUID="seq-1">` +
                                      `<Name>${sequence.name}</Name></Sequence>${media}</PremiereData>`));
    return true;
  };
}
function File(p) { this.path = p; this.exists = fs.existsSync(p); this.length = this.exists ? fs.statSync(p).size : 0; }
const sandbox = { app, File, Sequence: { CAPTION_FORMAT_SUBTITLE: 6 } };
const context = vm.createContext(sandbox);
for (const file of ["host.jsx", "review.jsx"]) {
  vm.runInContext(fs.readFileSync(path.join(root, "plugin", "premiere", "jsx", file), "utf8"), context,
                  { filename: file });
}
const review = require(path.join(root, "plugin", "premiere", "js", "review.js"));
const deps = {
  evalScript: (code) => Promise.resolve(String(vm.runInContext(code, context))),
  fs, path, os, http, zlib, env: process.env, platform: process.platform,
  openUrl: (url) => calls.opened.push(url),
};
const run = cfg.action === "review" ? review.reviewCaptions(deps) : review.updateCaptions(deps, { output_dir: cfg.output_dir,
                                                           speaker_layout: cfg.speaker_layout });
run.then((result) => ({ result }), (err) => ({ error: { message: err.message, user: !!err.user } }))
  .then((out) => {
    out.calls = calls;
    out.items = children.map((c) => c.name);
    out.leftovers = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("captionbridge-"));
    process.stdout.write(JSON.stringify(out));
  });
