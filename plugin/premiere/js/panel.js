/*
 * CaptionBridge Premiere panel logic (CEP, Node.js enabled with --enable-nodejs --mixed-context).
 *
 * Flow of "Generate captions": read the active sequence's clock (host.jsx) -> export it as FCP7 XML
 * (exportAsFinalCutProXML) -> POST it to the local engine -> poll progress -> GET the result -> write one SRT per
 * language from the engine's frames (each frame's exact start rounded UP to the millisecond, so Premiere, which
 * floors, lands every caption on its frame) -> import each SRT and createCaptionTrack(item, 0,
 * Sequence.CAPTION_FORMAT_SUBTITLE) -> report success, or a clear failure with the SRT paths to import by hand.
 *
 * The engine is reached with Node's http module: a browser fetch would send an Origin header, which the engine
 * refuses on purpose (no website may drive it). The token is read from the engine's config folder.
 *
 * The same file runs under Node.js in the tests (module.exports); in the panel it wires index.html.
 */
(function (root) {
    "use strict";

    var TERMINAL = { succeeded: true, failed: true, cancelled: true };
    var LANGUAGE_NAMES = { en: "English", zh: "Chinese", und: "Captions" };

    function configDir(env, platform, home, pathMod) {
        if (env.CAPTIONBRIDGE_CONFIG_DIR) return env.CAPTIONBRIDGE_CONFIG_DIR;
        if (platform === "win32") {
            return pathMod.join(env.APPDATA || pathMod.join(home, "AppData", "Roaming"), "CaptionBridge");
        }
        if (platform === "darwin") return pathMod.join(home, "Library", "Application Support", "CaptionBridge");
        return pathMod.join(env.XDG_CONFIG_HOME || pathMod.join(home, ".config"), "captionbridge");
    }

    function UserError(message) {
        var e = new Error(message);
        e.user = true;
        return e;
    }

    function readEngine(deps) {
        var dir = configDir(deps.env, deps.platform, deps.os.homedir(), deps.path);
        var info, token;
        try {
            info = JSON.parse(deps.fs.readFileSync(deps.path.join(dir, "service.json"), "utf8"));
            token = deps.fs.readFileSync(deps.path.join(dir, "token"), "utf8").trim();
        } catch (e) {
            throw UserError("The CaptionBridge engine is not running. Open a terminal, run `captionbridge serve` " +
                            "and leave it open, then click Generate captions again. (Looked in " + dir + ".)");
        }
        return { host: info.host || "127.0.0.1", port: info.port || 8765, token: token };
    }

    function request(deps, engine, method, pathname, body) {
        return new Promise(function (resolve, reject) {
            var data = body === undefined ? null : Buffer.from(JSON.stringify(body), "utf8");
            var headers = { Authorization: "Bearer " + engine.token, Accept: "application/json" };
            if (data) {
                headers["Content-Type"] = "application/json";
                headers["Content-Length"] = data.length;
            }
            var req = deps.http.request({ host: engine.host, port: engine.port, method: method, path: pathname,
                                          headers: headers, timeout: 60000 }, function (res) {
                var chunks = [];
                res.on("data", function (c) { chunks.push(c); });
                res.on("end", function () { resolve({ status: res.statusCode, body: Buffer.concat(chunks) }); });
            });
            req.on("timeout", function () { req.destroy(new Error("timed out")); });
            req.on("error", function (err) {
                reject(UserError("Cannot reach the CaptionBridge engine at " + engine.host + ":" + engine.port +
                                 " (" + err.message + "). Is `captionbridge serve` running?"));
            });
            if (data) req.write(data);
            req.end();
        });
    }

    function requestJson(deps, engine, method, pathname, body) {
        return request(deps, engine, method, pathname, body).then(function (res) {
            var parsed = null;
            try { parsed = JSON.parse(res.body.toString("utf8") || "{}"); } catch (e) { parsed = null; }
            if (res.status === 401 || res.status === 403) {
                throw UserError("The CaptionBridge engine refused this computer's access token (" + res.status +
                                "). Restart `captionbridge serve` so that it and Premiere use the same token file.");
            }
            if (res.status >= 400) {
                var msg = parsed && parsed.error && parsed.error.message ? parsed.error.message : res.body.toString();
                throw UserError("The engine refused " + method + " " + pathname + " (" + res.status + "): " + msg);
            }
            if (parsed === null) throw UserError("The engine answered something that is not JSON on " + pathname);
            return parsed;
        });
    }

    // floor(a / b) for integers below 2^53, exact
    function idiv(a, b) {
        var q = Math.floor(a / b);
        while (q * b > a) q -= 1;
        while ((q + 1) * b <= a) q += 1;
        return q;
    }

    function frameMsCeil(frame, num, den) { return -idiv(-frame * 1000 * den, num); }

    function pad(n, width) { var s = String(n); while (s.length < width) s = "0" + s; return s; }

    function srtTime(ms) {
        var h = idiv(ms, 3600000); ms -= h * 3600000;
        var m = idiv(ms, 60000); ms -= m * 60000;
        var s = idiv(ms, 1000); ms -= s * 1000;
        return pad(h, 2) + ":" + pad(m, 2) + ":" + pad(s, 2) + "," + pad(ms, 3);
    }

    function srtText(cues, language, num, den) {
        var out = [], n = 0;
        cues.forEach(function (cue) {
            var text = cue.text && cue.text[language];
            if (!text || !String(text).trim()) return;
            n += 1;
            out.push(n + "\n" + srtTime(frameMsCeil(cue.start_frame, num, den)) + " --> " +
                     srtTime(frameMsCeil(cue.end_frame, num, den)) + "\n" + String(text).trim() + "\n");
        });
        return { text: out.join("\n"), count: n };
    }

    function safeName(text) {
        var s = String(text || "sequence").replace(/[^A-Za-z0-9._ -]+/g, "_").replace(/^[ .]+|[ .]+$/g, "");
        return (s || "sequence").slice(0, 80);
    }

    function parseHost(text) {
        var parsed;
        try { parsed = JSON.parse(text); } catch (e) {
            throw UserError("Premiere's scripting host answered unexpectedly: " + String(text).slice(0, 200));
        }
        if (!parsed.ok) throw UserError(parsed.error || "Premiere could not do this");
        return parsed;
    }

    function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

    /*
     * deps: { evalScript(code) -> Promise<string>, fs, path, os, http, env, platform }
     * options: { language, translate_to, preset, tracks, model, device, output_dir, poll_ms }
     * onProgress(stage, percent, eta)
     */
    async function generateCaptions(deps, options, onProgress) {
        options = options || {};
        onProgress = onProgress || function () {};
        var info = parseHost(await deps.evalScript("cb_sequenceInfo()"));
        var engine = readEngine(deps);
        var work = deps.fs.mkdtempSync(deps.path.join(deps.os.tmpdir(), "captionbridge-"));
        var xmlPath = deps.path.join(work, safeName(info.name) + ".xml");
        onProgress("exporting sequence", 0, null);
        parseHost(await deps.evalScript("cb_exportSequence(" + JSON.stringify(xmlPath) + ")"));

        var engineOptions = { formats: ["srt", "json"] };
        ["language", "translate_to", "preset", "tracks", "model", "device"].forEach(function (k) {
            if (options[k] !== undefined && options[k] !== null && options[k] !== "") engineOptions[k] = options[k];
        });
        var job = await requestJson(deps, engine, "POST", "/v1/jobs",
                                    { timeline_path: xmlPath, options: engineOptions });
        var status, cancelSent = false;
        for (;;) {
            status = await requestJson(deps, engine, "GET", "/v1/jobs/" + job.id);
            onProgress(status.stage || status.state, status.progress || 0, status.eta_seconds);
            if (TERMINAL[status.state]) break;
            if (options.cancelled && options.cancelled() && !cancelSent) {
                cancelSent = true;
                await requestJson(deps, engine, "DELETE", "/v1/jobs/" + job.id);
                continue;
            }
            await sleep(options.poll_ms === undefined ? 500 : options.poll_ms);
        }
        if (status.state === "cancelled") return { ok: false, cancelled: true, message: "Cancelled; nothing changed." };
        if (status.state !== "succeeded") {
            throw UserError("The engine could not caption this sequence: " +
                            (status.error && status.error.message ? status.error.message : status.state));
        }
        var result = await requestJson(deps, engine, "GET", "/v1/jobs/" + job.id + "/result");
        if (String(result.timeline.rate) !== info.rate) {
            throw UserError("The engine read the sequence at " + result.timeline.rate + " fps but Premiere says " +
                            info.rate + ": captions would drift, so none were added.");
        }
        var cues = result.cues || [];
        if (!cues.length) return { ok: true, message: "No speech was found in the sequence; no captions were added." };
        var outDir = options.output_dir ||
            deps.path.join(deps.os.homedir(), "Documents", "CaptionBridge");
        outDir = deps.path.join(outDir, safeName(info.name) + " " + job.id.slice(0, 8));
        deps.fs.mkdirSync(outDir, { recursive: true });
        var languages = result.languages && result.languages.length ? result.languages : [result.source_language];
        var request = [];
        languages.forEach(function (lang) {
            var srt = srtText(cues, lang, info.rate_num, info.rate_den);
            if (!srt.count) return;
            var name = safeName(info.name) + "." + lang + ".srt";
            var file = deps.path.join(outDir, name);
            deps.fs.writeFileSync(file, srt.text, "utf8");
            request.push({ language: lang, path: file, name: name, count: srt.count });
        });
        onProgress("adding caption tracks", 100, null);
        var imported = JSON.parse(await deps.evalScript("cb_importCaptions(" + JSON.stringify(JSON.stringify(request)) +
                                                        ")"));
        var failed = (imported.results || []).filter(function (r) { return !r.ok; });
        if (!imported.results || failed.length) {
            var lines = (imported.results || request).filter(function (r) { return !r.ok; }).map(function (r) {
                return "- " + (LANGUAGE_NAMES[r.language] || r.language) + ": " + r.path +
                    (r.error ? " (" + r.error + ")" : "");
            });
            return { ok: false, files: request, results: imported.results, message:
                "Some caption tracks could not be created:\n" + lines.join("\n") + "\n\nImport each file with " +
                "File > Import, then drag it into the sequence at its very start (the first frame), or use " +
                "Window > Text > Captions > Import captions from file." };
        }
        return { ok: true, files: request, results: imported.results, message: request.map(function (r) {
            return (LANGUAGE_NAMES[r.language] || r.language) + ": " + r.count + " captions";
        }).join(", ") + " added as caption tracks. Files: " + outDir };
    }

    var api = { configDir: configDir, readEngine: readEngine, frameMsCeil: frameMsCeil, srtText: srtText,
                generateCaptions: generateCaptions, safeName: safeName };

    if (typeof module !== "undefined" && module.exports) module.exports = api;
    root.CaptionBridge = api;

    // -- wiring inside Premiere -------------------------------------------------------------------------------
    if (typeof window !== "undefined" && window.__adobe_cep__ && typeof document !== "undefined") {
        var nodeRequire = window.cep_node ? window.cep_node.require : require;
        var deps = {
            evalScript: function (code) {
                return new Promise(function (resolve) { window.__adobe_cep__.evalScript(code, resolve); });
            },
            fs: nodeRequire("fs"), path: nodeRequire("path"), os: nodeRequire("os"), http: nodeRequire("http"),
            env: (window.cep_node ? window.cep_node.process : process).env,
            platform: (window.cep_node ? window.cep_node.process : process).platform
        };
        document.addEventListener("DOMContentLoaded", function () {
            var button = document.getElementById("generate");
            var status = document.getElementById("status");
            var bar = document.getElementById("progress");
            var cancel = document.getElementById("cancel");
            var cancelRequested = false;
            cancel.addEventListener("click", function () {
                cancelRequested = true;
                status.textContent = "Cancelling...";
            });
            button.addEventListener("click", function () {
                button.disabled = true;
                cancel.disabled = false;
                cancelRequested = false;
                status.className = "";
                status.textContent = "Starting...";
                generateCaptions(deps, {
                    language: document.getElementById("language").value,
                    translate_to: document.getElementById("translate").value || null,
                    cancelled: function () { return cancelRequested; }
                }, function (stage, percent, eta) {
                    bar.value = percent;
                    status.textContent = stage + " " + Math.round(percent) + "%" +
                        (eta ? " (about " + Math.round(eta) + " s left)" : "");
                }).then(function (res) {
                    status.className = res.ok ? "ok" : "error";
                    status.textContent = res.message;
                }, function (err) {
                    status.className = "error";
                    status.textContent = err.user ? err.message : "CaptionBridge panel error (please report it): " +
                        err.message;
                }).then(function () { button.disabled = false; cancel.disabled = true; });
            });
        });
    }
})(typeof window !== "undefined" ? window : this);
