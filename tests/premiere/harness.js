// Runs the Premiere panel (js/panel.js under Node) against the real ExtendScript host file (jsx/host.jsx) loaded
// in a vm context with a fake `app` that follows Adobe's documented API: ticks (254016000000 per second),
// sequence.timebase (ticks per frame, a string), zeroPoint (start in ticks), getSettings().videoDisplayFormat,
// exportAsFinalCutProXML, project.importFiles, rootItem.children with numItems, createCaptionTrack.
// argv[2]: JSON config. Prints a JSON report on stdout.
"use strict";
const fs = require("fs");
const path = require("path");
const os = require("os");
const http = require("http");
const vm = require("vm");

const cfg = JSON.parse(process.argv[2]);
const root = path.resolve(__dirname, "..", "..");
const TICKS = 254016000000;

const calls = { captionTracks: [], imports: [], exports: [] };

function makeSequence() {
  const [num, den] = cfg.rate.split("/").map(Number).concat([1]).slice(0, 2);
  const ticksPerFrame = TICKS * den / num;
  return {
    name: cfg.name || "Sequence 01",
    sequenceID: "seq-1",
    timebase: String(ticksPerFrame),
    zeroPoint: String(cfg.start_frame * ticksPerFrame),
    getSettings() { return { videoDisplayFormat: cfg.display_format }; },
    exportAsFinalCutProXML(p, suppress) {
      calls.exports.push({ path: p, suppress });
      if (cfg.export_fails) return false;
      const nominal = Math.round(num / den);
      fs.writeFileSync(p, `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xmeml>
<xmeml version="4"><sequence id="seq-1"><name>${this.name}</name><duration>${nominal * 600}</duration>
<rate><timebase>${nominal}</timebase><ntsc>${den === 1001 ? "TRUE" : "FALSE"}</ntsc></rate>
<timecode><rate><timebase>${nominal}</timebase><ntsc>${den === 1001 ? "TRUE" : "FALSE"}</ntsc></rate>
<string>${cfg.start_tc}</string><frame>${cfg.start_frame}</frame><displayformat>${cfg.df ? "DF" : "NDF"}</displayformat></timecode>
<media><video><track/></video><audio><track/></audio></media></sequence></xmeml>
`);
      return true;
    },
    createCaptionTrack(item, startAtSeconds, format) {
      calls.captionTracks.push({ name: item.name, path: item.getMediaPath(), start: startAtSeconds, format });
      return cfg.refuse_captions ? false : true;
    },
  };
}

const children = [];
Object.defineProperty(children, "numItems", { get() { return children.length; } });
const app = {
  project: {
    activeSequence: cfg.no_sequence ? null : makeSequence(),
    rootItem: { children },
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

const panel = require(path.join(root, "plugin", "premiere", "js", "panel.js"));
const deps = {
  evalScript: (code) => Promise.resolve(String(vm.runInContext(code, context))),
  fs, path, os, http, env: process.env, platform: process.platform,
};
const progress = [];
const extra = cfg.cancel ? { cancelled: () => true } : {};
panel.generateCaptions(deps, Object.assign({ poll_ms: 5, output_dir: cfg.output_dir }, cfg.options || {}, extra),
                       (stage, pct) => progress.push([stage, pct]))
  .then((result) => ({ result }), (err) => ({ error: { message: err.message, user: !!err.user } }))
  .then((out) => {
    out.calls = calls;
    out.progress = progress;
    out.info = JSON.parse(vm.runInContext("cb_sequenceInfo()", context));
    process.stdout.write(JSON.stringify(out));
  });
