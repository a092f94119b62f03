"""The bay's engine with a remote speech backend: the same words as a local run when the backend does the
work, local transcription with a clear warning for whatever it could not do, and waiting when told to."""

from __future__ import annotations

import socket
import time
from fractions import Fraction

import pytest

from captionbridge.core.cluster.client import ClusterBackend, ClusterUnreachable
from captionbridge.core.cluster.facility import ClusterConfig
from captionbridge.core.speech import models
from captionbridge.core.speech import transcribe as tr
from captionbridge.core.speech.remote import RemoteUnavailable, set_speech_backend
from captionbridge.core.speech.transcript_cache import TranscriptCache
from captionbridge.core.timeline.regions import AudioRegion
from captionbridge.core.timeline.timebase import Timebase

# the cluster decodes each span alone, so the local runs it is compared with do too (no packing)
FAST = dict(temperature=(0.0,), beam_size=1, language="en", cache=False, pack=False)


@pytest.fixture()
def tiny(tiny_whisper_model):
    return models.load_whisper(str(tiny_whisper_model), "cpu", "int8")


def regions(path, tb):
    """Two clips of the same recording, cut apart on the timeline: two spans."""

    def clip(name, start, end, offset):
        return AudioRegion(
            clip_name=name,
            track_name="A1",
            track_index=1,
            timeline_start_frame=start,
            timeline_end_frame=end,
            source_path=path,
            source_offset=Fraction(offset),
            timebase=tb,
        )

    return [clip("one", 0, 250, 0), clip("two", 300, 550, 12)]


class ReplicaInProcess:
    """A backend that runs what a cluster replica runs (``transcribe_span_samples``) here, and can give up
    after ``give_up_after`` spans the way a cluster that goes away does."""

    def __init__(self, model, give_up_after: int | None = None):
        self.model, self.give_up_after, self.seen = model, give_up_after, []

    def transcribe_spans(self, requests, options, report):
        done = {}
        for r in requests:
            if self.give_up_after is not None and len(done) >= self.give_up_after:
                raise RemoteUnavailable(
                    "facility cluster went away during the job: transcribed here instead", partial=done
                )
            self.seen.append(r.identity)
            done[r.index] = tr.transcribe_span_samples(r.audio(), options, self.model)
        return done


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


def test_a_remote_backend_gives_the_local_words_and_a_partial_one_is_completed_here(
    tiny, espeak_english, tmp_path
):
    tb = Timebase(25)
    options = tr.TranscribeOptions(**FAST)
    local = tr.transcribe_regions(regions(espeak_english.path, tb), tb, options, model=tiny)
    assert local.words
    remote = ReplicaInProcess(tiny)
    previous = set_speech_backend(remote)  # installed for the process, as `serve --cluster` does
    try:
        via = tr.transcribe_regions(regions(espeak_english.path, tb), tb, options)
    finally:
        set_speech_backend(previous)
    assert [(w.text, w.start_frame, w.end_frame) for w in via.words] == [
        (w.text, w.start_frame, w.end_frame) for w in local.words
    ]
    assert (
        len(remote.seen) == 2 and all(i and len(i) == 64 for i in remote.seen) and len(set(remote.seen)) == 2
    )
    assert via.stats["remote"]["spans"] == 2

    half = tr.transcribe_regions(
        regions(espeak_english.path, tb),
        tb,
        options,
        model=tiny,
        backend=ReplicaInProcess(tiny, give_up_after=1),
    )
    assert [w.text for w in half.words] == [w.text for w in local.words]
    assert "facility cluster went away during the job: transcribed here instead" in half.warnings
    assert half.stats["remote"]["spans"] == 1 and half.stats["cached_spans"] == 0

    cache = TranscriptCache(tmp_path / "cache")  # the bay's own cache knows the second span from a local run
    tr.transcribe_regions(regions(espeak_english.path, tb)[1:], tb, options, model=tiny, cache=cache)
    mixed = tr.transcribe_regions(
        regions(espeak_english.path, tb),
        tb,
        options,
        model=tiny,
        cache=cache,
        backend=ReplicaInProcess(tiny, give_up_after=1),
    )
    assert (
        mixed.stats["remote"]["spans"],
        mixed.stats["cached_spans"],
        mixed.stats["transcribed_seconds"],
    ) == (1, 1, 0.0)


