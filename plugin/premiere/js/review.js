/*
 * CaptionBridge Premiere panel: "Review captions" and "Update captions".
 *
 * Review captions opens the engine's review page (a one-time link from POST /v1/review/links, in the default
 * browser) on the job that captioned the active sequence. Update captions fetches that job's latest approved
 * version (GET /v1/jobs/{id}/versions/latest), writes one SRT per language from its frames (each frame's exact
 * start rounded up to the millisecond: Premiere floors) and makes them new caption tracks through
 * cb_updateCaptions (jsx/review.jsx), read back like Generate captions' tracks (the sequence exported alone as a
 * project before and after). Premiere's scripting has no call that removes a caption track (see README.md), so
 * the panel names the older tracks for the user to delete.
 *
 * The job of a sequence is the one Generate captions recorded for its sequence id in <config>/editor-jobs.json
 * (js/core.js); for a sequence captioned before that, the newest finished engine job whose files include
 * "<sequence name>.captions.json" (the panel exports the sequence as "<sequence name>.xml" and asks for JSON). Talks to the engine through the panel's shared core (js/core.js: Node's
 * http, no browser fetch, since the engine refuses web origins).
 */
(function (root) {
    "use strict";

    // The engine client, SRT writing and messages are the panel's shared core (js/core.js, loaded first in
    // index.html): a health check with a short timeout first, then bounded requests, so a stuck engine cannot
    // freeze Premiere here either.
    var core = root.CaptionBridgeCore || require("./core.js");
    var UserError = core.UserError, requestJson = core.requestJson, srtText = core.srtText, safeName = core.safeName;

    // The host's answer as it is (a refusal included), for calls whose failure is a result, not an error.
    function lenientAnswer(text) {
        try {
            var parsed = JSON.parse(text);
            if (parsed && typeof parsed === "object") return parsed;
        } catch (e) { /* below */ }
        return { ok: false, error: "Premiere's scripting host answered: " + String(text).slice(0, 120) };
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
    function readRecords(engine, deps) { return core.jobRecords(deps, engine); }

    function writeRecord(engine, deps, key, record) { core.recordJob(deps, engine, key, record); }

    /* The job Generate captions recorded for this sequence (by its id); for a sequence captioned before jobs were
     * recorded, the newest finished job made from a sequence of its name. */
    async function findJob(deps, engine, info) {
        var record = readRecords(engine, deps)["premiere:" + info.sequence_id];
        if (record && typeof record.job === "string") return record.job;
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
        var jobId = await findJob(deps, engine, info), lost = null, link;
        try {
            link = await requestJson(deps, engine, "POST", "/v1/review/links", jobId ? { job_id: jobId } : {});
        } catch (e) {
            if (!jobId || e.status !== 404) throw e;
            lost = jobId;  // the engine no longer has it (deleted, expired): the job list instead
            jobId = null;
            link = await requestJson(deps, engine, "POST", "/v1/review/links", {});
        }
        deps.openUrl(link.url);
        return { ok: true, url: link.url, job: jobId, message: lost ?
            "The engine no longer has job " + lost + ", which captioned '" + info.name + "' (deleted, or its " +
            "results expired): the review page lists every job." : jobId ?
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
            if (e.status === 404 && e.code === "job_not_found") {
                throw UserError("The engine no longer has job " + jobId + ", which captioned '" + info.name + "' " +
                                "(it was deleted, or the engine keeps its jobs in another folder now). Nothing was " +
                                "changed: click Generate captions to caption this sequence anew.");
            }
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
            files.push({ language: lang, path: file, name: name, count: srt.count, texts: srt.texts,
                         label: "CaptionBridge v" + version.version + " " + core.languageName(lang) });
        });
        if (deps.loadHost) await deps.loadHost();
        // Read back as Generate captions does (js/core.js): the sequence exported alone as a project before and
        // after, each new SRT looked for in it. The snapshots go to a private temporary folder, always removed.
        var work = deps.fs.mkdtempSync(deps.path.join(deps.os.tmpdir(), "captionbridge-"));
        try {
            var readDeps = Object.assign({}, deps, { host: { exportSequenceProject: function (id, file) {
                return deps.evalScript("cb_exportSequenceProject(" + JSON.stringify(id) + "," + JSON.stringify(file) +
                                       ")").then(lenientAnswer);
            } } });
            var before = await core.snapshot(readDeps, info.sequence_id, work, "before");
            var made = hostAnswer(await deps.evalScript("cb_updateCaptions(" + JSON.stringify(JSON.stringify(files)) +
                                                        ")"), "adding the caption tracks");
            var failed = (made.results || []).filter(function (r) { return !r.ok; });
            if (!made.results || failed.length) {
                return { ok: false, files: files, message: "Version " + version.version + " could not be added as " +
                    "caption tracks for " + failed.map(function (r) {
                        var f = files.filter(function (x) { return x.path === r.path; })[0];
                        return (f ? core.fileLabel(f) : core.languageName(r.language)) + " (" + r.error + ")";
                    }).join(", ") + ". The files are in " + outDir + ": import each with File > Import and drag " +
                    "it to the very start of the sequence." };
            }
            var back = core.readBack(before, await core.snapshot(readDeps, info.sequence_id, work, "after"), files);
        } finally {
            if (deps.fs.rmSync) deps.fs.rmSync(work, { recursive: true, force: true });
        }
        var missing = back.supported ? files.filter(function (f) { return !back.placed[f.path]; }) : [];
        if (missing.length) {  // the earlier captions are still the sequence's: the record keeps them
            return { ok: false, verified: true, files: files, message: "Premiere said it made the caption tracks " +
                "of version " + version.version + ", but reading the sequence back does not show them. Check the " +
                "caption tracks in the timeline; for any that are missing:\n" + core.handImportHelp(
                    missing.map(function (f) {
                        return { language: f.language, path: f.path, error: "not found in the sequence" };
                    })) };
        }
        var previous = record.version ? "version " + record.version : "the earlier captions";
        writeRecord(engine, deps, key, { job: jobId, version: version.version, sequence: info.name });
        var added = files.map(function (f) { return f.label + ": " + f.count + " captions"; }).join(", ");
        var checked = back.supported ? " and read back from Premiere" : ", as Premiere reports, but this Premiere " +
            "version gives the panel no way to read them back" + (back.reason ? " (" + back.reason + ")" : "") +
            ": check them in the timeline";
        return { ok: true, verified: back.supported, files: files, version: version.version, message: "Version " +
            version.version + " added as new caption tracks (" + added + ")" + checked + ". Premiere does not " +
            "let scripts remove caption tracks: delete the caption track(s) of " + previous + " in the Timeline. " +
            "Files: " + outDir };
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
            http: nodeRequire("http"), zlib: nodeRequire("zlib"), env: proc.env, platform: proc.platform,
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
