"""OTIO adapter ``captionbridge_srt``: .srt files as a timeline with one Subtitle track (see otio_plugin_subtitles)."""

from captionbridge.adapters.otio_plugin_subtitles import read_subtitles, write_subtitles

FORMAT = "srt"


def read_from_string(input_str, rate=None, start_timecode=None, drop_frame=False, language="und", name=None):
    return read_subtitles(input_str, FORMAT, "<string>", rate, start_timecode, drop_frame, language, name)


def read_from_file(filepath, rate=None, start_timecode=None, drop_frame=False, language="und", name=None):
    import os

    from captionbridge.core.errors import InputError
    try:
        with open(filepath, encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise InputError(f"{filepath}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"{filepath}: cannot read ({exc.strerror})") from exc
    stem = os.path.splitext(os.path.basename(filepath))[0]
    return read_subtitles(text, FORMAT, filepath, rate, start_timecode, drop_frame, language, name or stem)


def write_to_string(input_otio, language=None):
    return write_subtitles(input_otio, FORMAT, language)
