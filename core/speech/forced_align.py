"""Forced alignment of a known word sequence with CMU's en-us model, in numpy (no pocketsphinx decoder).

For one piece of audio and its words: the front end (``sphinx_frontend``), the scores of the senones the
words' triphones use (all of their codebooks' Gaussians as one float32 matrix product per feature stream, then
each senone's exact mixture as a second product), and an exact Viterbi pass over the linear HMM of the words'
phones with an optional silence before, between and after the words (silence costs nothing, as pocketsphinx
with ``silprob=1.0``). Triphones and their back-off are pocketsphinx's (``SphinxModel.phone_id``), so the
alignment is what pocketsphinx's forced alignment finds with exact Gaussian scores and no beam.

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
GAUSS_FLOOR = 9.83  # nats below the frame's best density (per stream) that no density scores lower than
SIL_PENALTY = 0.0  # nats: log probability of inserting an optional silence


@dataclass
class Graph:
    senones: np.ndarray  # (n_states,) senone of each state
    jumps: list[tuple[int, np.ndarray]]  # (k, (n_states,) log prob of j -> j + k), k >= 1
    self_loop: np.ndarray  # (n_states,) log prob of j -> j
    starts: np.ndarray  # (n_states,) log prob of starting in j
    ends: np.ndarray  # (n_states,) log prob of leaving the last phone from j
    word_states: list[tuple[int, int]]  # first and last state of each word


def _phone_pids(model: SphinxModel, phones: list[list[int]]) -> list[list[int]]:
    """Triphone ids for each word's CI phones; the context across a word boundary is the neighbouring word's
    phone (silence at the ends of the piece)."""
    out = []
    for w, ph in enumerate(phones):
        prev_last = phones[w - 1][-1] if w > 0 else model.sil
        next_first = phones[w + 1][0] if w + 1 < len(phones) else model.sil
        pids = []
        for i, ci in enumerate(ph):
            lc = ph[i - 1] if i > 0 else prev_last
            rc = ph[i + 1] if i + 1 < len(ph) else next_first
            pos = "s" if len(ph) == 1 else "b" if i == 0 else "e" if i == len(ph) - 1 else "i"
            pids.append(model.phone_id(ci, lc, rc, pos))
        out.append(pids)
    return out


def build_graph(model: SphinxModel, phones: list[list[int]]) -> Graph:
    """The HMM: [SIL] word1 [SIL] word2 ... [SIL], each phone 3 states, each SIL optional."""
    units: list[tuple[int, bool, int]] = []  # (phone id, optional silence, word index or -1)
    units.append((model.sil, True, -1))
    for w, pids in enumerate(_phone_pids(model, phones)):
        units += [(p, False, w) for p in pids]
        units.append((model.sil, True, -1))
    n = 3 * len(units)
    senones = np.empty(n, np.int32)
    self_loop = np.full(n, NEG, np.float32)
    trans: dict[int, np.ndarray] = {}

    def add(j: int, k: int, lp: float) -> None:
        arr = trans.setdefault(k, np.full(n, NEG, np.float32))
        arr[j] = max(arr[j], lp)

    # entries of unit u: its first state, and (if it is an optional silence) the entries of the unit after
    def entries(u: int) -> list[int]:
        if u >= len(units):
            return []
        if units[u][1]:
            return [3 * u] + entries(u + 1)
        return [3 * u]

    starts = np.full(n, NEG, np.float32)
    for e in entries(0):
        starts[e] = 0.0
    ends = np.full(n, NEG, np.float32)
    for u, (pid, _, _) in enumerate(units):
        base = 3 * u
        senones[base : base + 3] = model.sseq[model.phone_ssid[pid]]
        tm = model.log_tmat[model.phone_tmat[pid]]
        for s in range(3):
            self_loop[base + s] = tm[s, s]
            for to in range(s + 1, 4):
                lp = float(tm[s, to])
                if not np.isfinite(lp):
                    continue
                if to < 3:
                    add(base + s, to - s, lp)
                else:
                    targets = entries(u + 1)
                    for t in targets:
                        penalty = SIL_PENALTY if units[t // 3][1] else 0.0
                        add(base + s, t - (base + s), lp - penalty)
                    # the piece may end after this unit if only optional silences follow
                    if all(units[v][1] for v in range(u + 1, len(units))):
                        ends[base + s] = max(ends[base + s], lp)
    word_states = []
    for w in range(len(phones)):
        idx = [u for u, unit in enumerate(units) if unit[2] == w]
        word_states.append((3 * idx[0], 3 * idx[-1] + 2))
    return Graph(senones, sorted(trans.items()), self_loop, starts, ends, word_states)


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
    back = np.zeros((T, n), np.int8)  # 0 = stayed, k = came from j - k
    score = graph.starts + emit[0]
    ks = [k for k, _ in graph.jumps]
    cand = np.empty((len(ks) + 1, n), np.float32)
    for t in range(1, T):
        cand[0] = score + graph.self_loop
        for i, (k, lp) in enumerate(graph.jumps, 1):
            row = cand[i]
            row[:k] = NEG
            np.add(score[:-k], lp[:-k], out=row[k:])
        best = cand.argmax(axis=0)
        score = cand[best, np.arange(n)] + emit[t]
        back[t] = np.take(np.array([0] + ks, np.int8), best)
    final = score + graph.ends
    j = int(final.argmax())
    if final[j] < NEG / 2:
        return None
    path = np.empty(T, np.int32)
    for t in range(T - 1, -1, -1):
        path[t] = j
        j -= int(back[t, j])
    return path


class Aligner:
    """Word spans (frames) for a piece of audio and its words' phones."""

    def __init__(self, model: SphinxModel):
        self.model = model
        self.tables = gaussian_tables(model)

    def align(self, samples: np.ndarray, phones: list[list[str]]) -> list[tuple[int, int]] | None:
        """(first frame, last frame) of each word, or None when the words do not fit the audio."""
        m = self.model
        ids = [[m.ci_index[p] for p in word] for word in phones]
        graph = build_graph(m, ids)
        feats = sphinx_frontend.features(sphinx_frontend.cepstra(samples))
        if len(feats) < 3 * sum(len(w) for w in ids):
            return None
        uniq, inv = np.unique(graph.senones, return_inverse=True)
        scores = senone_scores(m, self.tables, feats, uniq)
        emit = scores[:, inv]
        path = viterbi(graph, emit)
        if path is None:
            return None
        spans = []
        for first, last in graph.word_states:
            inside = np.nonzero((path >= first) & (path <= last))[0]
            if len(inside) == 0:
                return None
            spans.append((int(inside[0]), int(inside[-1])))
        return spans
