"""Editor round-trip outputs at feature length: OTIO subtitle tracks, FCPXML captions, FCP7 Text titles.

    python benchmarks/bench_editor_outputs.py [cues ...]

Prints CPU seconds per step for a bilingual document (default 2,000 and 5,000 cues per language, 8 words per
cue) on a 23.976 timeline starting at 01:00:00:00. Target: a 2-hour feature (about 2,000 cues) in under 2 CPU
seconds per output on one core.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import opentimelineio as otio  # noqa: E402
from fixtures.editor_roundtrip import make_document, make_timeline  # noqa: E402

from captionbridge.adapters import otio_subtitles as subs  # noqa: E402
from captionbridge.adapters.fcpxml_captions import read_fcpxml_captions, write_fcpxml_captions  # noqa: E402
from captionbridge.adapters.xmeml_titles import write_xmeml_titles  # noqa: E402


def cpu(label: str, fn, *args):
    start = time.process_time()
    result = fn(*args)
    print(f"  {label:<28} {time.process_time() - start:6.2f} s")
    return result


def main(counts: list[int]) -> None:
    out = Path(tempfile.mkdtemp(prefix="cb-bench-"))
    for n in counts:
        doc = make_document("23.976@01h", n)
        timeline = make_timeline(doc)
        print(f"{n} cues x {len(doc.languages)} languages, {len(doc.words)} words")
        path = cpu("write .captions.otio", subs.write_otio_with_subtitles, timeline, doc, out / "a.otio")
        back = cpu("read .captions.otio", otio.adapters.read_from_file, str(path))
        cpu("document_from_otio", subs.document_from_otio, back)
        fcpxml = cpu("write FCPXML captions", write_fcpxml_captions, doc, out / "a.fcpxml")
        cpu("parse FCPXML captions", read_fcpxml_captions, fcpxml)
        cpu("write xmeml Text titles", write_xmeml_titles, doc, out / "a.xml")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 5000])
