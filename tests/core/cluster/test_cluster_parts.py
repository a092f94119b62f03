"""The facility cluster's parts without Ray: audio on the wire, bay tokens, fair share, the bay's config."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
import pytest
import soundfile as sf

from captionbridge.core.cluster.bays import BayRegistry
from captionbridge.core.cluster.facility import ClusterConfig
from captionbridge.core.cluster.fairshare import FairQueue
from captionbridge.core.cluster.wire import decode_flac, encode_flac, to_pcm16
from captionbridge.core.errors import InputError


def test_flac_round_trip_is_exact_at_16_bits_and_named_by_its_pcm():
    rng = np.random.default_rng(1)
    samples = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    flac, digest = encode_flac(samples)
    assert (
        flac[:4] == b"fLaC" and len(flac) < samples.nbytes / 2
    )  # compressed below 16-bit PCM... of noise even
    back = decode_flac(flac, digest)
    assert np.array_equal(to_pcm16(back), to_pcm16(samples))
    assert np.max(np.abs(back - samples)) <= 1 / 32768 + 1e-7
    assert encode_flac(back)[1] == digest  # the same audio decoded in another bay has the same name
    with pytest.raises(InputError, match="does not match the hash"):
        decode_flac(flac, "0" * 64)


def test_only_16khz_mono_flac_is_accepted():
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((800, 2), np.int16), 8000, format="FLAC", subtype="PCM_16")
    with pytest.raises(InputError, match="16 kHz mono"):
        decode_flac(buffer.getvalue())
    with pytest.raises(InputError, match="not a readable FLAC"):
        decode_flac(b"RIFF....not audio")


def test_bay_tokens_are_issued_once_kept_hashed_and_revocable(tmp_path):
    registry = BayRegistry(tmp_path)
    token = registry.add("bay-7")
    assert registry.authenticate(token) == "bay-7"
    assert token not in (tmp_path / "bays.json").read_text()  # only its digest is stored
    assert stat.S_IMODE(os.stat(tmp_path / "bays.json").st_mode) == 0o600
    with pytest.raises(InputError, match="already has a token"):
        registry.add("bay-7")
    other = BayRegistry(tmp_path)  # another process (the ingress) sees the revocation on its next request
    assert other.authenticate(token) == "bay-7"
    registry.revoke("bay-7")
    assert other.authenticate(token) is None
    assert other.authenticate(None) is None and other.authenticate("cbb_guess") is None
    fresh = registry.add("bay-7")  # re-issued after a revocation: the new token works, the old one does not
    assert other.authenticate(fresh) == "bay-7" and other.authenticate(token) is None
    with pytest.raises(InputError, match="no bay named"):
        registry.revoke("bay-8")
    with pytest.raises(InputError, match="not usable"):
        registry.add("../etc")


def test_fair_queue_serves_bays_in_turn():
    queue = FairQueue()
    for k in range(10):
        queue.push("feature-bay", f"f{k}")  # a three-hour feature, queued first
    queue.push("promo-bay", "p0")
    queue.push("promo-bay", "p1")
    queue.push("news-bay", "n0")
    order = [queue.pop()[1] for _ in range(6)]
    assert order[:3] == ["f0", "p0", "n0"] and set(order[3:]) == {"f1", "p1", "f2"}
    assert queue.depth() == {"feature-bay": 7}
    assert queue.remove("feature-bay", lambda x: x == "f9") == 1 and len(queue) == 6


def test_bay_config_refuses_unsafe_or_incomplete_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPTIONBRIDGE_CLUSTER_TOKEN", raising=False)
    with pytest.raises(InputError, match="unencrypted"):
        ClusterConfig(url="http://gpu-head.facility.lan:8443", token="cbb_x")
    with pytest.raises(InputError, match="no token"):
        ClusterConfig(url="https://gpu-head:8443", token="")
    with pytest.raises(InputError, match="not an http"):
        ClusterConfig(url="gpu-head:8443", token="cbb_x")
    token = tmp_path / "token"
    token.write_text("cbb_secret\n")
    config = tmp_path / "facility.toml"
    config.write_text(
        f'[cluster]\nurl = "https://gpu-head:8443/"\ntoken_file = "{token}"\non_unreachable = "wait"\n'
    )
    loaded = ClusterConfig.load(config)
    assert (loaded.url, loaded.token, loaded.on_unreachable) == (
        "https://gpu-head:8443",
        "cbb_secret",
        "wait",
    )
    assert ClusterConfig.load(config, on_unreachable="fallback").on_unreachable == "fallback"
    config.write_text('[cluster]\nurl = "https://gpu-head:8443"\ntoken = "cbb_x"\nretries = 3\n')
    with pytest.raises(InputError, match="unknown key.*retries"):
        ClusterConfig.load(config)
    with pytest.raises(InputError, match="does not exist"):
        ClusterConfig.load(tmp_path / "nope.toml")
    assert (
        ClusterConfig(url="http://127.0.0.1:8443", token="cbb_x").url == "http://127.0.0.1:8443"
    )  # loopback
