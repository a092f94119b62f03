"""OTIO adapter ``captionbridge_vtt``: .vtt files as a timeline with one Subtitle track (see
otio_plugin_subtitles)."""

from captionbridge.adapters.otio_plugin_subtitles import read_subtitle_file, read_subtitles, write_subtitles

FORMAT = "vtt"


def read_from_string(input_str, rate=None, start_timecode=None, drop_frame=False, language="und", name=None):
    return read_subtitles(input_str, FORMAT, "<string>", rate, start_timecode, drop_frame, language, name)


def read_from_file(filepath, rate=None, start_timecode=None, drop_frame=False, language="und", name=None):
    return read_subtitle_file(filepath, FORMAT, rate, start_timecode, drop_frame, language, name)


def write_to_string(input_otio, language=None):
    return write_subtitles(input_otio, FORMAT, language)
