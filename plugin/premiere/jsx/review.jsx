/*
 * CaptionBridge Premiere panel, ExtendScript side of "Update captions" (loaded by js/review.js with $.evalFile
 * beside jsx/host.jsx, whose helpers cb_json, cb_parse, cb_fail and cb_findItem it uses). ES3 only.
 *
 * cb_updateCaptions(request): request is JSON [{"language", "path", "name", "label"}]; each SRT is imported and made
 * a caption track (Sequence.CAPTION_FORMAT_SUBTITLE) whose start is the sequence's first frame, and its project
 * item is named for the version ("CaptionBridge v2 English"). Premiere has no scripting call that removes a
 * caption track: the panel tells the user which older tracks to delete.
 */
function cb_updateCaptions(request) {
    try {
        var seq = app.project && app.project.activeSequence;
        if (!seq) return cb_fail("Open the captioned sequence in the Timeline panel, then click Update captions.");
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
            } else if (seq.createCaptionTrack(item, 0, format) === false) {
                result.error = "Premiere refused to make a caption track from " + entry.name;
            } else {
                result.ok = true;
                try { if (entry.label) item.name = entry.label; } catch (e) { /* the name is cosmetic */ }
            }
            if (!result.ok) allOk = false;
            results.push(result);
        }
        return cb_json({ ok: allOk, results: results });
    } catch (e) {
        return cb_fail("Update captions failed in Premiere's scripting host: " + e);
    }
}
