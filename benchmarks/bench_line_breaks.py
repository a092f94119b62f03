"""Line-break quality and hard-rule conformance of the caption composer on hand-annotated English and Chinese
text.

    python benchmarks/bench_line_breaks.py [--quick]

Data: benchmarks/data/line_breaks_en.txt and line_breaks_zh.txt, one paragraph per line, "|" marking every
point where a subtitler would accept a break (annotated by hand, before the composer ran; see the files'
headers). Each paragraph gets synthetic word timing (duration by length, pauses after punctuation; Chinese one
character per word as Whisper gives it) and is composed at 23.976 and 25 fps with the Netflix preset of its
language.

Measures
- preferred line breaks: % of line breaks inside cues at a marked point or after sentence/clause punctuation
  where the rules allow a break there (``after_punctuation``: the text before the break, closing quotes
  stripped, ends in . ? ! … , ; : — and the like; not a closing quote alone, not a decimal point or thousands
  separator) (target >= 95 %);
- preferred cue breaks: the same for boundaries between cues inside a paragraph;
- hard-rule conformance: % of cues with no hard violation from ``validate_cues`` (target 100 %);
- split sentences: sentences that the composer lays out as one cue on their own (they fit the preset's lines,
  characters and duration) but that the paragraph's composition splits across cues (issue 14: "...rely on
  solar" | "and satellite weather reports."); fragments: cues shorter than 1.5 s that are not a whole sentence
  ("By seven,");
- composer speed: words per second on a long stream (all paragraphs repeated).

Sets and what each was used for (every data file's header says the same): dev, held-out, test, fresh and
unseen have all been seen and most were tuned on; the FROZEN sets (line_breaks_*_frozen.txt) are the honest
figure. They are scored once per change of the rules (the composer's source files are hashed:
``rules_fingerprint``), each score is appended to results/line_breaks_frozen_log.json, and only counts are
reported: their misses are never printed.

Writes benchmarks/results/line_breaks[-quick].json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import time
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"

from captionbridge.core.captions.compose import compose_cues  # noqa: E402
from captionbridge.core.captions.validate import HARD, validate_cues  # noqa: E402
from captionbridge.core.model import Word  # noqa: E402
from captionbridge.core.timeline.timebase import Timebase  # noqa: E402

PUNCT = set(".,;:!?…。，；：！？、—")
CLOSERS = set("\"'”’»」』）)]")
# Where the rules (Netflix/BBC, and the composer's docstring) put a break after punctuation: after the end of
# a sentence or of a clause. Written here, not imported, so the benchmark does not agree with the code by
# construction.
SENTENCE_PUNCT = set(".?!…。？！")
CLAUSE_PUNCT = set(",;:，；：、—–")
FULL = str.maketrans("?!:;", "？！：；")
DROPPED = set("，。,.")
PRESETS = {"en": "netflix-en", "zh": "netflix-zh"}
# (language, set name, file), in the order they were written:
# - "dev": used while writing the composer (wh-words, particles, "of" rules; NEUTRAL raised from 10 to 15 on
# it);
# - "held-out": written next; its first run gave en 91.3 %, zh 54.5 % (79.4 % together) and its errors led to
# three
#   more rules (object pronouns, Chinese localizers, more Chinese prepositions), so it is no longer unseen;
# - "test": written after that, never used to change anything;
# - "fresh": written and annotated later still (documentary/interview speech, 24 paragraphs each), measured
# once
#   before the next round of rule changes (FRESH_FIRST_RUN); those changes were general rules, not fixes of
#   particular sentences, but the set has been seen since;
# - "unseen": written after those changes were committed and run once for the figure: the honest one now.
SETS = [
    ("en", "fresh", "line_breaks_en_fresh.txt"),
    ("zh", "fresh", "line_breaks_zh_fresh.txt"),
    ("en", "unseen", "line_breaks_en_unseen.txt"),
    ("zh", "unseen", "line_breaks_zh_unseen.txt"),
    ("en", "dev", "line_breaks_en.txt"),
    ("en", "held-out", "line_breaks_en_heldout.txt"),
    ("en", "test", "line_breaks_en_test.txt"),
    ("zh", "dev", "line_breaks_zh.txt"),
    ("zh", "held-out", "line_breaks_zh_heldout.txt"),
    ("zh", "test", "line_breaks_zh_test.txt"),
]
HELD_OUT_FIRST_RUN = {"en": 91.3, "zh": 54.5, "all": 79.4}
FRESH_FIRST_RUN = {
    "en": 85.2,
    "zh": 60.0,
    "all": 74.5,
}  # first run, before any rule was changed (23/27, 12/20)
UNSEEN_FIRST_RUN = {
    "en": 66.7,
    "zh": 90.0,
    "all": 75.0,
}  # first run, on the rules of commit 350dcb3 (12/18, 9/10)
# The frozen sets: never tuned on, never edited (pinned), misses never shown; scored once per rule change.
FROZEN = {
    "en": ("line_breaks_en_frozen.txt", "ddce92ec18ac930993c4e1a8fb2633c65bd036e208a5ed123e0467fd8101e87a"),
    "zh": ("line_breaks_zh_frozen.txt", "6107e295fddb88abc949a55dcc488faf8388c0382cafd073c7bd17692cad8ddb"),
}
FROZEN_LOG = RESULTS / "line_breaks_frozen_log.json"
# The files whose change is a change of the line-breaking rules.
RULE_FILES = ("core/captions/line_breaking.py", "core/captions/compose.py", "core/captions/presets.py")
REPO = HERE.parent


def load(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def parse(paragraph: str, language: str) -> tuple[list[str], set[int], str]:
    """Tokens (words, or characters in Chinese), the marked break points (as counts of non-space characters
    before them) and the clean text."""
    marks, core = set(), 0
    clean = []
    for ch in paragraph:
        if ch == "|":
            marks.add(core)
            continue
        clean.append(ch)
        if not ch.isspace():
            core += 1
    text = " ".join("".join(clean).split())
    tokens = text.split() if language == "en" else [c for c in text if not c.isspace()]
    return tokens, marks, text


def timed_words(tokens: list[str], timebase: Timebase, language: str) -> list[Word]:
    words, t = [], 0.5
    for tok in tokens:
        d = (0.1 + 0.055 * len(tok)) if language == "en" else 0.2
        words.append(Word.at(tok, t, t + d, timebase, language=language))
        t += d + 0.04 + (0.3 if tok[-1] in PUNCT else 0)
    return words


def _core(text: str) -> list[str]:
    return [c for c in text.translate(FULL) if not c.isspace()]


def break_positions(cues, text: str, language: str) -> tuple[list[int], list[int]]:
    """(line-break positions, cue-break positions) as counts of non-space characters of ``text`` before
    them."""
    para = _core(text)
    line_breaks, cue_breaks = [], []
    pos = 0
    for ci, cue in enumerate(cues):
        lines = cue.text[language].split("\n")
        for li, line in enumerate(lines):
            for ch in _core(line):
                while pos < len(para) and para[pos] != ch and (para[pos] in DROPPED or para[pos] in CLOSERS):
                    pos += 1
                if pos >= len(para) or para[pos] != ch:
                    raise AssertionError(f"line {line!r} does not match the text at {pos}")
                pos += 1
            while pos < len(para) and (para[pos] in DROPPED or para[pos] in CLOSERS):
                pos += 1  # punctuation a Chinese line dropped at its end belongs to it
            if li < len(lines) - 1:
                line_breaks.append(pos)
        if ci < len(cues) - 1:
            cue_breaks.append(pos)
    return line_breaks, cue_breaks


def after_punctuation(para: list[str], pos: int) -> bool:
    """True where the rules accept a break after punctuation: the characters before ``pos``, closing quotes
    and brackets stripped, end a sentence or a clause. A closing quote alone does not; neither does a "." or
    "," with digits on both sides (3.14, 1,000)."""
    k = pos - 1
    while k >= 0 and para[k] in CLOSERS:
        k -= 1
    if k < 0 or (para[k] not in SENTENCE_PUNCT and para[k] not in CLAUSE_PUNCT):
        return False
    if para[k] in ".,，" and k > 0 and para[k - 1].isdigit() and pos < len(para) and para[pos].isdigit():
        return False
    return True


def preferred(pos: int, marks: set[int], text: str) -> bool:
    return pos in marks or (pos > 0 and after_punctuation(_core(text), pos))


def file_sha256(name: str) -> str:
    return hashlib.sha256((DATA / name).read_bytes()).hexdigest()


def rules_fingerprint() -> str:
    """sha256 over the composer's rule files: a new value is a new version of the rules."""
    digest = hashlib.sha256()
    for rel in RULE_FILES:
        digest.update(rel.encode() + b"\0" + (REPO / rel).read_bytes())
    return digest.hexdigest()[:16]


