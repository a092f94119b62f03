"""The cluster commands' and bay options' refusals, without a Ray cluster: one clear line and an exit code
each."""

from __future__ import annotations

import json

from click.testing import CliRunner

from captionbridge.plugin.cli import cli


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env={"CAPTIONBRIDGE_CLUSTER_TOKEN": None, **(env or {})})


def test_bays_are_added_and_revoked_from_the_command_line(tmp_path):
    added = run("cluster", "add-bay", "bay-1", "--data-dir", str(tmp_path), "--url", "https://head:8443")
    assert added.exit_code == 0, added.output
    token = added.stdout.splitlines()[0]
    assert token.startswith("cbb_") and token not in (tmp_path / "bays.json").read_text()
    assert 'url = "https://head:8443"' in added.stderr
    again = run("cluster", "add-bay", "bay-1", "--data-dir", str(tmp_path))
    assert again.exit_code == 3 and "already has a token" in again.stderr
    assert run("cluster", "revoke-bay", "bay-1", "--data-dir", str(tmp_path)).exit_code == 0
    assert json.loads((tmp_path / "bays.json").read_text())["bays"]["bay-1"]["revoked"]
    missing = run("cluster", "revoke-bay", "bay-9", "--data-dir", str(tmp_path))
    assert missing.exit_code == 3 and "no bay named 'bay-9'" in missing.stderr


def test_deploy_refuses_to_listen_beyond_loopback_without_tls(tmp_path):
    result = run("cluster", "deploy", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert result.exit_code == 3 and "without TLS" in result.stderr and "--tls-cert" in result.stderr
    half = run("cluster", "deploy", "--tls-cert", str(tmp_path / "c.pem"), "--data-dir", str(tmp_path))
    assert half.exit_code == 3 and "both --tls-cert and --tls-key" in half.stderr


def test_a_bay_refuses_unusable_cluster_settings_before_any_work(tmp_path):
    media = tmp_path / "x.wav"
    media.write_bytes(b"")
    plain = run(
        "caption",
        str(media),
        "--out",
        str(tmp_path / "o"),
        "--cluster",
        "http://gpu-head:8443",
        "--cluster-token-file",
        str(tmp_path / "none"),
    )
    assert plain.exit_code == 3 and "cannot read the bay token" in plain.stderr
    token = tmp_path / "token"
    token.write_text("cbb_abc\n")
    plain = run("serve", "--cluster", "http://gpu-head:8443", "--cluster-token-file", str(token))
    assert plain.exit_code == 3 and "unencrypted" in plain.stderr
    tokenless = run("serve", "--cluster", "https://gpu-head:8443")
    assert tokenless.exit_code == 3 and "no token for the cluster" in tokenless.stderr


def test_status_and_deploy_say_at_once_when_there_is_no_cluster():
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens
    started = time.monotonic()
    for args in (("cluster", "status", "--address", address), ("cluster", "deploy", "--address", address)):
        result = run(*args)
        assert result.exit_code == 1 and f"no Ray cluster at {address}" in result.stderr, result.output
    assert time.monotonic() - started < 30


def test_deploy_refuses_what_the_cluster_cannot_hold_instead_of_waiting_forever():
    """Regression: two 1-CPU Whisper replicas and a 1-CPU stage replica on a 2-CPU cluster made `deploy`
    wait for resources that never come (Serve keeps the replica pending)."""
    import pytest

    from captionbridge.core.errors import InputError
    from captionbridge.plugin.cluster.deploy import check_fits

    two_cpus = {"CPU": 2.0}
    with pytest.raises(InputError, match=r"has 2 CPU\(s\) and 0 GPU\(s\).* need 3 CPU\(s\).*--stage-cpus 0"):
        check_fits(two_cpus, "cpu", 2, 1.0, ("translate", "speakers"), 1, 1.0)
    check_fits(two_cpus, "cpu", 2, 1.0, (), 1, 1.0)  # transcription only fits
    check_fits(two_cpus, "cpu", 2, 1.0, ("translate",), 1, 0.0)  # a stage replica sharing the CPUs fits
    check_fits(two_cpus, "cpu", 1, 1.0, ("speakers",), 1, 1.0)
    with pytest.raises(InputError, match=r"need 6 CPU\(s\) and 4.5 GPU\(s\)"):
        check_fits({"CPU": 64.0, "GPU": 4.0}, "cuda", 4, 1.0, ("translate",), 2, 1.0)
    check_fits({"CPU": 64.0, "GPU": 8.0}, "cuda", 4, 1.0, ("translate", "speakers"), 2, 1.0)


def test_stage_options_refuse_what_they_do_not_know(tmp_path):
    bad = run("cluster", "deploy", "--stages", "translate,sing", "--data-dir", str(tmp_path))
    assert bad.exit_code == 2 and "--stages 'translate,sing'" in bad.output
    token = tmp_path / "token"
    token.write_text("cbb_abc\n")
    media = tmp_path / "x.wav"
    media.write_bytes(b"")
    args = ["--cluster", "https://gpu-head:8443", "--cluster-token-file", str(token)]
    result = run(
        "caption", str(media), "--out", str(tmp_path / "o"), *args, "--cluster-stages", "translate,dance"
    )
    assert result.exit_code == 3 and "stages must name one or more of transcribe, translate, speakers" in (
        result.stderr
    )


def test_whisper_batch_size_is_refused_below_one(tmp_path):
    bad = run("cluster", "deploy", "--whisper-batch-size", "0", "--data-dir", str(tmp_path))
    assert bad.exit_code == 2 and "--whisper-batch-size" in bad.output