def test_an_unreachable_cluster_means_local_transcription_with_a_clear_warning(tiny, espeak_english):
    tb = Timebase(25)
    options = tr.TranscribeOptions(**FAST)
    url = dead_url()
    backend = ClusterBackend(ClusterConfig(url=url, token="cbb_test"))
    result = tr.transcribe_regions(regions(espeak_english.path, tb), tb, options, model=tiny, backend=backend)
    local = tr.transcribe_regions(regions(espeak_english.path, tb), tb, options, model=tiny)
    assert [w.text for w in result.words] == [w.text for w in local.words]
    [warning] = [w for w in result.warnings if "facility cluster" in w]
    assert warning.startswith(f"facility cluster at {url} unreachable (")
    assert "transcribed on this machine instead" in warning and 'on_unreachable = "wait"' in warning


def test_told_to_wait_a_bay_waits_then_fails_without_transcribing(tiny, espeak_english):
    tb = Timebase(25)
    config = ClusterConfig(url=dead_url(), token="cbb_test", on_unreachable="wait", wait_timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable, match=r"stayed unreachable for 2 s .*the job was not transcribed"):
        tr.transcribe_regions(
            regions(espeak_english.path, tb),
            tb,
            tr.TranscribeOptions(**FAST),
            model=tiny,
            backend=ClusterBackend(config),
        )
    assert 1.4 <= time.monotonic() - started < 10


class _Answers:
    """A loopback HTTP server that answers every request with one status and JSON error (a cluster of another
    version, or one that revoked this bay)."""

    def __init__(self, status: int, message: str, info_ok: bool = False):
        import http.server
        import json
        import threading

        body = json.dumps({"error": {"code": "x", "message": message}}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                if (
                    info_ok and self.path == "/v1/info"
                ):  # up for the first question, then gone (502 from a proxy)
                    data = json.dumps({"model_name": "base"}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_cluster_that_rejects_the_request_means_local_work_and_one_that_refuses_the_bay_stops_it(
    tiny, espeak_english
):
    from captionbridge.core.cluster.client import ClusterRefused

    tb = Timebase(25)
    options = tr.TranscribeOptions(**FAST)
    with _Answers(400, "unknown transcription setting(s): language_windows") as cluster:
        result = tr.transcribe_regions(
            regions(espeak_english.path, tb),
            tb,
            options,
            model=tiny,
            backend=ClusterBackend(ClusterConfig(url=cluster.url, token="cbb_test")),
        )
    assert result.words
    assert any(
        "rejected a status request (unknown transcription setting(s): language_windows): transcribed on "
        "this machine instead" in w
        for w in result.warnings
    ), result.warnings
    with _Answers(401, "unknown or revoked bay token") as cluster:
        with pytest.raises(ClusterRefused, match="refused this bay \\(unknown or revoked bay token\\): ask"):
            tr.transcribe_regions(
                regions(espeak_english.path, tb),
                tb,
                options,
                model=tiny,
                backend=ClusterBackend(ClusterConfig(url=cluster.url, token="cbb_test")),
            )


def test_a_cluster_lost_mid_job_falls_back_or_is_waited_for_as_configured(tiny, espeak_english):
    tb = Timebase(25)
    options = tr.TranscribeOptions(**FAST)
    with _Answers(502, "no healthy upstream", info_ok=True) as cluster:
        fallback = ClusterConfig(url=cluster.url, token="cbb_test", retry_window_s=0.5)
        result = tr.transcribe_regions(
            regions(espeak_english.path, tb), tb, options, model=tiny, backend=ClusterBackend(fallback)
        )
        assert result.words and any(
            "went away during the job (HTTP 502 no healthy upstream): the remaining 2 "
            "span(s) were transcribed on this machine instead" in w
            for w in result.warnings
        )
        wait = ClusterConfig(
            url=cluster.url, token="cbb_test", retry_window_s=0.5, on_unreachable="wait", wait_timeout_s=1.5
        )
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable, match="went away during the job and stayed away for 2 s"):
            tr.transcribe_regions(
                regions(espeak_english.path, tb), tb, options, model=tiny, backend=ClusterBackend(wait)
            )
        assert time.monotonic() - started >= 1.4
