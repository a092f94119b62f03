// Loads index.html's scripts (js/core.js, then js/panel.js) the way CEP does: one window with
// window.__adobe_cep__.evalScript(code, callback) and window.cep_node (Node's require/process), and a minimal DOM
// with the elements of index.html. Clicks "Generate captions" (and "Cancel" after cfg.cancel_after_ms) and prints
// what the panel showed. argv[2]: JSON config {cancel_after_ms, sequence_info}.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const cfg = JSON.parse(process.argv[2]);
const root = path.resolve(__dirname, "..", "..");
const html = fs.readFileSync(path.join(root, "plugin", "premiere", "index.html"), "utf8");

function element(id) {
  const listeners = {};
  return {
    id, value: "", textContent: "", className: "", disabled: /id="cancel" disabled/.test(html) && id === "cancel",
    addEventListener(type, fn) { (listeners[type] = listeners[type] || []).push(fn); },
    click() { if (!this.disabled) (listeners.click || []).forEach((fn) => fn({})); },
    fire(type) { (listeners[type] || []).forEach((fn) => fn({})); },
  };
}

const ids = [...html.matchAll(/id="([^"]+)"/g)].map((m) => m[1]);
const elements = Object.fromEntries(ids.map((id) => [id, element(id)]));
elements.language.value = "en";
const docListeners = {};
const document = {
  getElementById: (id) => elements[id] || null,
  addEventListener(type, fn) { (docListeners[type] = docListeners[type] || []).push(fn); },
};
const evals = [];
const window = {
  document,
  __adobe_cep__: {
    evalScript(code, callback) {
      evals.push(code.slice(0, 30));
      setImmediate(() => callback(code.startsWith("cb_sequenceInfo") ? JSON.stringify(cfg.sequence_info) :
                                  "EvalScript error."));
    },
  },
  cep_node: { require, process },
};
const context = vm.createContext(Object.assign(window, { window, Buffer, setTimeout, clearTimeout, setImmediate,
                                                          console }));
const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]);
for (const src of scripts) {
  vm.runInContext(fs.readFileSync(path.join(root, "plugin", "premiere", src), "utf8"), context, { filename: src });
}
(docListeners.DOMContentLoaded || []).forEach((fn) => fn());

if (cfg.speaker_steps) {  // the speaker layout is offered only while speakers are on
  const layout = [];
  for (const [speakers, names] of cfg.speaker_steps) {
    elements.speakers.value = speakers;
    elements["speaker-names"].value = names;
    elements.speakers.fire("change");
    elements["speaker-names"].fire("input");
    layout.push(elements["speaker-layout"].disabled);
  }
  process.stdout.write(JSON.stringify({ layout_disabled: layout,
                                        initially_disabled: /id="speaker-layout" disabled/.test(html) }));
  process.exit(0);
}

const seen = [];
const started = Date.now();
elements.generate.click();
seen.push({ at: "after click", generate_disabled: elements.generate.disabled, cancel_disabled: elements.cancel.disabled,
            status: elements.status.textContent });
if (cfg.cancel_after_ms) setTimeout(() => elements.cancel.click(), cfg.cancel_after_ms);
const poll = setInterval(() => {
  if (!elements.generate.disabled || Date.now() - started > 30000) {
    clearInterval(poll);
    seen.push({ at: "done", generate_disabled: elements.generate.disabled, cancel_disabled: elements.cancel.disabled,
                status: elements.status.textContent, className: elements.status.className,
                elapsed_ms: Date.now() - started });
    process.stdout.write(JSON.stringify({ scripts, seen, evals }));
    process.exit(0);
  }
}, 20);
