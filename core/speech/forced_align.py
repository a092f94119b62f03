"""Forced alignment of a known word sequence with CMU's en-us model, in numpy (no pocketsphinx decoder).

For one piece of audio and its words: the front end (``sphinx_frontend``, pocketsphinx's, plus its dither),
the scores of the senones the words' triphones use (all of their codebooks' Gaussians as one float32 matrix
product per feature stream, each density floored 9.83 nats below the frame's best as pocketsphinx does, then
each senone's mixture as a second product), and an exact Viterbi pass over the HMM of the words' phones (each
word any of its dictionary pronunciations) with an optional silence before, between and after the words
(silence costs nothing, as pocketsphinx with ``silprob=1.0``). Triphones and their back-off are pocketsphinx's
(``SphinxModel.phone_id``), with silence as the context outside each word. Where pocketsphinx's beam would
give up, words that are not in the audio come out squeezed to their least duration: such a piece is refused.
How each choice was measured: ``benchmarks/results/word_timing_fast_aligner.md``.

Cost is per frame of audio: the Gaussian products dominate, then the Viterbi loop (a handful of numpy
operations per 10 ms frame over a few hundred states).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import sphinx_frontend
from .sphinx_model import SphinxModel

NEG = np.float32(-1e30)
# bump when the same words and audio can come out timed differently (part of the transcript cache key)
VERSION = 1
# sphinx's dither (+1 on a quarter of the samples, seeded: the same audio always gives the same times):
# digital silence otherwise makes log(0)-like frames that pull the cepstral mean far off, and a word after it
# was left to silence (an espeak-ng sentence after 0.6 s of zeros: its first word 190 ms late). On
# CALIBRATION_SET clean, ends within 50 ms 92.9 -> 96.5 %; at 10 dB (no digital silence) no change.
DITHER = True
# a piece whose words' phones mostly sit at their least duration (3 frames) is words that are not in its
# audio (a script's sentence cut off: 14 words forced into 1.6 s, 92 % of 48 phones); on CALIBRATION_SET the
# most was 67 % (of a few phones) clean and 39 % at 10 dB
SQUEEZE_MAX = 0.8
SQUEEZE_MIN_PHONES = 10
GAUSS_FLOOR = 9.83  # nats below the frame's best density (per stream) that no density scores lower than
# nats against each optional silence between words: none, as pocketsphinx's silprob=1.0 (on CALIBRATION_SET
# 3-12 traded starts for ends, ~1 point each way; a stop's closure after a word then went into the next word)
SIL_PENALTY = 0.0


@dataclass
class Graph:
    senones: np.ndarray  # (n_states,) senone of each state
    pred: np.ndarray  # (n_states, P) predecessor states of each state (self included), padded with 0
    pred_lp: np.ndarray  # (n_states, P) log probabilities of those transitions (NEG for padding)
    starts: np.ndarray  # (n_states,) log prob of starting in j
    ends: np.ndarray  # (n_states,) log prob of leaving the last word (or silence) from j
    word_states: list[tuple[int, int]]  # first and last state of each word (all its pronunciations)


def _triphones(model: SphinxModel, ph: list[int], prev_last: int, next_first: int) -> list[int]:
    """Triphone ids for one pronunciation's CI phones, ``prev_last`` and ``next_first`` the contexts outside
    the word."""
    pids = []
    for i, ci in enumerate(ph):
        lc = ph[i - 1] if i > 0 else prev_last
        rc = ph[i + 1] if i + 1 < len(ph) else next_first
        pos = "s" if len(ph) == 1 else "b" if i == 0 else "e" if i == len(ph) - 1 else "i"
        pids.append(model.phone_id(ci, lc, rc, pos))
    return pids


def build_graph(model: SphinxModel, words: list[list[list[int]]]) -> Graph:
    """The HMM of ``words`` (each a list of pronunciations, each a list of CI phones): [SIL] word1 [SIL] word2
    ... [SIL], each word one of its pronunciations, each phone 3 states, each SIL optional."""
    # slots in order: (optional, [chain of triphone ids per option], word index or -1)
    sil = (True, [[model.sil]], -1)
    slots: list[tuple[bool, list[list[int]], int]] = [sil]
    for w, prons in enumerate(words):
        # silence as the context outside the word: the neighbours' phones (pocketsphinx's cross-word
        # triphones) measured worse here, 10 dB SNR above all (benchmarks/results/word_timing_fast_aligner.md)
        slots.append((False, [_triphones(model, ph, model.sil, model.sil) for ph in prons], w))
        slots.append(sil)
    first: list[list[int]] = []  # first state of each option of each slot
    chains: list[tuple[int, int, list[int]]] = []  # (slot, first state, triphones)
    n = 0
    for k, (_, options, _) in enumerate(slots):
        first.append([])
        for pids in options:
            first[k].append(n)
            chains.append((k, n, pids))
            n += 3 * len(pids)

    def entries(k: int) -> list[int]:
        if k >= len(slots):
            return []
        return first[k] + (entries(k + 1) if slots[k][0] else [])

    senones = np.empty(n, np.int32)
    preds: list[dict[int, float]] = [{} for _ in range(n)]
    sil_firsts = {first[k][0] for k, slot in enumerate(slots) if slot[0]}

    def add(i: int, j: int, lp: float) -> None:
        if lp > preds[j].get(i, NEG):
            preds[j][i] = lp

    starts = np.full(n, NEG, np.float32)
    starts[entries(0)] = 0.0
    ends = np.full(n, NEG, np.float32)
    for k, base, pids in chains:
        after = entries(k + 1)
        last_slot = all(slots[v][0] for v in range(k + 1, len(slots)))
        for p, pid in enumerate(pids):
            at = base + 3 * p
            senones[at : at + 3] = model.sseq[model.phone_ssid[pid]]
            tm = model.log_tmat[model.phone_tmat[pid]]
            for st in range(3):
                for to in range(st, 4):
                    lp = float(tm[st, to])
                    if not np.isfinite(lp):
                        continue
                    if to < 3:
                        add(at + st, at + to, lp)
                    elif p + 1 < len(pids):
                        add(at + st, at + 3, lp)
                    else:
                        for t in after:
                            penalty = SIL_PENALTY if t in sil_firsts else 0.0
                            add(at + st, t, lp - penalty)
                        if last_slot:
                            ends[at + st] = max(ends[at + st], lp)
    width = max(len(p) for p in preds)
    pred = np.zeros((n, width), np.int32)
    pred_lp = np.full((n, width), NEG, np.float32)
    for j, pj in enumerate(preds):
        for c, (i, lp) in enumerate(pj.items()):
            pred[j, c], pred_lp[j, c] = i, lp
    word_states = []
    for k, (_, options, w) in enumerate(slots):
        if w >= 0:
            last = first[k][-1] + 3 * len(options[-1]) - 1
            word_states.append((first[k][0], last))
    return Graph(senones, pred, pred_lp, starts, ends, word_states)


def gaussian_tables(model: SphinxModel) -> list[np.ndarray]:
    """Per stream, (27, n_codebook * 128) float32 so that [x², x, 1] @ table is every Gaussian's log
    density."""
    tables = []
    for f in range(model.means.shape[1]):
        mu = model.means[:, f].astype(np.float64)  # (cb, k, d)
        var = model.variances[:, f].astype(np.float64)
        const = -0.5 * np.sum(np.log(2 * np.pi * var), axis=2) - 0.5 * np.sum(mu * mu / var, axis=2)
        a = -0.5 / var
        b = mu / var
        n_cb, n_k, d = mu.shape
        table = np.concatenate(
            [a.reshape(n_cb * n_k, d).T, b.reshape(n_cb * n_k, d).T, const.reshape(1, n_cb * n_k)], axis=0
        )
        tables.append(table.astype(np.float32))
    return tables


def senone_scores(model: SphinxModel, tables: list[np.ndarray], feats: np.ndarray, senones: np.ndarray):
    """(frames, len(senones)) log likelihoods of ``senones`` (unique ids) for the 39-dim features."""
    n_k = model.means.shape[2]
    cbs = np.unique(model.sen2ci[senones])
    cols = (cbs[:, None] * n_k + np.arange(n_k)[None, :]).ravel()
    out = np.zeros((len(feats), len(senones)), np.float32)
    sen_cb = np.searchsorted(cbs, model.sen2ci[senones])
    d = model.means.shape[3]
    for f, table in enumerate(tables):
        x = feats[:, f * d : (f + 1) * d]
        xa = np.concatenate([x * x, x, np.ones((len(x), 1), np.float32)], axis=1)
        g = xa @ table[:, cols]  # (T, n_cb * 128)
        top = g.max(axis=1, keepdims=True)
        np.subtract(g, top, out=g)
        # every density at least GAUSS_FLOOR below the frame's best in this stream (pocketsphinx floors at
        # ~9.8 nats, MAX_NEG_ASCR); also keeps denormals out of the products (they are ~100x slower)
        np.maximum(g, np.float32(-GAUSS_FLOOR), out=g)
        np.exp(g, out=g)
        g = g.reshape(len(x), len(cbs), n_k)
        w = np.exp(model.log_mixw[senones, f, :])  # (S, 128)
        # each senone's mixture over its own codebook: sum_k w[s, k] * p[t, cb(s), k]
        for c in range(len(cbs)):
            sel = np.nonzero(sen_cb == c)[0]
            out[:, sel] += np.log(g[:, c, :] @ w[sel].T)
        out += top
    return out


def viterbi(graph: Graph, emit: np.ndarray) -> np.ndarray | None:
    """The best state for each frame (exact Viterbi), or None when no path fits the frames."""
    T, n = emit.shape
    back = np.empty((T, n), np.int8)  # which of the state's predecessors
    rows = np.arange(n)
    pred, pred_lp = graph.pred, graph.pred_lp
    score = graph.starts + emit[0]
    for t in range(1, T):
        cand = score[pred]
        cand += pred_lp
        best = cand.argmax(axis=1)
        back[t] = best
        score = cand[rows, best]
        score += emit[t]
    final = score + graph.ends
    j = int(final.argmax())
    if final[j] < NEG / 2:
        return None
    path = np.empty(T, np.int32)
    for t in range(T - 1, 0, -1):
        path[t] = j
        j = int(pred[j, back[t, j]])
    path[0] = j
    return path


class Aligner:
    """Word spans (frames) for a piece of audio and its words' phones."""

    def __init__(self, model: SphinxModel):
        self.model = model
        self.tables = gaussian_tables(model)
        self.squeezed = 0.0  # of the last alignment: the share of its words' phones at their least duration

    def align(self, samples: np.ndarray, words: list[list[list[str]]]) -> list[tuple[int, int]] | None:
        """(first frame, last frame) of each word (given as its pronunciations, each a list of phones), or
        None when the words do not fit the audio: too few frames for them, or (an exact Viterbi always
        finds some path, where pocketsphinx's beam gave up) most of their phones squeezed to their least
        duration."""
        m = self.model
        ids = [[[m.ci_index[p] for p in pron] for pron in prons] for prons in words]
        feats = sphinx_frontend.features(sphinx_frontend.cepstra(samples, dither=DITHER))
        if len(feats) < 3 * sum(min(len(p) for p in prons) for prons in ids):
            return None
        graph = build_graph(m, ids)
        uniq, inv = np.unique(graph.senones, return_inverse=True)
        scores = senone_scores(m, self.tables, feats, uniq)
        emit = scores[:, inv]
        path = viterbi(graph, emit)
        if path is None:
            return None
        spans = []
        in_words = np.zeros(len(path), bool)
        for first, last in graph.word_states:
            inside = np.nonzero((path >= first) & (path <= last))[0]
            if len(inside) == 0:
                return None
            spans.append((int(inside[0]), int(inside[-1])))
            in_words[inside] = True
        # phones (3 states each) held to their least duration: words squeezed into audio that lacks them
        frames = np.bincount(path[in_words] // 3)
        frames = frames[frames > 0]
        self.squeezed = float(np.mean(frames <= 3)) if len(frames) else 0.0
        if len(frames) >= SQUEEZE_MIN_PHONES and self.squeezed > SQUEEZE_MAX:
            return None
        return spans
