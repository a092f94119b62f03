/*
 * CaptionBridge panel core: everything in the Premiere panel that is not a call into Premiere.
 *
 * Engine client (token, health check, bounded requests, job submit/poll/cancel/result), progress, options, SRT
 * writing, read-back of the placed captions and every message the user sees. The Premiere side is a `host`
 * object (js/panel.js builds one from CEP's evalScript + jsx/host.jsx); a "Review captions" / "Update captions"
 * button reuses engine(), runJob(), writeSrtFiles(), placeCaptions() and the messages here.
 *
 * host (each method returns a Promise of a plain object; {ok: false, error} on failure, never throws):
 *   sequenceInfo()                                  -> {ok, sequence_id, name, rate, rate_num, rate_den, ...}
 *   exportSequence(sequenceId, xmlPath)              -> {ok, path}
 *   importCaptions(sequenceId, clock, files)         -> {ok, results: [{language, path, ok, error}]}
 *                                                      or {ok: false, refused: true, error} (sequence gone/changed)
 *   exportSequenceProject(sequenceId, projectPath)   -> {ok, path} or {ok: false, unsupported: true}
 *
 * deps: { host, fs, path, os, http, zlib, env, platform }
 *
 * Runs in CEP's mixed Node context and under plain Node in the tests (module.exports).
 */
