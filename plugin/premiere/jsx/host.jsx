/*
 * CaptionBridge - ExtendScript host for the Premiere Pro panel (CEP).
 *
 * ExtendScript is ES3: no JSON object in older hosts, no Array.prototype.indexOf, no let/const. Every function
 * returns a JSON string (the panel parses it); errors come back as {"ok": false, "error": "..."} with a message a
 * user can act on, never as an exception.
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
             drop_frame: !!CB_DROP_FRAME_FORMATS[display] && (nominal === 30 || nominal === 60),
             video_display_format: display };
}

function cb_sequenceInfo() {
    if (!app.project) return cb_fail("Open a project first.");
    var seq = app.project.activeSequence;
    if (!seq) return cb_fail("Open a sequence in the Timeline panel first, then click Generate captions.");
    var clock = cb_clock(seq);
    if (!clock) return cb_fail("Premiere did not report the sequence's frame rate.");
    clock.ok = true;
    clock.name = seq.name;
    clock.sequence_id = seq.sequenceID;
    return cb_json(clock);
}

/* Export the active sequence as FCP7 XML (xmeml) to path. */
function cb_exportSequence(path) {
    var seq = app.project && app.project.activeSequence;
    if (!seq) return cb_fail("Open a sequence in the Timeline panel first, then click Generate captions.");
    var ok = seq.exportAsFinalCutProXML(path, 1 /* suppress UI */);
    var file = new File(path);
    if (!ok || !file.exists || file.length === 0) {
        return cb_fail("Premiere could not export the sequence as Final Cut Pro XML to " + path +
                       ". Check the folder is writable and the sequence is not empty.");
    }
    return cb_json({ ok: true, path: path });
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

/*
 * Import one SRT per language and make a caption track of each (Sequence.CAPTION_FORMAT_SUBTITLE), starting at
 * the sequence's first frame (the SRT counts from 00:00:00,000 = first frame). request: JSON
 * [{"language": "en", "path": "/abs/x.en.srt", "name": "x.en.srt"}, ...].
 */
function cb_importCaptions(request) {
    var seq = app.project && app.project.activeSequence;
    if (!seq) return cb_fail("The sequence was closed while captions were made; open it and try again.");
    var items = cb_parse(request), results = [], allOk = true;
    var format = (typeof Sequence !== "undefined" && Sequence.CAPTION_FORMAT_SUBTITLE !== undefined) ?
        Sequence.CAPTION_FORMAT_SUBTITLE : 6;
    var bin = app.project.rootItem;
    for (var i = 0; i < items.length; i++) {
        var entry = items[i], result = { language: entry.language, path: entry.path, ok: false };
        var imported = app.project.importFiles([entry.path], true, bin, false);
        var item = imported ? cb_findItem(bin, entry.path, entry.name) : null;
        if (!item) {
            result.error = "Premiere did not import " + entry.path;
        } else if (typeof seq.createCaptionTrack !== "function") {
            result.error = "This Premiere version cannot create caption tracks from a script (needs 2022 or later)";
        } else {
            var made = seq.createCaptionTrack(item, 0, format);
            if (made === false) result.error = "Premiere refused to make a caption track from " + entry.name;
            else result.ok = true;
        }
        if (!result.ok) allOk = false;
        results.push(result);
    }
    return cb_json({ ok: allOk, results: results });
}
