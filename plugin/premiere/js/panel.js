/*
 * CaptionBridge Premiere panel (CEP, Node.js enabled with --enable-nodejs --mixed-context): the Premiere side.
 *
 * js/core.js does the work (engine client, progress, options, SRT files, read-back, messages); this file gives it
 * a `host` made of CEP's asynchronous evalScript calls into jsx/host.jsx, and wires index.html.
 *
 * CEP answers "EvalScript error." (not JSON) when ExtendScript throws. host.jsx catches everything itself, but
 * whatever comes back that is not JSON is turned into {ok: false, error} here, so the core always reports a
 * failure the user can act on (with the SRT files to import by hand once they exist), never a parse error.
 *
 * The engine is reached with Node's http module: a browser fetch would send an Origin header, which the engine
 * refuses on purpose (no website may drive it).
 */
(function (root) {
    "use strict";

    // in the panel, index.html loads js/core.js first; under Node (tests) it is required
    var core = root.CaptionBridgeCore || require("./core.js");

    function quote(value) { return JSON.stringify(String(value)); }

    /* Parse an evalScript answer; anything that is not a JSON object becomes {ok: false, error}. */
    function parseHostAnswer(text, what) {
        var parsed = null;
        try { parsed = JSON.parse(text); } catch (e) { parsed = null; }
        if (!parsed || typeof parsed !== "object") {
            return { ok: false, host_error: true, error: "Premiere's scripting host failed while " + what +
                     " (it answered: " + String(text).slice(0, 120) + "). Close and reopen the panel (Window > " +
                     "Extensions > CaptionBridge); if this keeps happening, run `captionbridge install premiere` " +
                     "again and restart Premiere." };
        }
        return parsed;
    }

    /* The host object js/core.js expects, over evalScript(code) -> Promise<string> and jsx/host.jsx. */
    function cepHost(evalScript) {
        function call(code, what) {
            return Promise.resolve().then(function () { return evalScript(code); }).then(
                function (text) { return parseHostAnswer(text, what); },
                function (err) { return parseHostAnswer("EvalScript failed: " + (err && err.message), what); });
        }
        return {
            sequenceInfo: function () { return call("cb_sequenceInfo()", "reading the sequence"); },
            exportSequence: function (sequenceId, path) {
                return call("cb_exportSequence(" + quote(sequenceId) + "," + quote(path) + ")",
                            "exporting the sequence");
            },
            importCaptions: function (sequenceId, clock, files) {
                var request = JSON.stringify({ sequence_id: sequenceId, clock: clock, items: files });
                return call("cb_importCaptions(" + quote(request) + ")", "adding the caption tracks");
            },
            exportSequenceProject: function (sequenceId, path) {
                return call("cb_exportSequenceProject(" + quote(sequenceId) + "," + quote(path) + ")",
                            "reading the caption tracks back");
            }
        };
    }

    var api = { cepHost: cepHost, parseHostAnswer: parseHostAnswer, core: core };
    if (typeof module !== "undefined" && module.exports) module.exports = api;
    root.CaptionBridgePanel = api;

    // -- wiring inside Premiere -------------------------------------------------------------------------------
    if (typeof window !== "undefined" && window.__adobe_cep__ && typeof document !== "undefined") {
        var nodeRequire = window.cep_node ? window.cep_node.require : require;
        var proc = window.cep_node ? window.cep_node.process : process;
        var deps = {
            host: cepHost(function (code) {
                return new Promise(function (resolve) { window.__adobe_cep__.evalScript(code, resolve); });
            }),
            fs: nodeRequire("fs"), path: nodeRequire("path"), os: nodeRequire("os"), http: nodeRequire("http"),
            zlib: nodeRequire("zlib"), env: proc.env, platform: proc.platform
        };
        document.addEventListener("DOMContentLoaded", function () {
            var button = document.getElementById("generate");
            var status = document.getElementById("status");
            var bar = document.getElementById("progress");
            var cancelButton = document.getElementById("cancel");
            var current = null;
            var speakers = document.getElementById("speakers");
            var speakerNames = document.getElementById("speaker-names");
            var layout = document.getElementById("speaker-layout");
            // the speaker layout is offered only while speakers are on (Detect, a number, or names)
            function speakersOn() { return !!(speakers && (speakers.value || String(speakerNames.value || "").trim())); }
            function syncLayout() { if (layout) layout.disabled = !speakersOn(); }
            if (speakers) {
                speakers.addEventListener("change", syncLayout);
                speakerNames.addEventListener("input", syncLayout);
                syncLayout();
            }
            cancelButton.addEventListener("click", function () {
                if (!current) return;
                current.cancel();
                cancelButton.disabled = true;
                status.textContent = "Cancelling...";
            });
            button.addEventListener("click", function () {
                button.disabled = true;
                cancelButton.disabled = false;
                current = core.canceller();
                status.className = "";
                status.textContent = "Starting...";
                core.generateCaptions(deps, {
                    language: document.getElementById("language").value,
                    translate_to: document.getElementById("translate").value || null,
                    speakers: speakers && speakers.value ? (/^\d+$/.test(speakers.value) ? Number(speakers.value) :
                                                            speakers.value) : null,
                    speaker_names: speakerNames ? speakerNames.value : null,
                    speaker_layout: layout && speakersOn() ? layout.value || null : null,
                    cancel: current
                }, function (stage, percent, eta) {
                    if (stage === "adding caption tracks") cancelButton.disabled = true; // Premiere is changing now
                    bar.value = percent;
                    status.textContent = stage + " " + Math.round(percent) + "%" +
                        (eta ? " (about " + Math.round(eta) + " s left)" : "");
                }).then(function (res) {
                    status.className = res.cancelled ? "" : res.ok ? (res.verified === false ? "warn" : "ok") : "error";
                    status.textContent = res.message;
                }, function (err) {
                    status.className = "error";
                    status.textContent = err.user ? err.message : "CaptionBridge panel error (please report it): " +
                        err.message;
                }).then(function () { button.disabled = false; cancelButton.disabled = true; current = null; });
            });
        });
    }
})(typeof window !== "undefined" ? window : this);