(function (root) {
    "use strict";

    var TERMINAL = { succeeded: true, failed: true, cancelled: true };
    var LANGUAGE_NAMES = { en: "English", zh: "Chinese", und: "Captions" };
    // Every request to the engine is bounded (milliseconds); a stuck engine never freezes the panel.
    var TIMEOUTS = { health: 3000, submit: 15000, poll: 10000, result: 30000, cancel: 5000 };
    var POLL_RETRIES = 2; // a poll that times out is retried this many times before the panel gives up

    function UserError(message) {
        var e = new Error(message);
        e.user = true;
        return e;
    }

    function CancelledError() {
        var e = new Error("cancelled");
        e.cancelled = true;
        return e;
    }

    /* A cancel switch the panel's Cancel button flips; requests and waits in flight stop at once. */
    function canceller() {
        var listeners = [];
        var c = {
            cancelled: false,
            cancel: function () {
                if (c.cancelled) return;
                c.cancelled = true;
                listeners.splice(0).forEach(function (fn) { try { fn(); } catch (e) { /* ignore */ } });
            },
            onCancel: function (fn) {
                if (c.cancelled) { fn(); return function () {}; }
                listeners.push(fn);
                return function () { var i = listeners.indexOf(fn); if (i >= 0) listeners.splice(i, 1); };
            },
            check: function () { if (c.cancelled) throw CancelledError(); }
        };
        return c;
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
        var info, token;
        try {
            info = JSON.parse(deps.fs.readFileSync(deps.path.join(dir, "service.json"), "utf8"));
            token = deps.fs.readFileSync(deps.path.join(dir, "token"), "utf8").trim();
        } catch (e) {
            throw UserError("The CaptionBridge engine is not running. Open a terminal, run `captionbridge serve` " +
                            "and leave it open, then click Generate captions again. (Looked in " + dir + ".)");
        }
        return { host: info.host || "127.0.0.1", port: info.port || 8765, token: token, config: dir };
    }

    /*
     * One HTTP request with a hard deadline (not only an idle-socket timeout) that Cancel aborts at once.
     * opts: { timeoutMs, cancel }. Resolves {status, body}; rejects UserError (unreachable / no answer in time)
     * or CancelledError.
     */
    function request(deps, engine, method, pathname, body, opts) {
        opts = opts || {};
        var timeoutMs = opts.timeoutMs || TIMEOUTS.poll;
        return new Promise(function (resolve, reject) {
            var settled = false, timer = null, offCancel = function () {};
            function finish(fn, value) {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                offCancel();
                fn(value);
            }
            var data = body === undefined ? null : Buffer.from(JSON.stringify(body), "utf8");
            var headers = { Authorization: "Bearer " + engine.token, Accept: "application/json" };
            if (data) {
                headers["Content-Type"] = "application/json";
                headers["Content-Length"] = data.length;
            }
            var req = deps.http.request({ host: engine.host, port: engine.port, method: method, path: pathname,
                                          headers: headers }, function (res) {
                var chunks = [];
                res.on("data", function (c) { chunks.push(c); });
                res.on("end", function () {
                    finish(resolve, { status: res.statusCode, body: Buffer.concat(chunks) });
                });
                res.on("error", function (err) { req.emit("error", err); });
            });
            timer = setTimeout(function () {
                finish(reject, UserError("The CaptionBridge engine at " + engine.host + ":" + engine.port +
                                         " did not answer " + method + " " + pathname + " within " +
                                         Math.round(timeoutMs / 100) / 10 + " s. It may be stuck: stop " +
                                         "`captionbridge serve` (Ctrl+C), start it again, then retry."));
                req.destroy();
            }, timeoutMs);
            if (opts.cancel) {
                offCancel = opts.cancel.onCancel(function () { finish(reject, CancelledError()); req.destroy(); });
            }
            req.on("error", function (err) {
                finish(reject, UserError("Cannot reach the CaptionBridge engine at " + engine.host + ":" + engine.port +
                                         " (" + err.message + "). Is `captionbridge serve` running?"));
            });
            if (data) req.write(data);
            req.end();
        });
    }

    function requestJson(deps, engine, method, pathname, body, opts) {
        return request(deps, engine, method, pathname, body, opts).then(function (res) {
            var parsed = null;
            try { parsed = JSON.parse(res.body.toString("utf8") || "{}"); } catch (e) { parsed = null; }
            if (res.status === 401 || res.status === 403) {
                throw UserError("The CaptionBridge engine refused this computer's access token (" + res.status +
                                "). Restart `captionbridge serve` so that it and Premiere use the same token file.");
            }
            if (res.status >= 400) {
                var msg = parsed && parsed.error && parsed.error.message ? parsed.error.message : res.body.toString();
                var refused = UserError("The engine refused " + method + " " + pathname + " (" + res.status + "): " +
                                        msg);
                refused.status = res.status;
                refused.code = parsed && parsed.error ? parsed.error.code : undefined;  // "job_not_found", ...
                throw refused;
            }
            if (parsed === null) throw UserError("The engine answered something that is not JSON on " + pathname);
            return parsed;
        });
    }

    function timeouts(options) {
        var t = {}, k, given = (options && options.timeouts) || {};
        for (k in TIMEOUTS) if (TIMEOUTS.hasOwnProperty(k)) t[k] = given[k] || TIMEOUTS[k];
        return t;
    }

    /* The engine from its config folder, checked with a short health request before any work starts. */
    function engine(deps, options) {
        options = options || {};
        var eng = readEngine(deps);
        return requestJson(deps, eng, "GET", "/v1/health", undefined,
                           { timeoutMs: timeouts(options).health, cancel: options.cancel })
            .then(function () { return eng; });
    }

    function sleep(ms, cancel) {
        return new Promise(function (resolve, reject) {
            var off = function () {};
            var t = setTimeout(function () { off(); resolve(); }, ms);
            if (cancel) off = cancel.onCancel(function () { clearTimeout(t); reject(CancelledError()); });
        });
    }

    function cancelJob(deps, eng, jobId, options) {
        // bounded, never throws: the user asked to stop, so nothing here may hold the panel
        return requestJson(deps, eng, "DELETE", "/v1/jobs/" + jobId, undefined,
                           { timeoutMs: timeouts(options).cancel })
            .then(function () { return true; }, function () { return false; });
    }

    /*
     * Submit a timeline to the engine and wait for the result. Cancel works while submitting, polling and
     * fetching: the job is deleted on the engine and {cancelled: true} comes back.
     */
    async function runJob(deps, eng, timelinePath, engineOptions, options, onProgress) {
        options = options || {};
        onProgress = onProgress || function () {};
        var t = timeouts(options), cancel = options.cancel || canceller();
        var job = null, status = null, misses = 0;
        try {
            cancel.check();
            job = await requestJson(deps, eng, "POST", "/v1/jobs",
                                    { timeline_path: timelinePath, options: engineOptions },
                                    { timeoutMs: t.submit, cancel: cancel });
            for (;;) {
                try {
                    status = await requestJson(deps, eng, "GET", "/v1/jobs/" + job.id, undefined,
                                               { timeoutMs: t.poll, cancel: cancel });
                    misses = 0;
                } catch (e) {
                    if (e.cancelled || !/did not answer/.test(e.message) || misses >= POLL_RETRIES) throw e;
                    misses += 1;
                    continue;
                }
                onProgress(status.stage || status.state, status.progress || 0, status.eta_seconds);
                if (TERMINAL[status.state]) break;
                await sleep(options.poll_ms === undefined ? 500 : options.poll_ms, cancel);
            }
            if (status.state === "cancelled") return { cancelled: true, job: job };
            if (status.state !== "succeeded") {
                throw UserError("The engine could not caption this sequence: " +
                                (status.error && status.error.message ? status.error.message : status.state));
            }
            var result = await requestJson(deps, eng, "GET", "/v1/jobs/" + job.id + "/result", undefined,
                                           { timeoutMs: t.result, cancel: cancel });
            return { job: job, result: result };
        } catch (e) {
            if (e.cancelled) {
                if (job) await cancelJob(deps, eng, job.id, options);
                return { cancelled: true, job: job };
            }
            // the panel gives up on an engine that stopped answering: do not leave the job running there
            if (job && /did not answer/.test(e.message)) await cancelJob(deps, eng, job.id, options);
            throw e;
        }
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
        var out = [], n = 0, texts = [];
        cues.forEach(function (cue) {
            var text = cue.text && cue.text[language];
            if (!text || !String(text).trim()) return;
            n += 1;
            texts.push(String(text).trim());
            out.push(n + "\n" + srtTime(frameMsCeil(cue.start_frame, num, den)) + " --> " +
                     srtTime(frameMsCeil(cue.end_frame, num, den)) + "\n" + String(text).trim() + "\n");
        });
        return { text: out.join("\n"), count: n, texts: texts };
    }

    function safeName(text) {
        var s = String(text || "sequence").replace(/[^A-Za-z0-9._ -]+/g, "_").replace(/^[ .]+|[ .]+$/g, "");
        return (s || "sequence").slice(0, 80);
    }

    function languageName(lang) { return LANGUAGE_NAMES[lang] || lang; }

    /* What a caption file holds, for the user: "English", or "English, Ana" when it is one speaker's. */
    function fileLabel(f) {
        return languageName(f.language) + (f.speaker_name ? ", " + f.speaker_name : "");
    }

    // ---- speakers ------------------------------------------------------------------------------------------
    // speaker_layout: "tracks" (one caption track per speaker and language) or "labels" (one track per language,
    // each turn starting with the speaker's name label, as the engine writes it with speaker_marks "label")
    var SPEAKER_LAYOUTS = { tracks: true, labels: true };

    function defaultSpeakerName(id) {
        var m = /^S(\d+)$/.exec(String(id));
        return m ? "Speaker " + Number(m[1]) : String(id);
    }

    /* Speaker id -> name: the engine's speakers list, then any id found only on cues. */
    function speakerNames(result) {
        var names = {}, order = [];
        (result.speakers || []).forEach(function (s) {
            if (s && s.id && !names.hasOwnProperty(s.id)) { names[s.id] = s.name || defaultSpeakerName(s.id); order.push(s.id); }
        });
        (result.cues || []).forEach(function (c) {
            (c.speakers || []).forEach(function (id) {
                if (!names.hasOwnProperty(id)) { names[id] = defaultSpeakerName(id); order.push(id); }
            });
        });
        return { names: names, order: order };
    }

    function hasSpeakers(result) {
        return (result.cues || []).some(function (c) { return c.speakers && c.speakers.length; });
    }

    /* The engine options for the speaker choices; a UserError when a layout is asked for with speakers off. */
    function speakerOptions(options) {
        var out = {}, names = options.speaker_names;
        if (typeof names === "string") names = names.split(",");
        names = (names || []).map(function (n) { return String(n).trim(); }).filter(Boolean);
        var speakers = options.speakers;
        if (speakers !== undefined && speakers !== null && speakers !== "" && speakers !== "off") out.speakers = speakers;
        if (names.length) {
            out.speaker_names = names;
            if (out.speakers === undefined) out.speakers = "auto"; // naming speakers asks for them
        }
        var layout = options.speaker_layout;
        if (layout) {
            if (!SPEAKER_LAYOUTS[layout]) throw UserError("Unknown speaker layout " + JSON.stringify(layout) +
                                                          ": use one track per speaker or labels.");
            if (out.speakers === undefined) {
                throw UserError("One caption track per speaker, or name labels, needs speakers: set Speakers to " +
                                "Detect or a number of speakers (or give their names), or choose No speaker marks.");
            }
            if (layout === "labels") out.speaker_marks = "label";
        }
        return out;
    }

    /*
     * One SRT per language and speaker (the speaker who starts a cue owns it: a two-speaker cue keeps its dashed
     * lines on its first speaker's track; a cue without a speaker goes to "No speaker"), each cue in exactly one
     * file. Returns [{language, speaker, speaker_name, path, name, count, texts}].
     */
    function writeSpeakerSrtFiles(deps, result, clock, outDir, baseName) {
        var cues = result.cues || [];
        var languages = result.languages && result.languages.length ? result.languages : [result.source_language];
        var who = speakerNames(result);
        var files = [];
        deps.fs.mkdirSync(outDir, { recursive: true });
        languages.forEach(function (lang) {
            var groups = {}, order = who.order.slice();
            cues.forEach(function (c) {
                var text = c.text && c.text[lang];
                if (!text || !String(text).trim()) return;
                var owner = c.speakers && c.speakers.length ? c.speakers[0] : "";
                if (!groups[owner]) groups[owner] = [];
                groups[owner].push(c);
            });
            if (groups[""]) order.push("");
            var total = 0;
            order.forEach(function (id) {
                if (!groups[id]) return;
                var srt = srtText(groups[id], lang, clock.rate_num, clock.rate_den);
                var speakerName = id ? who.names[id] : "No speaker";
                var name = baseName + "." + lang + "." + safeName(speakerName) + ".srt";
                var file = deps.path.join(outDir, name);
                deps.fs.writeFileSync(file, srt.text, "utf8");
                total += srt.count;
                files.push({ language: lang, speaker: id || null, speaker_name: speakerName, path: file, name: name,
                             count: srt.count, texts: srt.texts });
            });
            var all = srtText(cues, lang, clock.rate_num, clock.rate_den).count;
            if (total !== all) {  // every cue in one file: a bug here would lose captions silently
                throw new Error("speaker files hold " + total + " of " + all + " " + languageName(lang) + " captions");
            }
        });
        return files;
    }

    /* The instructions to place the SRT files by hand; every failure after the files exist ends with them. */
    function handImportHelp(files) {
        return files.map(function (f) {
            return "- " + fileLabel(f) + ": " + f.path + (f.error ? " (" + f.error + ")" : "");
        }).join("\n") + "\n\nImport each file with File > Import, then drag it into the sequence at its very start " +
            "(the first frame), or use Window > Text > Captions > Import captions from file.";
    }

    /* One SRT per language from the engine's frames, into outDir. Returns [{language, path, name, count, texts}]. */
    function writeSrtFiles(deps, result, clock, outDir, baseName) {
        var cues = result.cues || [];
        var languages = result.languages && result.languages.length ? result.languages : [result.source_language];
        var files = [];
        deps.fs.mkdirSync(outDir, { recursive: true });
        languages.forEach(function (lang) {
            var srt = srtText(cues, lang, clock.rate_num, clock.rate_den);
            if (!srt.count) return;
            var name = baseName + "." + lang + ".srt";
            var file = deps.path.join(outDir, name);
            deps.fs.writeFileSync(file, srt.text, "utf8");
            files.push({ language: lang, path: file, name: name, count: srt.count, texts: srt.texts });
        });
        return files;
    }

    function xmlEscape(s) {
        return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
            .replace(/"/g, "&quot;");
    }

    function count(text, needle) {
        var n = 0, i = text.indexOf(needle);
        while (needle && i >= 0) { n += 1; i = text.indexOf(needle, i + needle.length); }
        return n;
    }

    /*
     * The sequence as Premiere holds it, as text: the host exports the sequence alone as a project
     * (Sequence.exportAsProject: "a new project containing only the given sequence and its constituent media"),
     * a gzip-compressed XML file. {supported: false, reason} when this Premiere cannot.
     */
    async function snapshot(deps, sequenceId, workDir, label) {
        var projectPath = deps.path.join(workDir, "readback-" + label + ".prproj");
        var exported = await deps.host.exportSequenceProject(sequenceId, projectPath);
        if (!exported || !exported.ok) return { supported: false, reason: exported && exported.error };
        try {
            var raw = deps.fs.readFileSync(projectPath);
            var text = (raw[0] === 0x1f && raw[1] === 0x8b ? deps.zlib.gunzipSync(raw) : raw).toString("utf8");
            return { supported: true, text: text };
        } catch (e) {
            return { supported: false, reason: "could not read the exported project (" + e.message + ")" };
        }
    }

    /*
     * Read back what Premiere placed: a caption track made from an SRT makes that SRT one of the sequence's media.
     * A file counts as placed when the sequence exported after the import names it (the names carry the job id,
     * so an earlier run's track cannot pass for it) or holds its first and last caption text more often than the
     * export made before the import did. Returns {supported, placed: {path: bool}} or {supported: false, reason}.
     */
    function readBack(before, after, files) {
        if (!after.supported) return after;
        var placed = {};
        files.forEach(function (f) {
            var byName = count(after.text, f.name) > (before.supported ? count(before.text, f.name) : 0);
            var byText = before.supported && [f.texts[0], f.texts[f.texts.length - 1]].every(function (t) {
                return count(after.text, t) + count(after.text, xmlEscape(t)) >
                    count(before.text, t) + count(before.text, xmlEscape(t));
            });
            placed[f.path] = byName || byText;
        });
        return { supported: true, placed: placed };
    }

    /*
     * Import the SRT files onto the exported sequence (by id) and read them back.
     * Returns the panel's final {ok, verified, files, results, message}.
     */
    async function placeCaptions(deps, info, files, workDir, outDir) {
        var clock = { rate_num: info.rate_num, rate_den: info.rate_den, ticks_per_frame: info.ticks_per_frame,
                      zero_point: info.zero_point, timebase_ticks: info.timebase_ticks,
                      zero_point_ticks: info.zero_point_ticks, start_frame: info.start_frame, rate: info.rate,
                      name: info.name };
        var request = files.map(function (f) { return { language: f.language, path: f.path, name: f.name }; });
        var before = await snapshot(deps, info.sequence_id, workDir, "before");
        var imported = await deps.host.importCaptions(info.sequence_id, clock, request);
        var seqName = "\u201c" + info.name + "\u201d";
        if (!imported || !imported.ok && !imported.results) {
            var why = imported && imported.refused ? imported.error :
                "Premiere could not add the caption tracks (" + ((imported && imported.error) || "no answer") + ").";
            return { ok: false, files: files, results: [], message: why + "\n\nThe captions are in these files:\n" +
                     handImportHelp(files) };
        }
        var results = imported.results;
        var failed = results.filter(function (r) { return !r.ok; });
        if (failed.length) {
            return { ok: false, files: files, results: results, message:
                "Some caption tracks could not be created on " + seqName + ":\n" + handImportHelp(failed) };
        }
        var back = readBack(before, await snapshot(deps, info.sequence_id, workDir, "after"), files);
        var summary = files.map(function (f) { return fileLabel(f) + ": " + f.count + " captions"; })
            .join(", ");
        if (!back.supported) {
            return { ok: true, verified: false, files: files, results: results, message:
                "Premiere reports that it made the caption tracks on " + seqName + " (" + summary + "), but this " +
                "Premiere version gives the panel no way to read them back" +
                (back.reason ? " (" + back.reason + ")" : "") + ": check the caption tracks in the timeline. " +
                "Files: " + outDir };
        }
        var missing = files.filter(function (f) { return !back.placed[f.path]; });
        if (missing.length) {
            return { ok: false, verified: true, files: files, results: results, message:
                "Premiere said it made the caption tracks, but reading " + seqName + " back does not show them. " +
                "Check the caption tracks in the timeline; for any that are missing:\n" +
                handImportHelp(missing.map(function (f) {
                    return { language: f.language, speaker_name: f.speaker_name, path: f.path,
                             error: "not found in the sequence" };
                })) };
        }
        return { ok: true, verified: true, files: files, results: results, message:
            summary + " added as caption tracks to " + seqName + " and read back from Premiere. Files: " + outDir };
    }

    /*
     * Which job captioned each sequence: <config>/editor-jobs.json (the Resolve scripts keep theirs in the same
     * file), "premiere:<sequence id>" -> {job, version, sequence}. Update captions finds the job by it.
     */
    function jobRecords(deps, eng) {
        var file = deps.path.join(eng.config, "editor-jobs.json"), text, records = null;
        try { text = deps.fs.readFileSync(file, "utf8"); } catch (e) { return {}; }  // none yet
        try { records = JSON.parse(text); } catch (e) { records = null; }
        if (!records || typeof records !== "object" || Array.isArray(records)) {
            // left as it is: the Resolve scripts keep their jobs in it too
            throw UserError("CaptionBridge's record of which job captioned which sequence (" + file + ") cannot " +
                            "be read (not a JSON object). Move it away or repair it, then try again; it is left " +
                            "as it is until then.");
        }
        return records;
    }

    function recordJob(deps, eng, key, record) {
        var file = deps.path.join(eng.config, "editor-jobs.json"), records;
        try { records = jobRecords(deps, eng); } catch (e) { return; }  // never overwrite what cannot be read
        records[key] = record;
        // plain ASCII, as the Python and Lua scripts write it, whatever encoding another reader assumes
        var text = JSON.stringify(records, null, 1).replace(/[\u007f-\uffff]/g, function (c) {
            return "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4);
        });
        try {
            deps.fs.writeFileSync(file + ".part", text, "utf8");
            deps.fs.renameSync(file + ".part", file);
        } catch (e) { /* the captions are placed; Update captions then looks the job up by the sequence's name */ }
    }

    function hostOk(answer, fallback) {
        if (!answer || !answer.ok) throw UserError((answer && answer.error) || fallback);
        return answer;
    }

    /*
     * "Generate captions": sequence clock -> engine health -> export the sequence (by id) -> engine job ->
     * SRT files -> caption tracks on the same sequence -> read back. The temporary folder is always removed.
     * options: { language, translate_to, preset, tracks, model, device, output_dir, poll_ms, timeouts, cancel,
     *            speakers ("auto" | n | null), speaker_names ("Ana,Ben" | [..]), speaker_layout ("tracks" |
     *            "labels" | null) }
     * onProgress(stage, percent, eta)
     */
    async function generateCaptions(deps, options, onProgress) {
        options = options || {};
        onProgress = onProgress || function () {};
        var cancel = options.cancel || canceller();
        var opts = Object.assign({}, options, { cancel: cancel });
        var cancelledResult = { ok: false, cancelled: true, message: "Cancelled; nothing changed." };
        var work = null;
        try {
            var speakerEngineOptions = speakerOptions(options);  // refused before anything is exported
            var info = hostOk(await deps.host.sequenceInfo(), "Premiere did not describe the active sequence.");
            onProgress("checking the engine", 0, null);
            var eng = await engine(deps, opts);
            cancel.check();
            work = deps.fs.mkdtempSync(deps.path.join(deps.os.tmpdir(), "captionbridge-"));
            var xmlPath = deps.path.join(work, safeName(info.name) + ".xml");
            onProgress("exporting sequence", 0, null);
            hostOk(await deps.host.exportSequence(info.sequence_id, xmlPath),
                   "Premiere could not export the sequence.");
            cancel.check();

            var engineOptions = { formats: ["srt", "json"] };
            ["language", "translate_to", "preset", "tracks", "model", "device"].forEach(function (k) {
                if (options[k] !== undefined && options[k] !== null && options[k] !== "") engineOptions[k] = options[k];
            });
            Object.assign(engineOptions, speakerEngineOptions);
            var ran = await runJob(deps, eng, xmlPath, engineOptions, opts, onProgress);
            if (ran.cancelled) return cancelledResult;
            var result = ran.result;
            if (String(result.timeline.rate) !== info.rate) {
                throw UserError("The engine read the sequence at " + result.timeline.rate + " fps but Premiere says " +
                                info.rate + ": captions would drift, so none were added.");
            }
            if (!(result.cues || []).length) {
                return { ok: true, message: "No speech was found in the sequence; no captions were added." };
            }
            cancel.check();
            var outDir = deps.path.join(options.output_dir || deps.path.join(deps.os.homedir(), "Documents",
                                                                              "CaptionBridge"),
                                        safeName(info.name) + " " + ran.job.id.slice(0, 8));
            // the job id in the names tells this run's caption tracks from an earlier run's on the same sequence
            var base = safeName(info.name) + " " + ran.job.id.slice(0, 8);
            var bySpeaker = options.speaker_layout === "tracks" && hasSpeakers(result);
            var files = bySpeaker ? writeSpeakerSrtFiles(deps, result, info, outDir, base) :
                writeSrtFiles(deps, result, info, outDir, base);
            cancel.check();
            // From here Premiere is being changed: Cancel no longer applies.
            onProgress("adding caption tracks", 100, null);
            var placed = await placeCaptions(deps, info, files, work, outDir);
            if (placed.ok) {  // what Review captions and Update captions work on for this sequence
                recordJob(deps, eng, "premiere:" + info.sequence_id, { job: ran.job.id, version: 0,
                                                                      sequence: info.name });
            }
            if (options.speaker_layout && !hasSpeakers(result)) {
                placed.message += "\nNo speakers were found in these captions, so each language is on one track " +
                    "without speaker marks.";
            }
            return placed;
        } catch (e) {
            if (e.cancelled) return cancelledResult;
            throw e;
        } finally {
            if (work) {
                try {
                    if (deps.fs.rmSync) deps.fs.rmSync(work, { recursive: true, force: true });
                    else deps.fs.rmdirSync(work, { recursive: true }); // Node before 14.14
                } catch (e) { /* best effort: it is in the system's temporary folder */ }
            }
        }
    }

    var api = { TIMEOUTS: TIMEOUTS, UserError: UserError, canceller: canceller, configDir: configDir,
                readEngine: readEngine, engine: engine, request: request, requestJson: requestJson, runJob: runJob,
                frameMsCeil: frameMsCeil, srtText: srtText, safeName: safeName, writeSrtFiles: writeSrtFiles,
                handImportHelp: handImportHelp, snapshot: snapshot, readBack: readBack, placeCaptions: placeCaptions,
                generateCaptions: generateCaptions, languageName: languageName, jobRecords: jobRecords,
                recordJob: recordJob, fileLabel: fileLabel, speakerOptions: speakerOptions,
                speakerNames: speakerNames, hasSpeakers: hasSpeakers, writeSpeakerSrtFiles: writeSpeakerSrtFiles };

    if (typeof module !== "undefined" && module.exports) module.exports = api;
    root.CaptionBridgeCore = api;
})(typeof window !== "undefined" ? window : this);
