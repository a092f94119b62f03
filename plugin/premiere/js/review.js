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
 * <config>/editor-jobs.json once found. Talks to the engine through the panel's shared core (js/core.js: Node's
 * http, no browser fetch, since the engine refuses web origins).
 */
(function (root) {
    "use strict";

    // The engine client, SRT writing and messages are the panel's shared core (js/core.js, loaded first in
    // index.html): a health check with a short timeout first, then bounded requests, so a stuck engine cannot
    // freeze Premiere here either.
    var core = root.CaptionBridgeCore || require("./core.js");
    var UserError = core.UserError, requestJson = core.requestJson, srtText = core.srtText, safeName = core.safeName;

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
        var engine = await core.engine(deps);
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
        var engine = await core.engine(deps);
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
        if (options.speaker_layout === "tracks" && core.hasSpeakers(version)) {
            // one caption track per speaker, as reviewed (a cue given to another speaker moves track)
            files = core.writeSpeakerSrtFiles(deps, version, info, outDir,
                                              safeName(info.name) + " " + jobId.slice(0, 8) + ".v" + version.version);
            files.forEach(function (f) { f.label = "CaptionBridge v" + version.version + " " + core.fileLabel(f); });
        }
        if (!files.length) languages.forEach(function (lang) {
            var srt = srtText(version.cues || [], lang, info.rate_num, info.rate_den);
            if (!srt.count) return;
            var name = safeName(info.name) + " " + jobId.slice(0, 8) + ".v" + version.version + "." + lang + ".srt";
            var file = deps.path.join(outDir, name);
            deps.fs.writeFileSync(file, srt.text, "utf8");
            files.push({ language: lang, path: file, name: name, count: srt.count,
                         label: "CaptionBridge v" + version.version + " " + core.languageName(lang) });
        });
        if (deps.loadHost) await deps.loadHost();
        var made = hostAnswer(await deps.evalScript("cb_updateCaptions(" + JSON.stringify(JSON.stringify(files)) +
                                                    ")"), "adding the caption tracks");
        var failed = (made.results || []).filter(function (r) { return !r.ok; });
        if (!made.results || failed.length) {
            return { ok: false, files: files, message: "Version " + version.version + " could not be added as " +
                "caption tracks for " + failed.map(function (r) {
                    var f = files.filter(function (x) { return x.path === r.path; })[0];
                    return (f ? core.fileLabel(f) : core.languageName(r.language)) + " (" + r.error + ")";
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
                    var layout = document.getElementById("speaker-layout");  // the panel's speaker choice
                    pair[1](deps, { speaker_layout: layout ? layout.value || null : null }).then(function (res) {
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
