"""Multi-voice conversations made with espeak-ng, with exact speaker turns and word times.

Each conversation has 2 to 4 voices (espeak-ng voice variants: male and female, and same-gender pairs), turns
from a short reply under one second ("Yes.", "Really?") to about 20 s of several sentences, and gaps between
turns from 0.1 s (a quick exchange) to 0.9 s. Every word keeps its speaker, so the reference turns are exact:
a turn is [first word start, last word end] of one speaker's run.

    python benchmarks/conversations.py OUT_DIR [--seed 1 --voices 3]
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
# one libespeak-ng binding per process: reuse the tests' copy of speech_corpus when it is already loaded
_corpus = sys.modules.get("captionbridge_speech_corpus") or importlib.import_module("speech_corpus")
ENGLISH, ENGLISH_HELD_OUT = _corpus.ENGLISH, _corpus.ENGLISH_HELD_OUT
SAMPLE_RATE, synth_sentence = _corpus.SAMPLE_RATE, _corpus.synth_sentence

SHORT_REPLIES = [
    "Yes.",
    "No.",
    "Really?",
    "Right.",
    "Exactly.",
    "Okay.",
    "Sure.",
    "Why?",
    "Of course.",
    "I see.",
    "Not at all.",
    "Thank you.",
    "Go on.",
    "Me too.",
]
MORE_SENTENCES = [
    "I think we should move the interview to the afternoon when the light is softer.",
    "That sounds reasonable, but the guests have already booked their flights.",
    "We can shoot the wide shots first and keep the close ups for later.",
    "The sound recordist said the wind was a problem on the roof yesterday.",
    "Let me check the schedule and call you back in ten minutes.",
    "Honestly, the first cut was far too long and nobody liked the ending.",
    "If we lose another day, the whole delivery date slips by a week.",
    "The archive footage finally arrived, and it looks better than we hoped.",
]

# (voice, gender): espeak-ng voice variants; same-gender pairs are the hard cases. Left out: variants that are
# the same voice to the speaker encoder (centroid cosine >= 0.93 on three sentences: m1~m3, f2~f5,
# f3~f4~linda, m2~m5~m6), which no listener would call different people either.
VOICES = [
    ("en-us+m3", "m"),
    ("en-us+f2", "f"),
    ("en-us+m7", "m"),
    ("en-us+f3", "f"),
    ("en-us+klatt", "m"),
    ("en-us+Alicia", "f"),
    ("en-us+m2", "m"),
]


@dataclass
class ConvWord:
    text: str
    start: float
    end: float
    speaker: str


@dataclass
class Conversation:
    name: str
    samples: np.ndarray = field(repr=False)
    words: list[ConvWord]
    voices: dict[str, str]  # speaker id -> espeak voice
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def turns(self) -> list[tuple[float, float, str]]:
        """Reference speaker turns: maximal runs of one speaker's words (gaps inside a turn belong to it)."""
        out: list[list] = []
        for w in self.words:
            if out and out[-1][2] == w.speaker:
                out[-1][1] = w.end
            else:
                out.append([w.start, w.end, w.speaker])
        return [tuple(t) for t in out]

    def save(self, folder: Path) -> Path:
        import soundfile

        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"{self.name}.wav", self.samples, self.sample_rate, subtype="PCM_16")
        (folder / f"{self.name}.json").write_text(
            json.dumps(
                {"voices": self.voices, "words": [asdict(w) for w in self.words], "turns": self.turns()},
                indent=1,
            )
        )
        return folder / f"{self.name}.wav"


def make_conversation(
    n_voices: int,
    seed: int,
    turns: int = 14,
    voices: list[str] | None = None,
    same_gender: bool = False,
    name: str | None = None,
) -> Conversation:
    """A conversation of ``turns`` turns among ``n_voices`` voices (picked by ``seed``, or ``voices``)."""
    rng = np.random.default_rng(seed)
    if voices is None:
        pool = VOICES
        if same_gender:
            gender = "m" if rng.random() < 0.6 else "f"
            pool = [v for v in VOICES if v[1] == gender]
        picks = rng.choice(len(pool), size=min(n_voices, len(pool)), replace=False)
        voices = [pool[int(i)][0] for i in picks]
    ids = {f"S{k + 1}": v for k, v in enumerate(voices)}
    sentences = ENGLISH + ENGLISH_HELD_OUT + MORE_SENTENCES
    pieces: list[np.ndarray] = [np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.float32)]
    words: list[ConvWord] = []
    t = 0.5
    speaker = None
    order = list(ids)
    for k in range(turns):
        if k < len(order):
            speaker = order[k]  # every voice speaks early
        elif len(order) == 1:
            speaker = order[0]
        else:
            speaker = str(rng.choice([s for s in order if s != speaker]))
        kind = rng.random()
        if kind < 0.25:
            texts = [str(rng.choice(SHORT_REPLIES))]  # a quick reply, under a second
        elif kind < 0.75:
            texts = [str(rng.choice(sentences)) for _ in range(int(rng.integers(1, 3)))]
        else:
            texts = [
                str(rng.choice(sentences)) for _ in range(int(rng.integers(3, 6)))
            ]  # a long turn, to ~20 s
        for n, text in enumerate(texts):
            audio, timed = synth_sentence(text, ids[speaker], words_per_minute=int(rng.integers(150, 185)))
            peak = float(np.max(np.abs(audio))) or 1.0
            audio = (audio / peak * float(rng.uniform(0.3, 0.7))).astype(np.float32)
            for w in timed:
                words.append(ConvWord(w.text, round(t + w.start, 4), round(t + w.end, 4), speaker))
            pieces.append(audio)
            t += len(audio) / SAMPLE_RATE
            pause = (
                float(rng.uniform(0.25, 0.6))
                if n < len(texts) - 1
                else (float(rng.uniform(0.1, 0.25)) if rng.random() < 0.3 else float(rng.uniform(0.25, 0.9)))
            )
            pieces.append(np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32))
            t += int(pause * SAMPLE_RATE) / SAMPLE_RATE
    samples = np.concatenate(pieces)
    noise = np.random.default_rng(seed + 1000).normal(0, 0.002, len(samples)).astype(np.float32)
    return Conversation(name or f"conv-{n_voices}v-{seed}", samples + noise, words, ids)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--voices", type=int, default=2)
    parser.add_argument("--turns", type=int, default=14)
    args = parser.parse_args(argv)
    conv = make_conversation(args.voices, args.seed, args.turns)
    print(conv.save(args.out), f"{conv.duration:.1f} s", conv.voices)


if __name__ == "__main__":
    main()
