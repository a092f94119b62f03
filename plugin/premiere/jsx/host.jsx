/*
 * CaptionBridge - ExtendScript host for the Premiere Pro panel (CEP).
 *
 * ExtendScript is ES3: no JSON object in older hosts, no Array.prototype.indexOf, no let/const. Every cb_*
 * function the panel calls returns a JSON string whatever Premiere throws: its body runs inside cb_guard, so an
 * exception comes back as {"ok": false, "error": "..."} with a message a user can act on. (An uncaught exception
 * would reach the panel as CEP's bare "EvalScript error.", which is not JSON.)
 *
 * The panel names the sequence by its sequenceID at every step after the first: the user may switch sequences
 * while the engine works, and the captions must land on the sequence that was exported, at the clock it had.
 *
 * Time: Premiere counts in ticks, 254016000000 per second. sequence.timebase is ticks per frame (a string);
 * sequence.zeroPoint is the sequence start (start timecode) in ticks; videoDisplayFormat 102 / 106 are 29.97 /
 * 59.94 drop-frame.
 */

var CB_TICKS_PER_SECOND = 254016000000;
var CB_DROP_FRAME_FORMATS = { 102: true, 106: true };

function cb_quote(s) {
    var out = '"';
    s = String(s);
    for (var i = 0; i < s.length; i++) {
        var c = s.charAt(i), code = s.charCodeAt(i);
        if (c === '"') out += '\\"';
        else if (c === "\\") out += "\\\\";
        else if (c === "\n") out += "\\n";
        else if (c === "\r") out += "\\r";
        else if (c === "\t") out += "\\t";
        else if (code < 32 || code > 126) {
            var hex = code.toString(16);
            while (hex.length < 4) hex = "0" + hex;
            out += "\\u" + hex;
        } else out += c;
    }
    return out + '"';
}

function cb_json(v) {
    if (v === null || v === undefined) return "null";
    var t = typeof v;
    if (t === "boolean") return v ? "true" : "false";
    if (t === "number") return isFinite(v) ? String(v) : "null";
    if (t === "string") return cb_quote(v);
    var parts = [], k;
    if (v instanceof Array) {
        for (k = 0; k < v.length; k++) parts.push(cb_json(v[k]));
        return "[" + parts.join(",") + "]";
    }
    for (k in v) if (v.hasOwnProperty(k)) parts.push(cb_quote(k) + ":" + cb_json(v[k]));
    return "{" + parts.join(",") + "}";
}

function cb_parse(text) {
    if (typeof JSON !== "undefined" && JSON.parse) return JSON.parse(text);
    return eval("(" + text + ")"); // ES3 host without JSON: the text is produced by our own panel
}

function cb_gcd(a, b) {
    while (b) { var t = a % b; a = b; b = t; }
    return a;
}

function cb_fail(message) { return cb_json({ ok: false, error: message }); }

/* The active sequence's clock: exact rate (num/den), start frame, drop-frame. */
function cb_clock(seq) {
    var ticksPerFrame = Number(seq.timebase);
    if (!(ticksPerFrame > 0)) return null;
    var g = cb_gcd(CB_TICKS_PER_SECOND, ticksPerFrame);
    var num = CB_TICKS_PER_SECOND / g, den = ticksPerFrame / g;
    var zero = Number(seq.zeroPoint || 0);
    var startFrame = Math.round(zero / ticksPerFrame);
    var display = null;
    try { display = seq.getSettings().videoDisplayFormat; } catch (e) { display = null; }
    var nominal = Math.round(num / den);
    return { rate_num: num, rate_den: den, rate: den === 1 ? String(num) : num + "/" + den,
             ticks_per_frame: ticksPerFrame, zero_point: zero, start_frame: startFrame,
             // the DOM's own tick strings, compared exactly (a 10-hour start is past 2^53 ticks as a number)
             timebase_ticks: String(seq.timebase), zero_point_ticks: String(seq.zeroPoint || 0),
             drop_frame: !!CB_DROP_FRAME_FORMATS[display] && (nominal === 30 || nominal === 60),
             video_display_format: display };
}

/* Run fn and return its JSON; any exception becomes {"ok": false, "error": "<what> failed: <exception>"}. */
function cb_guard(what, fn) {
    try {
        return fn();
    } catch (e) {
        var detail = "";
        try { detail = String(e && e.message ? e.message : e); } catch (e2) { detail = "unknown error"; }
        try {
            return cb_fail("Premiere failed while " + what + ": " + detail);
        } catch (e3) {
            return '{"ok":false,"error":"Premiere failed while ' + what + '"}';
        }
    }
}

/* The sequence with this sequenceID, or null. */
function cb_findSequence(sequenceId) {
    var seqs = app.project.sequences;
    var n = seqs ? (seqs.numSequences !== undefined ? seqs.numSequences : seqs.length) : 0;
    for (var i = 0; i < n; i++) {
        if (seqs[i] && String(seqs[i].sequenceID) === String(sequenceId)) return seqs[i];
    }
    return null;
}

function cb_sequenceById(sequenceId) {
    if (!app.project) return null;
    if (sequenceId) return cb_findSequence(sequenceId);
    return app.project.activeSequence || null;
}

function cb_sequenceInfo() {
    return cb_guard("reading the active sequence", function () {
        if (!app.project) return cb_fail("Open a project first.");
        var seq = app.project.activeSequence;
        if (!seq) return cb_fail("Open a sequence in the Timeline panel first, then click Generate captions.");
        var clock = cb_clock(seq);
        if (!clock) return cb_fail("Premiere did not report the sequence's frame rate.");
        clock.ok = true;
        clock.name = seq.name;
        clock.sequence_id = seq.sequenceID;
        return cb_json(clock);
    });
}

