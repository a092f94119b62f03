/*
 * CaptionBridge Premiere panel: "Review captions" and "Update captions".
 *
 * Review captions opens the engine's review page (a one-time link from POST /v1/review/links, in the default
 * browser) on the job that captioned the active sequence. Update captions fetches that job's latest approved
 * version (GET /v1/jobs/{id}/versions/latest), writes one SRT per language from its frames (each frame's exact
 * start rounded up to the millisecond: Premiere floors) and makes them new caption tracks through
 * cb_updateCaptions (jsx/review.jsx). Premiere's scripting has no call that removes a caption track, so the
 * panel names the older tracks for the user to delete.
 *
 * The job of a sequence is the newest finished engine job whose files include "<sequence name>.captions.json"
 * (the panel exports the sequence as "<sequence name>.xml" and asks for JSON), remembered per sequence id in
 * <config>/editor-jobs.json once found. Self-contained (Node's http, no browser fetch: the engine refuses web
 * origins), so it sits beside the panel's own scripts without depending on them.
 */
(function (root) {
    "use strict";

    var LANGUAGE_NAMES = { en: "English", zh: "Chinese", und: "Captions" };

    function UserError(message) {
        var e = new Error(message);
        e.user = true;
        return e;
    }

    function configDir(env, platform, home, pathMod) {
        if (env.CAPTIONBRIDGE_CONFIG_DIR) return env.CAPTIONBRIDGE_CONFIG_DIR;
        if (platform === "win32") {
            return pathMod.join(env.APPDATA || pathMod.join(home, "AppData", "Roaming"), "CaptionBridge");
        }
        if (platform === "darwin") return pathMod.join(home, "Library", "Application Support", "CaptionBridge");
        return pathMod.join(env.XDG_CONFIG_HOME || pathMod.join(home, ".config"), "captionbridge");
    }

    function readEngine(deps) {
        var dir = configDir(deps.env, deps.platform, deps.os.homedir(), deps.path);
        try {
            var info = JSON.parse(deps.fs.readFileSync(deps.path.join(dir, "service.json"), "utf8"));
            var token = deps.fs.readFileSync(deps.path.join(dir, "token"), "utf8").trim();
            return { host: info.host || "127.0.0.1", port: info.port || 8765, token: token, config: dir };
        } catch (e) {
            throw UserError("The CaptionBridge engine is not running. Open a terminal, run `captionbridge serve` " +
                            "and leave it open, then try again. (Looked in " + dir + ".)");
        }
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
                                          headers: headers, timeout: 30000 }, function (res) {
                var chunks = [];
                res.on("data", function (c) { chunks.push(c); });
                res.on("end", function () {
                    var text = Buffer.concat(chunks).toString("utf8"), parsed = null;
                    try { parsed = JSON.parse(text || "null"); } catch (e) { parsed = null; }
                    resolve({ status: res.statusCode, json: parsed, text: text });
                });
            });
            req.on("timeout", function () { req.destroy(new Error("the engine did not answer in 30 s")); });
            req.on("error", function (err) {
                reject(UserError("Cannot reach the CaptionBridge engine at " + engine.host + ":" + engine.port +
                                 " (" + err.message + "). Is `captionbridge serve` running?"));
            });
            if (data) req.write(data);
            req.end();
        });
    }

    async function requestJson(deps, engine, method, pathname, body) {
        var res = await request(deps, engine, method, pathname, body);
        if (res.status === 401 || res.status === 403) {
            throw UserError("The CaptionBridge engine refused this computer's access token (" + res.status + "). " +
                            "Restart `captionbridge serve` so that it and Premiere use the same token file.");
        }
        if (res.status >= 400 || res.json === null) {
            var msg = res.json && res.json.error ? res.json.error.message : res.text.slice(0, 200);
            var e = UserError("The engine refused " + method + " " + pathname + " (" + res.status + "): " + msg);
            e.status = res.status;
            throw e;
        }
        return res.json;
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

    function hostAnswer(text, what) {
        var parsed = null;
        try { parsed = JSON.parse(text); } catch (e) { parsed = null; }
        if (!parsed || typeof parsed !== "object") {
            throw UserError("Premiere's scripting host failed while " + what + " (it answered: " +
                            String(text).slice(0, 120) + "). Close and reopen the panel.");
        }
        if (parsed.ok === false && parsed.error && !parsed.results) throw UserError(parsed.error);
        return parsed;
    }

    // ---- the sequence's job ------------------------------------------------------------------------------------
    function recordsFile(engine, deps) { return deps.path.join(engine.config, "editor-jobs.json"); }

    function readRecords(engine, deps) {
        try { return JSON.parse(deps.fs.readFileSync(recordsFile(engine, deps), "utf8")) || {}; } catch (e) { return {}; }
    }

    function writeRecord(engine, deps, key, record) {
        var records = readRecords(engine, deps);
        records[key] = record;
        try {
            deps.fs.writeFileSync(recordsFile(engine, deps) + ".part", JSON.stringify(records, null, 1), "utf8");
            deps.fs.renameSync(recordsFile(engine, deps) + ".part", recordsFile(engine, deps));
        } catch (e) { /* only the "already up to date" check is lost */ }
    }

    async function findJob(deps, engine, info) {
        var want = safeName(info.name) + ".captions.json";
        var jobs = (await requestJson(deps, engine, "GET", "/v1/jobs")).jobs || [];
        for (var i = jobs.length - 1; i >= 0; i--) {  // oldest first from the engine: newest wins
            if (jobs[i].state === "succeeded" && (jobs[i].files || []).indexOf(want) >= 0) return jobs[i].id;
        }
        return null;
    }

    async function sequenceInfo(deps) {
        return hostAnswer(await deps.evalScript("cb_sequenceInfo()"), "reading the sequence");
    }

    /* Open the review page on the active sequence's job (on the job list when none is found). */
    async function reviewCaptions(deps) {
        var info = await sequenceInfo(deps);
        var engine = readEngine(deps);
        var jobId = await findJob(deps, engine, info);
        var link = await requestJson(deps, engine, "POST", "/v1/review/links", jobId ? { job_id: jobId } : {});
        deps.openUrl(link.url);
        return { ok: true, url: link.url, job: jobId, message: jobId ?
            "The review page is open in your browser. Correct the captions, Approve, then click Update captions." :
            "No CaptionBridge job was found for '" + info.name + "': the review page lists every job." };
    }

    /* The latest approved version of the sequence's job, as new caption tracks. */
    async function updateCaptions(deps, options) {
        options = options || {};
        var info = await sequenceInfo(deps);
        var engine = readEngine(deps);
        var jobId = await findJob(deps, engine, info);
        if (!jobId) {
            throw UserError("No CaptionBridge job was found for '" + info.name + "': click Generate captions " +
                            "first, then Review captions and Approve.");
        }
        var version;
        try {
            version = await requestJson(deps, engine, "GET", "/v1/jobs/" + jobId + "/versions/latest");
        } catch (e) {
            if (e.status === 404) {
                throw UserError("No approved version of these captions yet: click Review captions, correct them, " +
                                "press Approve, then Update captions.");
            }
            throw e;
        }
        if (String(version.timeline.rate) !== String(info.rate)) {
            throw UserError("Version " + version.version + " is at " + version.timeline.rate + " fps but the " +
                            "sequence is " + info.rate + ": captions would drift, so none were added.");
        }
        var key = "premiere:" + info.sequence_id;
        var record = readRecords(engine, deps)[key] || {};
        if (record.job === jobId && record.version === version.version) {
            return { ok: true, version: version.version,
                     message: "The sequence already has version " + version.version + "." };
        }
        var outDir = deps.path.join(options.output_dir || deps.path.join(deps.os.homedir(), "Documents",
                                                                          "CaptionBridge"),
                                    safeName(info.name) + " " + jobId.slice(0, 8));
        deps.fs.mkdirSync(outDir, { recursive: true });
        var languages = version.languages && version.languages.length ? version.languages : [version.source_language];
        var files = [];
        languages.forEach(function (lang) {
            var srt = srtText(version.cues || [], lang, info.rate_num, info.rate_den);
            if (!srt.count) return;
            var name = safeName(info.name) + " " + jobId.slice(0, 8) + ".v" + version.version + "." + lang + ".srt";
            var file = deps.path.join(outDir, name);
            deps.fs.writeFileSync(file, srt.text, "utf8");
            files.push({ language: lang, path: file, name: name, count: srt.count,
                         label: "CaptionBridge v" + version.version + " " + (LANGUAGE_NAMES[lang] || lang) });
        });
        if (deps.loadHost) await deps.loadHost();
        var made = hostAnswer(await deps.evalScript("cb_updateCaptions(" + JSON.stringify(JSON.stringify(files)) +
                                                    ")"), "adding the caption tracks");
        var failed = (made.results || []).filter(function (r) { return !r.ok; });
        if (!made.results || failed.length) {
            return { ok: false, files: files, message: "Version " + version.version + " could not be added as " +
                "caption tracks for " + failed.map(function (r) {
                    return (LANGUAGE_NAMES[r.language] || r.language) + " (" + r.error + ")";
                }).join(", ") + ". The files are in " + outDir + ": import each with File > Import and drag it " +
                "to the very start of the sequence." };
        }
        var previous = record.version ? "version " + record.version : "the earlier captions";
        writeRecord(engine, deps, key, { job: jobId, version: version.version, sequence: info.name });
        return { ok: true, files: files, version: version.version, message: "Version " + version.version +
            " added as new caption tracks (" + files.map(function (f) { return f.label + ": " + f.count +
            " captions"; }).join(", ") + "). Premiere does not let scripts remove caption tracks: delete the " +
            "caption track(s) of " + previous + " in the Timeline. Files: " + outDir };
    }

    var api = { reviewCaptions: reviewCaptions, updateCaptions: updateCaptions, findJob: findJob, srtText: srtText };
    if (typeof module !== "undefined" && module.exports) module.exports = api;
    root.CaptionBridgeReview = api;

    // -- wiring inside Premiere ---------------------------------------------------------------------------------
    if (typeof window !== "undefined" && window.__adobe_cep__ && typeof document !== "undefined") {
        var nodeRequire = window.cep_node ? window.cep_node.require : require;
        var proc = window.cep_node ? window.cep_node.process : process;
        var evalScript = function (code) {
            return new Promise(function (resolve) { window.__adobe_cep__.evalScript(code, resolve); });
        };
        var pathMod = nodeRequire("path");
        var deps = {
            evalScript: evalScript, fs: nodeRequire("fs"), path: pathMod, os: nodeRequire("os"),
            http: nodeRequire("http"), env: proc.env, platform: proc.platform,
            openUrl: function (url) { window.cep.util.openURLInDefaultBrowser(url); },
            loadHost: async function () {  // jsx/review.jsx beside the panel's own host file
                if (await evalScript("typeof cb_updateCaptions") === "function") return;
                // CEP gives the folder as a file: URL (what CSInterface.getSystemPath strips)
                var folder = decodeURI(window.__adobe_cep__.getSystemPath("extension"))
                    .replace(proc.platform === "win32" ? /^file:\/\/\// : /^file:\/\//, "");
                var file = pathMod.join(folder, "jsx", "review.jsx");
                await evalScript("$.evalFile(" + JSON.stringify(file.replace(/\\/g, "/")) + ")");
            }
        };
        var wire = function () {
            var status = document.getElementById("status");
            [["review", reviewCaptions], ["update", updateCaptions]].forEach(function (pair) {
                var el = document.getElementById(pair[0]);
                if (!el) return;
                el.addEventListener("click", function () {
                    el.disabled = true;
                    status.className = "";
                    status.textContent = "Working...";
                    pair[1](deps, {}).then(function (res) {
                        status.className = res.ok ? "ok" : "error";
                        status.textContent = res.message;
                    }, function (err) {
                        status.className = "error";
                        status.textContent = err.user ? err.message : "CaptionBridge panel error (please report " +
                            "it): " + err.message;
                    }).then(function () { el.disabled = false; });
                });
            });
        };
        if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
        else wire();
    }
})(typeof window !== "undefined" ? window : this);
