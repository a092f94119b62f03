// Runs the panel's Review captions / Update captions (js/review.js under Node) against the real ExtendScript files
// (jsx/host.jsx + jsx/review.jsx) in a vm context with a fake `app` following Adobe's documented API: ticks
// (254016000000 per second), sequence.timebase/zeroPoint, project.importFiles, rootItem.children with numItems,
// createCaptionTrack, ProjectItem.name. argv[2]: JSON config {action: "review"|"update", rate, start_frame,
// display_format, name, output_dir}. Prints a JSON report on stdout.
"use strict";
const fs = require("fs");
const path = require("path");
const os = require("os");
const http = require("http");
const vm = require("vm");

const cfg = JSON.parse(process.argv[2]);
const root = path.resolve(__dirname, "..", "..");
const TICKS = 254016000000;
const calls = { captionTracks: [], imports: [], opened: [] };
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
        return cfg.refuse_captions ? false : true;
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
const sandbox = { app, Sequence: { CAPTION_FORMAT_SUBTITLE: 6 } };
const context = vm.createContext(sandbox);
for (const file of ["host.jsx", "review.jsx"]) {
  vm.runInContext(fs.readFileSync(path.join(root, "plugin", "premiere", "jsx", file), "utf8"), context,
                  { filename: file });
}
const review = require(path.join(root, "plugin", "premiere", "js", "review.js"));
const deps = {
  evalScript: (code) => Promise.resolve(String(vm.runInContext(code, context))),
  fs, path, os, http, env: process.env, platform: process.platform,
  openUrl: (url) => calls.opened.push(url),
};
const run = cfg.action === "review" ? review.reviewCaptions(deps) : review.updateCaptions(deps, { output_dir: cfg.output_dir,
                                                           speaker_layout: cfg.speaker_layout });
run.then((result) => ({ result }), (err) => ({ error: { message: err.message, user: !!err.user } }))
  .then((out) => {
    out.calls = calls;
    out.items = children.map((c) => c.name);
    process.stdout.write(JSON.stringify(out));
  });