/* Export the sequence with this sequenceID as FCP7 XML (xmeml) to path. */
function cb_exportSequence(sequenceId, path) {
    return cb_guard("exporting the sequence", function () {
        var seq = cb_sequenceById(sequenceId);
        if (!seq) return cb_fail("The sequence was closed or deleted; open it and click Generate captions again.");
        var ok = seq.exportAsFinalCutProXML(path, 1 /* suppress UI */);
        var file = new File(path);
        if (!ok || !file.exists || file.length === 0) {
            return cb_fail("Premiere could not export the sequence as Final Cut Pro XML to " + path +
                           ". Check the folder is writable and the sequence is not empty.");
        }
        return cb_json({ ok: true, path: path });
    });
}

function cb_findItem(folder, path, name) {
    for (var i = folder.children.numItems - 1; i >= 0; i--) {
        var item = folder.children[i];
        var media = "";
        try { media = item.getMediaPath(); } catch (e) { media = ""; }
        if (media === path || item.name === name) return item;
    }
    return null;
}

function cb_fps(clock) {
    var fps = clock.rate_num / clock.rate_den;
    return String(Math.round(fps * 1000) / 1000);
}

/*
 * Import one SRT per language and make a caption track of each (Sequence.CAPTION_FORMAT_SUBTITLE) on the sequence
 * that was exported, starting at its first frame (createCaptionTrack's startAtTime counts seconds from the
 * sequence start; the SRT counts from 00:00:00,000 = first frame). request: JSON
 * {"sequence_id": "...", "clock": {"ticks_per_frame", "zero_point", "rate_num", "rate_den", "name", ...},
 *  "items": [{"language": "en", "path": "/abs/x.en.srt", "name": "x.en.srt"}, ...]}.
 * Refuses ({"refused": true}) when that sequence is gone or its frame rate or start changed.
 */
function cb_importCaptions(request) {
    return cb_guard("adding the caption tracks", function () {
        var req = cb_parse(request), expected = req.clock || {}, results = [], allOk = true;
        var name = expected.name || "the sequence";
        if (!app.project) return cb_json({ ok: false, refused: true, error: "The project was closed while captions " +
                                           "were made; open it, then import the captions by hand." });
        var seq = cb_findSequence(req.sequence_id);
        if (!seq) {
            return cb_json({ ok: false, refused: true, error: "The sequence \u201c" + name + "\u201d is no longer " +
                             "in the project (closed or deleted while captions were made), so no caption tracks " +
                             "were added." });
        }
        var now = cb_clock(seq);
        if (!now || now.timebase_ticks !== String(expected.timebase_ticks) ||
                now.zero_point_ticks !== String(expected.zero_point_ticks)) {
            return cb_json({ ok: false, refused: true, error: "The sequence \u201c" + seq.name + "\u201d changed " +
                             "while captions were made (it was " + cb_fps(expected) + " fps starting at frame " +
                             expected.start_frame + ", now " + (now ? cb_fps(now) + " fps starting at frame " +
                             now.start_frame : "an unknown rate") + "); the captions would land on the wrong " +
                             "frames, so none were added. Generate captions again for the sequence as it is now." });
        }
        var active = app.project.activeSequence;
        if ((!active || String(active.sequenceID) !== String(seq.sequenceID)) && app.project.openSequence) {
            app.project.openSequence(seq.sequenceID); // show the sequence the captions go to
        }
        var format = (typeof Sequence !== "undefined" && Sequence.CAPTION_FORMAT_SUBTITLE !== undefined) ?
            Sequence.CAPTION_FORMAT_SUBTITLE : 6;
        var bin = app.project.rootItem;
        for (var i = 0; i < req.items.length; i++) {
            var entry = req.items[i], result = { language: entry.language, path: entry.path, ok: false };
            try {
                var imported = app.project.importFiles([entry.path], true, bin, false);
                var item = imported ? cb_findItem(bin, entry.path, entry.name) : null;
                if (!item) {
                    result.error = "Premiere did not import " + entry.path;
                } else if (typeof seq.createCaptionTrack !== "function") {
                    result.error = "This Premiere version cannot create caption tracks from a script (needs 2022 " +
                        "or later)";
                } else {
                    var made = seq.createCaptionTrack(item, 0, format);
                    if (made === false) result.error = "Premiere refused to make a caption track from " + entry.name;
                    else result.ok = true;
                }
            } catch (e) {
                result.error = "Premiere failed making a caption track from " + entry.name + ": " +
                    String(e && e.message ? e.message : e);
            }
            if (!result.ok) allOk = false;
            results.push(result);
        }
        return cb_json({ ok: allOk, sequence_id: seq.sequenceID, results: results });
    });
}

/*
 * Read-back: export the sequence alone as a project file (Sequence.exportAsProject, "a new project containing
 * only the given sequence and its constituent media"); the panel looks for its caption files in it.
 */
function cb_exportSequenceProject(sequenceId, path) {
    return cb_guard("reading the caption tracks back", function () {
        var seq = cb_sequenceById(sequenceId);
        if (!seq) return cb_fail("the sequence is no longer in the project");
        if (typeof seq.exportAsProject !== "function") {
            return cb_json({ ok: false, unsupported: true, error: "Sequence.exportAsProject is not available" });
        }
        var ok = seq.exportAsProject(path);
        var file = new File(path);
        if (ok === false || !file.exists || file.length === 0) {
            return cb_json({ ok: false, unsupported: true,
                             error: "Premiere did not export the sequence as a project" });
        }
        return cb_json({ ok: true, path: path });
    });
}
