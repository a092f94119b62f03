"""`serve` start-up: the token file, the Host check on non-loopback addresses, and TCP_NODELAY on the
socket."""

from __future__ import annotations

import socket
import stat

import pytest

from captionbridge.core.errors import CaptionBridgeError
from captionbridge.plugin.service.paths import load_or_create_token, weak_token
from captionbridge.plugin.service.server import ServeOptions, allowed_host_names, bind_socket


def test_empty_token_file_is_replaced(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("")
    import os

    os.utime(token_file, (0, 0))  # not one a racing first run is writing right now
    token = load_or_create_token(tmp_path)
    assert len(token) >= 40 and token_file.read_text().strip() == token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path) == token


def test_unusable_token_file_says_what_to_do(tmp_path):
    (tmp_path / "token").write_bytes(b"\xff\xfe")
    with pytest.raises(CaptionBridgeError, match="delete it"):
        load_or_create_token(tmp_path)
    (tmp_path / "token").write_text("two\nlines of token")
    with pytest.raises(CaptionBridgeError, match="delete it"):
        load_or_create_token(tmp_path)


def test_weak_tokens_are_named():
    assert weak_token("hunter2") and "characters" in weak_token("hunter2")
    assert weak_token("a" * 40)
    assert weak_token("Zq3_k9Lm2Xp8Rt5Vw1Yc7Nb4Hd6Jf0Gs-aE") is None


def test_engine_starts_with_empty_token_file_and_warns_about_a_weak_one(engine_factory):
    eng = engine_factory("tokens")
    eng.config.mkdir(parents=True)
    (eng.config / "token").write_text("\n")
    import os

    os.utime(eng.config / "token", (0, 0))
    client = eng.start()
    assert len(client.token) >= 40 and client.health()["status"] == "ok"
    eng.stop()
    (eng.config / "token").write_text("letmein\n")
    client = eng.start()
    assert client.token == "letmein" and client.health()["status"] == "ok"
    eng.stop()
    log = eng.log.read_text()
    assert "is weak (7 characters" in log and "delete the file and restart" in log


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_host_check_stays_on_for_every_bind_address(host):
    allowed = allowed_host_names(ServeOptions(host=host, allow_hosts=("Studio-Mac.local", "[fe80::1]")))
    assert {"127.0.0.1", "localhost", "::1", "studio-mac.local", "fe80::1"} <= allowed
    assert "0.0.0.0" not in allowed and "::" not in allowed and "attacker.example" not in allowed
    if host == "192.168.1.20":
        assert host in allowed


def test_build_service_keeps_the_host_check_on_a_wildcard_address(tmp_path):
    from captionbridge.plugin.service.server import build_service

    service, settings, _ = build_service(
        ServeOptions(host="0.0.0.0", config=tmp_path / "c", allow_hosts=("edit-bay-3",))
    )
    try:
        assert settings.allowed_hosts is not None and "edit-bay-3" in settings.allowed_hosts
    finally:
        service.store.close()


def test_serve_help_names_allow_host_and_downloads():
    from click.testing import CliRunner

    from captionbridge.plugin.cmd_serve import serve_cmd

    out = CliRunner().invoke(serve_cmd, ["--help"]).output
    assert "--allow-host" in out and "--allow-downloads" in out


def test_listening_socket_is_tcp_with_nodelay():
    """asyncio turns Nagle off only on sockets whose proto is TCP; without it kept-alive requests took ~44
    ms."""
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        try:
            assert accepted.proto == socket.IPPROTO_TCP
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            accepted.close()
            client.close()
    finally:
        sock.close()


def test_stale_unpacked_bundles_in_tmp_are_removed(tmp_path):
    import os
    import time

    from captionbridge.plugin.service.server import remove_stale_unpacks

    old = tmp_path / "captionbridge-otioz-old"
    (old / "media").mkdir(parents=True)
    (old / "media" / "big.wav").write_bytes(b"\0" * 1024)
    fresh = tmp_path / "captionbridge-otioz-fresh"
    fresh.mkdir()
    other = tmp_path / "someone-else"
    other.mkdir()
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    assert remove_stale_unpacks(tmp_path) == 1
    assert not old.exists() and fresh.exists() and other.exists()


def test_serve_on_all_interfaces_warns_and_names_the_allowed_hosts(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from captionbridge.plugin.cmd_serve import serve_cmd
    from captionbridge.plugin.service import server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda opts, on_ready=None: seen.setdefault("opts", opts))
    monkeypatch.setenv("CAPTIONBRIDGE_CONFIG_DIR", str(tmp_path))
    result = CliRunner().invoke(serve_cmd, ["--host", "0.0.0.0", "--allow-host", "edit-bay-3.local"])
    assert result.exit_code == 0, result.output
    assert (
        "edit-bay-3.local" in result.output
        and "--allow-host" in result.output
        and "127.0.0.1" in result.output
    )
    assert seen["opts"].allow_hosts == ("edit-bay-3.local",) and seen["opts"].allow_downloads is False