def score_frozen() -> dict:
    """Counts on the frozen sets (never the misses), scored once per version of the rules: a version already
    in the log is answered from the log. Refuses to score an edited frozen file."""
    for language, (name, pinned) in FROZEN.items():
        if file_sha256(name) != pinned:
            raise RuntimeError(
                f"{name} was edited (sha256 differs from the pinned one): the frozen set may not "
                "change; write a new set instead"
            )
    fingerprint = rules_fingerprint()
    log = json.loads(FROZEN_LOG.read_text(encoding="utf-8")) if FROZEN_LOG.exists() else []
    for entry in log:
        if entry["rules"] == fingerprint:
            return {**entry, "scored_now": False}
    entry = {"rules": fingerprint, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        entry["commit"] = (
            subprocess.run(
                ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or None
        )
    except OSError:
        entry["commit"] = None
    good = total = 0
    for language, (name, _) in FROZEN.items():
        counts = [evaluate(language, name, rate) for rate in (Fraction(24000, 1001), Fraction(25))]
        g, t = sum(c["line_breaks_preferred"] for c in counts), sum(c["line_breaks"] for c in counts)
        entry[language] = {
            "preferred": g,
            "line_breaks": t,
            "pct": _pct(g, t),
            "hard_violations": sum(c["cues_with_hard_violations"] for c in counts),
            "words_lost": sum(c["words"] - c["words_shown"] for c in counts),
        }
        good, total = good + g, total + t
    entry["all_pct"] = _pct(good, total)
    log.append(entry)
    FROZEN_LOG.parent.mkdir(parents=True, exist_ok=True)
    FROZEN_LOG.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    return {**entry, "scored_now": True}


def evaluate(language: str, name: str, rate: Fraction) -> dict:
    preset = PRESETS[language]
    tb = Timebase(rate)
    stats = {
        "paragraphs": 0,
        "cues": 0,
        "line_breaks": 0,
        "line_breaks_preferred": 0,
        "cue_breaks": 0,
        "cue_breaks_preferred": 0,
        "cues_with_hard_violations": 0,
        "words": 0,
        "words_shown": 0,
        "poor_line_breaks": [],
        "fitting_sentences": 0,
        "split_fitting_sentences": 0,
        "fragments": 0,
        "split_examples": [],
        "fragment_examples": [],
    }
    for paragraph in load(name):
        tokens, marks, text = parse(paragraph, language)
        words = timed_words(tokens, tb, language)
        cues = compose_cues(words, tb, preset, language)
        stats["paragraphs"] += 1
        stats["cues"] += len(cues)
        stats["words"] += len(words)
        stats["words_shown"] += sum(len(c.words) for c in cues)
        bad = {v.cue for v in validate_cues(cues, tb, preset, language) if v.severity == HARD}
        stats["cues_with_hard_violations"] += len(bad)
        lines, cue_breaks = break_positions(cues, text, language)
        stats["line_breaks"] += len(lines)
        stats["cue_breaks"] += len(cue_breaks)
        for pos in lines:
            if preferred(pos, marks, text):
                stats["line_breaks_preferred"] += 1
            else:
                stats["poor_line_breaks"].append(_show(text, pos))
        stats["cue_breaks_preferred"] += sum(preferred(p, marks, text) for p in cue_breaks)
        _segmentation(stats, words, cues, tb, preset, language)
    stats["line_break_preferred_pct"] = _pct(stats["line_breaks_preferred"], stats["line_breaks"])
    stats["cue_break_preferred_pct"] = _pct(stats["cue_breaks_preferred"], stats["cue_breaks"])
    stats["hard_rule_conformance_pct"] = _pct(
        stats["cues"] - stats["cues_with_hard_violations"], stats["cues"]
    )
    return stats


def _segmentation(stats: dict, words, cues, tb: Timebase, preset: str, language: str) -> None:
    """Split fitting sentences and short fragments (see the module docstring), added into ``stats``."""
    ends = ".?!…。？！"
    sentences, start = [], 0
    for k, w in enumerate(words):
        if w.text.rstrip("\"'”’»」』）)]")[-1:] in ends or k == len(words) - 1:
            sentences.append((start, k + 1))
            start = k + 1
    boundaries, count = set(), 0  # cue boundaries as word indices (each cue's words are consecutive)
    for cue in cues[:-1]:
        count += len(cue.words)
        boundaries.add(count)
    sep = "" if language == "zh" else " "
    for a, b in sentences:
        if len(compose_cues(words[a:b], tb, preset, language)) != 1:
            continue
        stats["fitting_sentences"] += 1
        if any(a < k < b for k in boundaries):
            stats["split_fitting_sentences"] += 1
            stats["split_examples"].append(sep.join(w.text for w in words[a:b])[:90])
    whole = set(sentences)
    first = 0
    for cue in cues:
        span = (first, first + len(cue.words))
        first = span[1]
        if Fraction(cue.duration) / tb.rate < Fraction(3, 2) and span not in whole:
            stats["fragments"] += 1
            stats["fragment_examples"].append(cue.text[language].replace("\n", " / "))


def _show(text: str, pos: int) -> str:
    count = 0
    for i, ch in enumerate(text):
        if count == pos:
            return (text[:i].rstrip() + " ⏎ " + text[i:].lstrip())[max(0, i - 30) : i + 30]
        if not ch.isspace():
            count += 1
    return text[-40:] + " ⏎"


def _pct(a: int, b: int) -> float:
    return round(100.0 * a / b, 1) if b else 100.0


def speed(quick: bool) -> dict:
    tb = Timebase(Fraction(24000, 1001))
    tokens = []
    for paragraph in load("line_breaks_en.txt") + load("line_breaks_en_heldout.txt"):
        tokens += parse(paragraph, "en")[0]
    repeat = 4 if quick else 30
    words = timed_words(tokens * repeat, tb, "en")
    t0, c0 = time.perf_counter(), time.process_time()
    cues = compose_cues(words, tb, "netflix-en", "en")
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    # CPU time is the stable figure on a shared machine; wall time is what a user waits
    return {
        "words": len(words),
        "cues": len(cues),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "words_per_second": round(len(words) / seconds),
        "words_per_cpu_second": round(len(words) / cpu),
    }


def run(quick: bool = False) -> dict:
    rates = [Fraction(24000, 1001)] if quick else [Fraction(24000, 1001), Fraction(25)]
    results = {
        "targets": {"line_break_preferred_pct": 95.0, "hard_rule_conformance_pct": 100.0},
        "by_language": {},
    }
    for language, set_name, file_name in SETS:
        for rate in rates:
            label = f"{language} {set_name} @{float(rate):.3f}".rstrip("0").rstrip(".")
            results["by_language"][label] = evaluate(language, file_name, rate)
    total_lines = sum(s["line_breaks"] for s in results["by_language"].values())
    good_lines = sum(s["line_breaks_preferred"] for s in results["by_language"].values())
    total_cues = sum(s["cues"] for s in results["by_language"].values())
    bad_cues = sum(s["cues_with_hard_violations"] for s in results["by_language"].values())
    results["line_break_preferred_pct"] = _pct(good_lines, total_lines)
    results["cue_break_preferred_pct"] = _pct(
        sum(s["cue_breaks_preferred"] for s in results["by_language"].values()),
        sum(s["cue_breaks"] for s in results["by_language"].values()),
    )
    results["hard_rule_conformance_pct"] = _pct(total_cues - bad_cues, total_cues)
    test = [v for k, v in results["by_language"].items() if " test " in k]
    results["test_set_line_break_preferred_pct"] = _pct(
        sum(s["line_breaks_preferred"] for s in test), sum(s["line_breaks"] for s in test)
    )
    for key, name in (("fresh", " fresh "), ("unseen", " unseen ")):
        part = [v for k, v in results["by_language"].items() if name in k]
        results[f"{key}_line_break_preferred_pct"] = _pct(
            sum(s["line_breaks_preferred"] for s in part), sum(s["line_breaks"] for s in part)
        )
    results["fresh_first_run_line_break_preferred_pct"] = FRESH_FIRST_RUN
    results["unseen_first_run_line_break_preferred_pct"] = UNSEEN_FIRST_RUN
    results["held_out_first_run_line_break_preferred_pct"] = HELD_OUT_FIRST_RUN
    results["words_lost"] = sum(s["words"] - s["words_shown"] for s in results["by_language"].values())
    fitting = sum(s["fitting_sentences"] for s in results["by_language"].values())
    results["split_fitting_sentences"] = sum(
        s["split_fitting_sentences"] for s in results["by_language"].values()
    )
    results["split_fitting_sentences_pct"] = _pct(results["split_fitting_sentences"], fitting)
    results["fragment_cues"] = sum(s["fragments"] for s in results["by_language"].values())
    results["fragment_cues_pct"] = _pct(results["fragment_cues"], total_cues)
    results["speed"] = speed(quick)
    frozen = results["frozen"] = score_frozen()
    results["summary"] = {
        "FROZEN sets (never tuned on, misses never shown), line breaks at preferred points % "
        "(target >= 95)": (
            f"{frozen['all_pct']} (en {frozen['en']['preferred']}/{frozen['en']['line_breaks']}, zh "
            f"{frozen['zh']['preferred']}/{frozen['zh']['line_breaks']}; rules {frozen['rules']}, "
            f"first scored {frozen['date']})"
        ),
        "all other sets (dev, held-out, test, fresh, unseen: all seen, most tuned on) %": results[
            "line_break_preferred_pct"
        ],
        'same, "test" sets only %': results["test_set_line_break_preferred_pct"],
        "fresh sets, first run (before the rule changes) %": FRESH_FIRST_RUN["all"],
        "fresh sets now %": results["fresh_line_break_preferred_pct"],
        "unseen sets, first run (after the rule changes) %": UNSEEN_FIRST_RUN["all"],
        "unseen sets now %": results["unseen_line_break_preferred_pct"],
        "held-out sets, first run %": HELD_OUT_FIRST_RUN["all"],
        "cue breaks at preferred points %": results["cue_break_preferred_pct"],
        "cues without a hard-rule violation % (target 100)": results["hard_rule_conformance_pct"],
        "words lost": results["words_lost"],
        "sentences that fit one cue but were split %": results["split_fitting_sentences_pct"],
        "cues under 1.5 s that are not a whole sentence %": results["fragment_cues_pct"],
        "composer words per CPU second": results["speed"]["words_per_cpu_second"],
    }
    write(results, quick)
    return results


def write(results: dict, quick: bool) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if quick else ""
    (RESULTS / f"line_breaks{suffix}.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    lines = [
        "# Caption line breaks and hard rules",
        "",
        "Hand-annotated English and Chinese paragraphs (benchmarks/data/line_breaks_*.txt), synthetic word "
        "timing, Netflix preset of each language.",
        "",
        "| set | paragraphs | cues | line breaks | at preferred points | cue breaks | at preferred points | "
        "hard-rule conformance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, s in results["by_language"].items():
        lines.append(
            f"| {label} | {s['paragraphs']} | {s['cues']} | {s['line_breaks']} | "
            f"{s['line_break_preferred_pct']} % | {s['cue_breaks']} | {s['cue_break_preferred_pct']} % | "
            f"{s['hard_rule_conformance_pct']} % |"
        )
    sp = results["speed"]
    fz = results["frozen"]
    lines += [
        "",
        f"**Frozen sets (the honest figure: written for this purpose, never tuned on, never edited, misses "
        f"never shown): {fz['all_pct']} % of line breaks at preferred points (en {fz['en']['preferred']}/"
        f"{fz['en']['line_breaks']}, zh {fz['zh']['preferred']}/{fz['zh']['line_breaks']}, at 23.976 and 25 "
        f"fps), scored once for rules {fz['rules']} on {fz['date']}.** Every score is kept in "
        "results/line_breaks_frozen_log.json.",
        "",
        "The sets below have all been seen; each data file's header says what it was used for.",
        "",
    ]
    lines += [
        "",
        f"**All: {results['line_break_preferred_pct']} % of line breaks at preferred points (target >= 95 %; "
        f'"test" sets alone: {results["test_set_line_break_preferred_pct"]} %), '
        f"{results['cue_break_preferred_pct']} % of cue breaks, {results['hard_rule_conformance_pct']} % of "
        f"cues without a hard-rule violation (target 100 %), {results['words_lost']} words lost.**",
        "",
        f"Segmentation: {results['split_fitting_sentences_pct']} % of the sentences that fit one cue on "
        "their "
        f"own were split across cues ({results['split_fitting_sentences']}); {results['fragment_cues_pct']} "
        "% "
        f"of cues ({results['fragment_cues']}) are under 1.5 s without being a whole sentence.",
        "",
        "Fresh sets (written for the second round of rules, annotated before the composer ran on them): "
        "first "
        f"run before any rule changed en {FRESH_FIRST_RUN['en']} %, zh {FRESH_FIRST_RUN['zh']} %, together "
        f"{FRESH_FIRST_RUN['all']} %; now {results['fresh_line_break_preferred_pct']} %, but their errors "
        "guided "
        "the new rules, so they are no longer unseen. Unseen sets (written after those rules were "
        "committed): "
        f"first run en {UNSEEN_FIRST_RUN['en']} %, zh {UNSEEN_FIRST_RUN['zh']} %, together "
        f"{UNSEEN_FIRST_RUN['all']} % - the honest estimate for new text; now "
        f"{results['unseen_line_break_preferred_pct']} % after three more general rules (semi-modal + to, "
        "more + than, time adverbials), so they too have been seen. Marks were never edited after a run (one "
        'remaining en miss, "moved | to the city", is a break before a preposition that the convention '
        "accepts but the annotator left unmarked).",
        "",
        "The held-out sets' first run (before the rules their errors suggested): en "
        f"{HELD_OUT_FIRST_RUN['en']} %, zh {HELD_OUT_FIRST_RUN['zh']} %, together "
        f"{HELD_OUT_FIRST_RUN['all']} %. "
        "Marks are one annotator's judgement (the author's); a break at an unmarked point is not necessarily "
        "wrong, only not one the annotator chose in advance.",
        "",
        f"Composer speed: {sp['words']} words -> {sp['cues']} cues in {sp['seconds']} s "
        f"wall, {sp['cpu_seconds']} s CPU ({sp['words_per_cpu_second']} words per CPU second, one core; "
        f"{sp['words_per_second']} words/s wall on a shared machine).",
        "",
        "Line breaks not at a preferred point:",
        "",
    ]
    for label, s in results["by_language"].items():
        for example in s["poor_line_breaks"]:
            lines.append(f"- {label}: …{example}…")
    (RESULTS / f"line_breaks{suffix}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = run(args.quick)
    print(json.dumps({k: v for k, v in results.items() if k != "by_language"}, indent=2))


if __name__ == "__main__":
    main()
