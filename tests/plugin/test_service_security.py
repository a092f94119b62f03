"""A web page in the user's browser must not drive the engine; bad input gets a clear JSON error and leaves
nothing."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import pytest
from fixtures.service import write_timeline

from captionbridge.plugin.service.client import EngineClient, EngineError
from captionbridge.plugin.service.paths import config_dir, load_or_create_token


def raw(client: EngineClient, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    host, port = client.base_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def error_of(data: bytes) -> dict:
    body = json.loads(data)
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


def auth(client: EngineClient, **extra) -> dict:
    return {"Authorization": f"Bearer {client.token}", **extra}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ],
)
def test_token_required_everywhere(shared_engine, headers):
    client = shared_engine.client
    for method, path in [
        ("GET", "/v1/health"),
        ("GET", "/v1/models"),
        ("GET", "/openapi.json"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/" + "0" * 32),
        ("DELETE", "/v1/jobs/" + "0" * 32),
        ("GET", "/nowhere"),
    ]:
        status, resp_headers, data = raw(client, method, path, headers)
        assert status == 401, (method, path, status)
        assert error_of(data)["code"] == "unauthorized"
        assert resp_headers.get("www-authenticate") == "Bearer"
        assert not any(h.lower().startswith("access-control-") for h in resp_headers)


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://localhost:3000", "http://127.0.0.1", "chrome-extension://abc", "SAME"],
)
def test_browser_origin_refused_even_with_token(shared_engine, origin):
    client = shared_engine.client
    if origin == "SAME":  # the engine serves no pages: even its own origin is no browser's business
        origin = client.base_url
    for method in ("GET", "OPTIONS", "POST"):
        status, headers, data = raw(client, method, "/v1/health", auth(client, Origin=origin))
        assert status == 403 and error_of(data)["code"] == "forbidden_origin"
        assert not any(h.lower().startswith("access-control-") for h in headers)
    # a CORS preflight from a page is refused before anything else
    status, headers, data = raw(
        client, "OPTIONS", "/v1/jobs", {"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert status == 403 and not any(h.lower().startswith("access-control-") for h in headers)


def test_null_origin_refused_and_no_origin_allowed(shared_engine):
    client = shared_engine.client
    # "null" is what sandboxed iframes and data: pages send; the Premiere panel uses Node's http (no Origin at
    # all)
    for origin in ("null", "file://"):
        status, _, data = raw(client, "GET", "/v1/health", auth(client, Origin=origin))
        assert status == 403 and error_of(data)["code"] == "forbidden_origin"
    assert raw(client, "GET", "/v1/health", auth(client))[0] == 200


def test_dns_rebinding_host_refused(shared_engine):
    client = shared_engine.client
    port = client.base_url.rsplit(":", 1)[1]
    status, _, data = raw(client, "GET", "/v1/health", auth(client, Host=f"attacker.example:{port}"))
    assert status == 403 and error_of(data)["code"] == "forbidden_host"
    assert raw(client, "GET", "/v1/health", auth(client, Host=f"localhost:{port}"))[0] == 200


def test_token_file_created_owner_only(tmp_path):
    cfg = tmp_path / "cfg"
    token = load_or_create_token(cfg)
    assert (cfg / "token").stat().st_mode & 0o777 == 0o600
    assert cfg.stat().st_mode & 0o077 == 0
    assert load_or_create_token(cfg) == token
    os.chmod(cfg / "token", 0o644)  # loosened by someone: tightened again
    assert load_or_create_token(cfg) == token and (cfg / "token").stat().st_mode & 0o777 == 0o600


def test_config_dir_per_platform(tmp_path):
    home = str(tmp_path)
    assert config_dir({"CAPTIONBRIDGE_CONFIG_DIR": "/x/y", "HOME": home}) == Path("/x/y")
    assert config_dir({"HOME": home}, "linux") == tmp_path / ".config" / "captionbridge"
    assert config_dir({"HOME": home, "XDG_CONFIG_HOME": "/xdg"}, "linux") == Path("/xdg/captionbridge")
    assert (
        config_dir({"HOME": home}, "darwin") == tmp_path / "Library" / "Application Support" / "CaptionBridge"
    )
    assert config_dir({"HOME": home, "APPDATA": "/appdata"}, "win32") == Path("/appdata") / "CaptionBridge"


def post_json(client, body, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw(
        client, "POST", "/v1/jobs", auth(client, **{"Content-Type": "application/json", **headers}), data
    )


@pytest.mark.parametrize(
    "options, word",
    [
        ({"colour": "red"}, "colour"),
        ({"language": "klingon"}, "klingon"),
        ({"translate_to": "fr"}, "fr"),
        ({"formats": ["srt", "docx"]}, "docx"),
        ({"tracks": ["V1"]}, "V1"),
        ({"device": "tpu"}, "tpu"),
        ({"model": "relative/../dir/"}, "model"),
        ({"model": "/no/such/model/folder"}, "does not exist"),
        ({"preset": "no-such-preset"}, "preset"),
        ({"formats": []}, "formats"),
        ("srt", "options"),
        ({"max_lines": 7}, "max_lines"),
    ],
)
def test_bad_options_422(shared_engine, tmp_path, options, word):
    client = shared_engine.client
    timeline = write_timeline(tmp_path / "ok.otio", ["a"])
    before = client.health()["jobs"]
    status, _, data = post_json(client, {"timeline_path": str(timeline), "options": options})
    err = error_of(data)
    assert status == 422 and err["code"] == "bad_option" and word in err["message"], err
    assert client.health()["jobs"] == before  # nothing queued


def test_bad_requests(shared_engine, tmp_path):
    client = shared_engine.client
    timeline = write_timeline(tmp_path / "ok.otio", ["a"])
    cases = [
        (post_json(client, b"{not json"), 400, "bad_request"),
        (post_json(client, [1, 2]), 400, "bad_request"),
        (post_json(client, {"options": {}}), 400, "bad_request"),
        (post_json(client, {"timeline_path": str(timeline), "extra": 1}), 400, "bad_request"),
        (post_json(client, {"timeline_path": "relative/edit.otio"}), 422, "timeline_not_found"),
        (post_json(client, {"timeline_path": str(tmp_path / "absent.otio")}), 422, "timeline_not_found"),
        (post_json(client, {"timeline_path": str(tmp_path)}), 422, "timeline_not_found"),
        (
            raw(client, "POST", "/v1/jobs", auth(client, **{"Content-Type": "text/plain"}), b"x"),
            415,
            "unsupported_media_type",
        ),
        (raw(client, "GET", "/v1/jobs/" + "a" * 32, auth(client)), 404, "job_not_found"),
        (raw(client, "GET", "/v1/jobs/../../etc/passwd", auth(client)), 404, None),
        (raw(client, "GET", "/v1/jobs/" + "a" * 32 + "/result", auth(client)), 404, "job_not_found"),
        (raw(client, "PUT", "/v1/jobs", auth(client)), 405, "method_not_allowed"),
    ]
    for (status, _, data), want_status, want_code in cases:
        err = error_of(data)
        assert status == want_status, (status, err)
        if want_code:
            assert err["code"] == want_code, err


@pytest.mark.parametrize(
    "content, code",
    [
        (b'{"OTIO_SCHEMA": "Timeline.1", "tracks": ', "bad_timeline"),  # truncated export
        (b"<?xml version='1.0'?><xmeml version='5'><sequence>", "bad_timeline"),  # truncated xmeml
        (b"<html><body>not a timeline</body></html>", "bad_timeline"),
        (b"\x00\x01binary", "bad_timeline"),
        (b"", "bad_timeline"),
        (b'{"name": "json but not OTIO"}', "bad_timeline"),
    ],
)
def test_corrupt_timeline_refused_and_nothing_left(shared_engine, tmp_path, content, code):
    client = shared_engine.client
    path = tmp_path / "broken.otio"
    path.write_bytes(content)
    jobs_dir = shared_engine.config / "jobs"
    before = sorted(p.name for p in jobs_dir.iterdir())
    status, _, data = post_json(client, {"timeline_path": str(path)})
    assert status == 422 and error_of(data)["code"] == code
    with pytest.raises(EngineError) as err:  # the same file uploaded
        client.upload(content, {"formats": ["srt"]}, filename="broken.otio")
    assert err.value.status == 422 and err.value.code == code
    assert sorted(p.name for p in jobs_dir.iterdir()) == before  # no upload folder left behind


def test_upload_limits(engine_factory, tmp_path):
    eng = engine_factory("small-uploads", max_upload=20_000)
    client = eng.start()
    big = write_timeline(tmp_path / "big.otio", [f"clip number {i}" for i in range(200)])
    assert big.stat().st_size > 20_000
    with pytest.raises(EngineError) as err:
        client.upload(big)
    assert err.value.status == 413 and err.value.code == "payload_too_large"
    # chunked body without Content-Length is counted too
    host, port = client.base_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(
        "POST",
        "/v1/jobs",
        body=iter([b'{"timeline_path": "' + b"x" * 30_000 + b'"}']),
        headers=auth(client, **{"Content-Type": "application/json"}),
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert resp.status == 413 and error_of(resp.read())["code"] == "payload_too_large"
    # multipart with odd fields
    with pytest.raises(EngineError) as err:
        client.request(
            "POST",
            "/v1/jobs",
            body=b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n',
            content_type="multipart/form-data; boundary=b",
        )
    assert err.value.status == 400 and err.value.code == "bad_request"
    small = write_timeline(tmp_path / "small.otio", ["ok"])
    with pytest.raises(EngineError) as err:
        client.upload(small, {"nope": 1})
    assert err.value.code == "bad_option"
    assert list((eng.config / "jobs").iterdir()) == []
    assert client.wait(client.upload(small)["id"], timeout=30, interval=0.05)["state"] == "succeeded"


def test_result_file_names_cannot_traverse(shared_engine, tmp_path):
    client = shared_engine.client
    job = client.submit(write_timeline(tmp_path / "files.otio", ["a"]), {"formats": ["srt", "json"]})
    assert client.wait(job["id"], timeout=30, interval=0.05)["state"] == "succeeded"
    for name in [
        "..",
        "../../jobs.sqlite3",
        "..%2F..%2Fjobs.sqlite3",
        "%2e%2e",
        "token",
        "../../token",
        "..%5C..%5Ctoken",
        ".",
        "files.en.srt%00",
        "out",
    ]:
        status, _, data = raw(client, "GET", f"/v1/jobs/{job['id']}/files/{name}", auth(client))
        assert status == 404, name
        assert b"token" not in data or error_of(data)
    status, headers, data = raw(client, "GET", f"/v1/jobs/{job['id']}/files/files.en.srt", auth(client))
    assert status == 200 and b"a" in data and headers["content-type"].startswith("application/x-subrip")


def test_job_errors_carry_engine_codes(shared_engine, tmp_path):
    client = shared_engine.client
    missing = client.submit(write_timeline(tmp_path / "m" / "missing.otio", ["lost"], missing=True), {})
    no_model = client.submit(write_timeline(tmp_path / "nm.otio", ["a"]), {"model": "large-v3"})
    status = client.wait(missing["id"], timeout=30, interval=0.05)
    assert status["state"] == "failed" and status["error"]["code"] == "missing_media"
    assert status["error"]["details"]["missing"][0]["clip"] == "lost"
    assert status["files"] == []
    with pytest.raises(EngineError) as err:
        client.result(missing["id"])
    assert err.value.status == 400 and err.value.code == "missing_media"
    status = client.wait(no_model["id"], timeout=30, interval=0.05)
    assert status["state"] == "failed" and status["error"]["code"] == "model_unavailable"
    with pytest.raises(EngineError) as err:
        client.result(no_model["id"])
    assert err.value.status == 422 and "captionbridge[models]" in err.value.message
    assert not (shared_engine.config / "jobs" / no_model["id"] / "out").exists()
    assert not (shared_engine.config / "jobs" / no_model["id"] / "out.partial").exists()


def test_serve_cli_warns_loudly_off_loopback(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "captionbridge.plugin.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--log-level",
            "warning",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "cfg" / "service.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "WARNING: listening on 0.0.0.0, not on loopback" in err
    assert proc.returncode == 0 and not (tmp_path / "cfg" / "service.json").exists()


def test_serve_cli_port_in_use(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(tmp_path / "cfg"))
        out = subprocess.run(
            [sys.executable, "-m", "captionbridge.plugin.cli", "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert out.returncode == 6 and f"port {port}" in out.stderr and "Traceback" not in out.stderr


def test_other_files_never_leak(shared_engine, tmp_path):
    """Pointing a job at a file that is not a timeline (the token itself, a JSON secret) reveals nothing of
    it."""
    client = shared_engine.client
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2-very-secret"}')
    for path in (shared_engine.config / "token", secret, shared_engine.config / "jobs.sqlite3"):
        status, _, data = post_json(client, {"timeline_path": str(path)})
        # the engine's own files are refused before they are opened (timeline_not_found), others after a look
        expected = "bad_timeline" if path == secret else "timeline_not_found"
        assert status == 422 and error_of(data)["code"] == expected
        assert client.token.encode() not in data and b"hunter2" not in data


def test_a_stop_signal_before_uvicorn_is_up_still_stops_the_server():
    """A SIGTERM between service.json appearing and uvicorn installing its handlers used to be swallowed (the
    engine then ran on); now it asks the server to stop, and uvicorn checks that flag before serving."""
    import signal
    import types

    from captionbridge.plugin.service.server import _stop_signals

    server = types.SimpleNamespace(should_exit=False)
    before = signal.getsignal(signal.SIGTERM)
    with _stop_signals(server):
        signal.raise_signal(signal.SIGTERM)
        assert server.should_exit is True
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored afterwards
