"""Translation backends and model resolution, with the tiny Marian model (real loading code, random
weights)."""

import shutil

import pytest

from captionbridge.core.errors import InputError, ModelNotAvailableError
from captionbridge.core.translate.backends import (
    CTranslate2Translator,
    TransformersTranslator,
    inspect_folder,
    load_folder,
    resolve_translator,
    translation_models,
)

TEXTS = [
    "会议明天早上九点开始。",
    "我们今天去公园。",
    "感谢您观看这个视频。",
    "张伟在上海的字幕桥工作。",
    "请关上门坐下。",
    "这台相机多少钱？",
    "我觉得我们应该在星期五之前完成剪辑。",
]


def test_folders_are_recognised(tiny_marian, tmp_path):
    ct2 = inspect_folder(tiny_marian["zh-en-ct2"])
    hf = inspect_folder(tiny_marian["en-zh"])
    assert (ct2.fmt, ct2.family, ct2.source_lang, ct2.target_lang) == ("ctranslate2", "marian", "zh", "en")
    assert (hf.fmt, hf.family, hf.source_lang, hf.target_lang) == ("transformers", "marian", "en", "zh")
    assert inspect_folder(tmp_path) is None


def test_ctranslate2_batches_and_returns_n_best(tiny_marian):
    translator = load_folder(inspect_folder(tiny_marian["zh-en-ct2"]), "cpu")
    assert isinstance(translator, CTranslate2Translator)
    assert (translator.device, translator.compute_type) == ("cpu", "int8")
    batched = translator.translate(TEXTS, "zh", "en", num_hypotheses=3, batch_size=3)
    assert len(batched) == len(TEXTS) and all(len(h) == 3 for h in batched)
    assert all(isinstance(t, str) and t for h in batched for t in h)
    # results come back in input order whatever order the texts are batched in
    assert translator.translate(TEXTS[::-1], "zh", "en", num_hypotheses=3, batch_size=3) == batched[::-1]
    assert len({h[0] for h in batched}) > 1  # (the random model does answer each text differently)
    # language tokens (Marian >>id<<, NLLB codes) never reach the text
    pieces = translator.codec.tgt.encode("Thank you for watching.", out_type=str)
    assert translator.codec.decode([">>cmn_Hans<<", *pieces, "zho_Hans"]) == "Thank you for watching."
    # a text alone in its batch gets the same translation as in a batch of texts of its length
    alone = translator.translate(TEXTS[:1], "zh", "en", num_hypotheses=3, batch_size=1)
    assert alone == translator.translate(TEXTS[:1] * 3, "zh", "en", num_hypotheses=3, batch_size=3)[:1]


def test_transformers_backend_loads_the_same_kind_of_folder(tiny_marian):
    translator = load_folder(inspect_folder(tiny_marian["en-zh"]), "cpu")
    assert isinstance(translator, TransformersTranslator) and translator.device == "cpu"
    out = translator.translate(
        ["Thank you for watching this video.", "Please close the door."],
        "en",
        "zh",
        num_hypotheses=2,
        batch_size=1,
    )
    assert len(out) == 2 and all(len(h) == 2 for h in out)
    assert translator.supports("en", "zh") and not translator.supports("zh", "en")


def test_an_explicit_folder_is_used_and_its_direction_checked(tiny_marian, offline_env):
    translator = resolve_translator("zh", "en", tiny_marian["zh-en-ct2"])
    assert translator.backend == "ctranslate2" and translator.name == "opus-mt-zh-en-ct2"
    with pytest.raises(InputError, match="translates zh->en, not en->zh"):
        resolve_translator("en", "zh", tiny_marian["zh-en-ct2"])
    with pytest.raises(InputError, match="does not exist"):
        resolve_translator("zh", "en", offline_env / "no-such-model")
    with pytest.raises(InputError, match="is not a translation model folder"):
        resolve_translator("zh", "en", offline_env)


def test_models_in_the_model_folder_are_found_without_being_named(tiny_marian, offline_env):
    models = offline_env / "models"
    shutil.copytree(tiny_marian["zh-en"], models / "opus-mt-zh-en")
    shutil.copytree(tiny_marian["zh-en-ct2"], models / "opus-mt-zh-en-ct2")
    shutil.copytree(tiny_marian["en-zh"], models / "opus-mt-en-zh")
    assert resolve_translator("zh", "en").backend == "ctranslate2"  # the converted copy is preferred
    assert resolve_translator("en", "zh").backend == "transformers"
    # a hub name resolves to a local copy named after it, without a network
    assert resolve_translator("zh", "en", "Helsinki-NLP/opus-mt-zh-en").backend == "ctranslate2"
    listed = {(m["name"], m["backend"], m["languages"]) for m in translation_models()}
    assert {
        ("opus-mt-zh-en-ct2", "ctranslate2", "zh->en"),
        ("opus-mt-zh-en", "transformers", "zh->en"),
        ("opus-mt-en-zh", "transformers", "en->zh"),
    } <= listed
    assert all(m["kind"] == "translation" and m["size"] > 0 for m in translation_models())


def test_offline_without_a_model_says_exactly_what_to_do(offline_env):
    with pytest.raises(ModelNotAvailableError) as err:
        resolve_translator("zh", "en")
    message = err.value.message
    assert "no zh->en translation model is available offline" in message
    assert "--model Helsinki-NLP/opus-mt-zh-en" in message  # the hub name for when there is a network
    assert "--model /path/to/folder" in message
    assert "ct2-transformers-converter --model Helsinki-NLP/opus-mt-zh-en" in message
    assert "--copy_files source.spm target.spm" in message
    assert err.value.exit_code == 4
    with pytest.raises(ModelNotAvailableError, match="--translation-model Helsinki-NLP/opus-mt-en-zh"):
        resolve_translator("en", "zh", flag="--translation-model")
    with pytest.raises(ModelNotAvailableError, match="is not downloaded and there is no network"):
        resolve_translator("zh", "en", "facebook/nllb-200-distilled-600M")
    with pytest.raises(InputError, match="translates en->zh, not zh->en"):
        resolve_translator("zh", "en", "Helsinki-NLP/opus-mt-en-zh")
    assert translation_models()[0]["status"].startswith("no translation model installed")


def test_a_converted_folder_without_tokenizer_files_is_refused(tiny_marian, offline_env):
    bare = offline_env / "bare-ct2"
    shutil.copytree(tiny_marian["zh-en-ct2"], bare)
    for name in ("source.spm", "target.spm", "tokenizer_config.json", "vocab.json"):
        (bare / name).unlink()
    with pytest.raises(ModelNotAvailableError, match="--copy_files source.spm target.spm"):
        resolve_translator("zh", "en", bare)


def test_same_language_is_refused(offline_env):
    with pytest.raises(InputError, match="already in en"):
        resolve_translator("en-US", "eng")


def test_captionbridge_models_lists_translation_models(tiny_marian, offline_env):
    import json

    from click.testing import CliRunner

    from captionbridge.plugin.cli import cli

    shutil.copytree(tiny_marian["zh-en-ct2"], offline_env / "models" / "opus-mt-zh-en-ct2")
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listed = [m for m in json.loads(result.output)["models"] if m["kind"] == "translation"]
    assert [(m["name"], m["languages"], m["status"]) for m in listed] == [
        ("opus-mt-zh-en-ct2", "zh->en", "ready")
    ]
