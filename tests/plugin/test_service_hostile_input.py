"""Hostile or broken requests get a 4xx with one line that says why, never a 500, never megabytes echoed back;
uploads cannot fill the disk; nothing a job leaves is readable by other users; no client can make the engine
download a model."""

from __future__ import annotations

import http.client
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from fixtures.service import write_timeline

from captionbridge.plugin.service.client import EngineClient, EngineError

DEEP = 970  # nesting that used to raise RecursionError inside the request handler (a 500)


def raw(client: EngineClient, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = client.base_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(
        method, path, body=body, headers={"Authorization": f"Bearer {client.token}", **(headers or {})}
    )
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def one_line_error(status: int, data: bytes, max_status: int = 499) -> dict:
    assert 400 <= status <= max_status, (status, data[:300])
    assert len(data) < 4096, f"{len(data)}-byte error body"
    err = json.loads(data)["error"]
    assert "\n" not in err["message"] and "Traceback" not in err["message"]
    assert "RecursionError" not in err["message"] and "OSError" not in err["message"], err
    return err


def multipart(options: str | None, timeline: bytes, filename: str = "t.otio") -> tuple[bytes, str]:
    boundary = "hostile-boundary-1234"
    parts = []
    if options is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n{options}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="timeline"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + timeline
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def roomy_engine(tmp_path_factory):
    from fixtures.service import EngineProcess

    root = tmp_path_factory.mktemp("hostile")
    eng = EngineProcess(root / "config", workers=1, max_upload=32 * 1024 * 1024, env={"TMPDIR": str(root)})
    eng.start()
    yield eng
    eng.stop()


@pytest.mark.parametrize("depth", [DEEP, 100_000])
def test_deeply_nested_json_is_a_4xx(roomy_engine, tmp_path, depth):
    client = roomy_engine.client
    nested = "[" * depth + "]" * depth
    status, _, data = raw(
        client,
        "POST",
        "/v1/jobs",
        f'{{"timeline_path": "/x.otio", "options": {nested}}}'.encode(),
        {"Content-Type": "application/json"},
    )
    assert one_line_error(status, data)["code"] in ("bad_request", "bad_option")
    status, _, data = raw(client, "POST", "/v1/jobs", nested.encode(), {"Content-Type": "application/json"})
    one_line_error(status, data)
    body, ctype = multipart(nested, b'{"OTIO_SCHEMA": "Timeline.1"}')
    status, _, data = raw(client, "POST", "/v1/jobs", body, {"Content-Type": ctype})
    assert one_line_error(status, data)["code"] == "bad_option"
    deep_otio = (
        '{"OTIO_SCHEMA": "Timeline.1", "metadata": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    ).encode()
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("content.otio", deep_otio)
    path = tmp_path / "deep.otio"
    path.write_bytes(deep_otio)
    for body, ctype in (
        multipart("{}", deep_otio),
        multipart("{}", bundle.getvalue(), "deep.otioz"),
        (json.dumps({"timeline_path": str(path)}).encode(), "application/json"),
    ):
        status, _, data = raw(client, "POST", "/v1/jobs", body, {"Content-Type": ctype})
        if (
            status == 202
        ):  # a depth OpenTimelineIO reads (about a thousand levels): the job fails, the engine lives
            final = client.wait(json.loads(data)["id"], timeout=30, interval=0.05)
            assert final["state"] == "failed" and final["error"]["code"] == "bad_timeline", final
            assert depth < 1000
        else:
            assert one_line_error(status, data)["code"] == "bad_timeline"
    assert client.health()["status"] == "ok"


def test_impossible_paths_are_a_4xx(roomy_engine, tmp_path):
    client = roomy_engine.client
    long_name = "n" * 300
    cases = [
        {"timeline_path": f"/tmp/{long_name}/t.otio"},
        {"timeline_path": f"/tmp/{long_name}.otio"},
        {"timeline_path": "/tmp/x" + "/y" * 3000},
        {"timeline_path": "/tmp/\ud800.otio"},  # a lone surrogate
        {
            "timeline_path": str(write_timeline(tmp_path / "ok.otio", ["a"])),
            "options": {"model": f"/{long_name}"},
        },
        {"timeline_path": str(tmp_path / "ok.otio"), "options": {"translation_model": f"/opt/{long_name}/m"}},
        {"timeline_path": str(tmp_path / "ok.otio"), "options": {"model": "/opt/\udcff"}},
    ]
    for case in cases:
        body = json.dumps(
            case
        ).encode()  # ensure_ascii: the surrogate travels as \ud800, as a client would send it
        status, _, data = raw(client, "POST", "/v1/jobs", body, {"Content-Type": "application/json"})
        err = one_line_error(status, data)
        assert err["code"] in ("timeline_not_found", "bad_option"), (case, err)


def test_huge_values_are_not_echoed_back(roomy_engine):
    client = roomy_engine.client
    huge = "x" * (10 * 1024 * 1024)
    for case in (
        {"timeline_path": huge},
        {"timeline_path": "/tmp/a.otio", "options": {"language": huge}},
        {"timeline_path": "/tmp/a.otio", huge: 1},
        {"timeline_path": "/tmp/a.otio", "options": {huge: 1}},
        {"timeline_path": "/tmp/a.otio", "options": {"preset": huge}},
    ):
        status, _, data = raw(
            client, "POST", "/v1/jobs", json.dumps(case).encode(), {"Content-Type": "application/json"}
        )
        one_line_error(status, data)
    status, _, data = raw(client, "GET", "/v1/jobs/" + "f" * 100_000)
    assert status in (400, 404, 414, 431) and len(data) < 4096


def test_head_answers_like_get_without_a_body(roomy_engine):
    client = roomy_engine.client
    for path in ("/v1/health", "/openapi.json", "/v1/jobs"):
        status, headers, data = raw(client, "HEAD", path)
        assert status == 200 and data == b"", (path, status)
        assert headers["content-type"].startswith("application/json")
    status, _, data = raw(client, "HEAD", "/v1/jobs/" + "0" * 32)
    assert status == 404 and data == b""
    status, headers, _ = raw(client, "POST", "/v1/health")
    assert status == 405 and "HEAD" in headers["allow"] and "GET" in headers["allow"]


def _bomb(zeros: int, noise: int = 0) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("content.otio", json.dumps({"OTIO_SCHEMA": "Timeline.1", "name": "bomb", "tracks": None}))
        if noise:
            zf.writestr("media/noise.wav", os.urandom(noise))
        with zf.open("media/zeros.wav", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(zeros >> 20):
                member.write(block)
    return buf.getvalue()


def test_otioz_bomb_is_refused_without_filling_the_disk(engine_factory, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    eng = engine_factory(
        "bomb", job="default:run_caption_job", max_upload=4 * 1024 * 1024, env={"TMPDIR": str(tmpdir)}
    )
    client = eng.start()
    bomb = _bomb(128 * 1024 * 1024)  # 128 MB of zeros in about 130 kB (1000:1): refused before inflating
    assert len(bomb) < 256 * 1024
    with pytest.raises(EngineError) as err:
        client.upload(bomb, {"formats": ["json"]}, filename="bomb.otioz")
    assert err.value.status == 422 and err.value.code == "bad_timeline" and "limit" in err.value.message
    # 80 MB in about 1.1 MB (75:1) passes the ratio check, but an upload may unpack to 16x the 4 MiB upload
    # limit
    dense = _bomb(79 * 1024 * 1024, noise=1024 * 1024)
    job = client.upload(dense, {"formats": ["json"]}, filename="dense.otioz")
    status = client.wait(job["id"], timeout=120, interval=0.1)
    assert status["state"] == "failed" and status["error"]["code"] == "bad_input", status
    assert "bytes" in status["error"]["message"] and "\n" not in status["error"]["message"]
    assert list(tmpdir.iterdir()) == []  # nothing unpacked into TMPDIR
    assert sorted(p.name for p in (eng.config / "jobs").iterdir()) == [
        job["id"]
    ]  # the refused one left nothing
    job_dir = eng.config / "jobs" / job["id"]
    assert not (job_dir / "scratch").exists()
    # a process killed mid-unpack leaves its scratch folder: the next start removes it
    (job_dir / "scratch" / "captionbridge-otioz-x").mkdir(parents=True)
    (job_dir / "scratch" / "captionbridge-otioz-x" / "big.wav").write_bytes(b"\0" * 4096)
    eng.kill()
    eng.start()
    assert not (job_dir / "scratch").exists()


def test_upload_keeps_the_file_name(roomy_engine, tmp_path):
    client = roomy_engine.client
    timeline = write_timeline(tmp_path / "Harbour interview (v2).otio", ["a"])
    job = client.upload(timeline, {"formats": ["srt", "json"]})
    assert client.wait(job["id"], timeout=30, interval=0.05)["state"] == "succeeded"
    assert sorted(client.result(job["id"])["files"]) == [
        "Harbour interview (v2).captions.json",
        "Harbour interview (v2).en.srt",
    ]


def test_origin_null_is_refused(roomy_engine):
    status, headers, data = raw(roomy_engine.client, "GET", "/v1/health", headers={"Origin": "null"})
    assert status == 403 and json.loads(data)["error"]["code"] == "forbidden_origin"


def test_hub_model_is_never_downloaded_for_a_client(engine_factory, tmp_path):
    """Without ``serve --allow-downloads`` the engine is offline: a job naming a hub model fails, no fetch."""
    eng = engine_factory(
        "offline", job="default:run_caption_job", env={"CAPTIONBRIDGE_OFFLINE": "", "HF_HUB_OFFLINE": ""}
    )
    client = eng.start()
    job = client.submit(
        write_timeline(tmp_path / "m.otio", ["a"]), {"model": "large-v3", "formats": ["json"]}
    )
    status = client.wait(job["id"], timeout=120, interval=0.1)
    assert status["state"] == "failed" and status["error"]["code"] == "model_unavailable", status
    assert "is not downloaded and CaptionBridge is offline" in status["error"]["message"]


def test_engine_files_are_private(roomy_engine, tmp_path):
    client = roomy_engine.client
    job = client.upload(write_timeline(tmp_path / "p.otio", ["a"]), {})
    assert client.wait(job["id"], timeout=30, interval=0.05)["state"] == "succeeded"
    config = roomy_engine.config
    for path in [config, *config.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    assert os.stat(config / "jobs").st_mode & 0o777 == 0o700
    assert isinstance(client.health(), dict)
    with pytest.raises(EngineError):
        client.result("0" * 32)
    assert Path(config / "token").stat().st_mode & 0o777 == 0o600
