"""``captionbridge install|uninstall resolve|premiere``: OS folders, files copied, notes, and package data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner
from fixtures.paths import REPO, absent

from captionbridge.plugin import installers
from captionbridge.plugin.cli import cli

ROOT = REPO


@pytest.mark.parametrize(
    "platform,all_users,env,expected",
    [
        (
            "darwin",
            False,
            {"HOME": "/Users/ed"},
            "/Users/ed/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility",
        ),
        (
            "darwin",
            True,
            {"HOME": "/Users/ed"},
            "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility",
        ),
        ("linux", False, {"HOME": "/home/ed"}, "/home/ed/.local/share/DaVinciResolve/Fusion/Scripts/Utility"),
        ("linux", True, {"HOME": "/home/ed"}, "/opt/resolve/Fusion/Scripts/Utility"),
    ],
)
def test_resolve_folders_posix(platform, all_users, env, expected):
    assert installers.resolve_scripts_dir(all_users, platform, env).as_posix() == expected


def test_resolve_folders_windows():
    user = installers.resolve_scripts_dir(False, "win32", {"APPDATA": "C:/Users/ed/AppData/Roaming"})
    assert (
        user.as_posix()
        == "C:/Users/ed/AppData/Roaming/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Utility"
    )
    every = installers.resolve_scripts_dir(True, "win32", {"PROGRAMDATA": "C:/ProgramData"})
    assert every.as_posix() == "C:/ProgramData/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"


def test_cep_folders():
    assert (
        installers.cep_extensions_dir(False, "darwin", {"HOME": "/Users/ed"}).as_posix()
        == "/Users/ed/Library/Application Support/Adobe/CEP/extensions"
    )
    assert (
        installers.cep_extensions_dir(False, "win32", {"APPDATA": "C:/U/AppData/Roaming"}).as_posix()
        == "C:/U/AppData/Roaming/Adobe/CEP/extensions"
    )
    assert (
        installers.cep_extensions_dir(
            True, "win32", {"CommonProgramFiles(x86)": "C:/PF86/Common Files"}
        ).as_posix()
        == "C:/PF86/Common Files/Adobe/CEP/extensions"
    )
    with pytest.raises(installers.InstallError, match="--dest"):
        installers.cep_extensions_dir(False, "linux", {"HOME": "/home/ed"})


def test_install_and_uninstall_resolve_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONBRIDGE_CONFIG_DIR", str(tmp_path / "config"))
    dest = tmp_path / "Utility"
    runner = CliRunner()
    res = runner.invoke(cli, ["install", "resolve", "--dest", str(dest)])
    assert res.exit_code == 0, res.output
    for name in installers.RESOLVE_MAIN_SCRIPTS:
        assert (dest / name).read_bytes() == (ROOT / "resolve_scripts" / name).read_bytes()
    for title in installers.RESOLVE_MENU_ENTRIES:  # written from the templates, for this folder
        for ext in ("py", "lua"):
            text = (dest / f"{title}.{ext}").read_text(encoding="utf-8")
            assert text == installers.render_menu_entry(title, ext, dest.resolve())
            assert "{{" not in text and str(dest.resolve()) in text and "CaptionBridge" in text
    assert "Workspace > Scripts > Generate Captions" in res.output and "free edition" in res.output
    recorded = json.loads((tmp_path / "config" / "install.json").read_text())
    assert recorded["python"] == sys.executable and recorded["cli"].endswith("captionbridge")
    # a foreign file of the same name is left alone
    (dest / "Other.py").write_text("print('x')")
    res = runner.invoke(cli, ["uninstall", "resolve", "--dest", str(dest)])
    assert res.exit_code == 0, res.output
    assert not (dest / "Generate Captions.py").exists() and not (dest / "Generate Captions.lua").exists()
    assert (dest / "Other.py").exists()
    res = runner.invoke(cli, ["uninstall", "resolve", "--dest", str(dest)])
    assert res.exit_code == 0 and "nothing to remove" in res.output


def test_install_resolve_default_folder_notes_missing_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONBRIDGE_CONFIG_DIR", str(tmp_path / "config"))
    env = {"HOME": str(tmp_path / "home")}
    result = installers.install_resolve(platform="linux", env=env)
    assert result.folder == tmp_path / "home/.local/share/DaVinciResolve/Fusion/Scripts/Utility"
    assert (result.folder / "Generate Captions.lua").is_file()
    assert "is DaVinci Resolve installed" in result.notes[0]
    again = installers.install_resolve(platform="linux", env=env)
    assert "is DaVinci Resolve installed" not in " ".join(again.notes)
    removed = installers.uninstall_resolve(platform="linux", env=env)
    assert sorted(p.name for p in removed.removed) == sorted(installers.RESOLVE_SCRIPTS)


def test_uninstall_keeps_a_foreign_script_with_our_name(tmp_path):
    (tmp_path / "Generate Captions.py").write_text("print('someone else')")
    result = installers.uninstall_resolve(dest=tmp_path)
    assert (tmp_path / "Generate Captions.py").exists() and "left" in result.notes[0]


def test_install_into_unwritable_folder_is_a_clear_error(tmp_path):
    import os
    import shutil

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    args = ["install", "resolve", "--dest", str(locked / "Utility")]
    try:
        if os.geteuid() != 0:
            res = CliRunner().invoke(cli, args)
            code, output = res.exit_code, res.output
        else:  # root ignores permissions: run the CLI as root without the capabilities that override them
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                absent("running as root without setpriv (util-linux): cannot drop the permission override")
            run = subprocess.run(
                [
                    setpriv,
                    "--bounding-set=-dac_override,-dac_read_search",
                    sys.executable,
                    "-m",
                    "captionbridge.plugin.cli",
                    *args,
                ],
                capture_output=True,
                text=True,
                timeout=120,
                env=dict(os.environ, CAPTIONBRIDGE_CONFIG_DIR=str(tmp_path / "config")),
            )
            code, output = run.returncode, run.stdout + run.stderr
        assert code == 6 and "error: cannot write" in output, output
    finally:
        locked.chmod(0o700)


def test_install_premiere_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONBRIDGE_CONFIG_DIR", str(tmp_path / "config"))
    runner = CliRunner()
    res = runner.invoke(cli, ["install", "premiere", "--dest", str(tmp_path / "extensions")])
    assert res.exit_code == 0, res.output
    ext = tmp_path / "extensions" / "com.captionbridge.premiere"
    assert (ext / "CSXS" / "manifest.xml").read_bytes() == (
        ROOT / "manifests" / "premiere_manifest.xml"
    ).read_bytes()
    for rel in ("index.html", "js/core.js", "js/panel.js", "js/review.js", "jsx/host.jsx", "jsx/review.jsx"):
        assert (ext / rel).read_bytes() == (ROOT / "plugin" / "premiere" / rel).read_bytes()
    scripts = re.findall(r'<script src="([^"]+)"', (ext / "index.html").read_text())
    assert scripts == ["js/core.js", "js/panel.js", "js/review.js"] and all(
        (ext / s).is_file() for s in scripts
    )
    assert "PlayerDebugMode" in res.output and "Window > Extensions > CaptionBridge" in res.output
    res = runner.invoke(cli, ["install", "premiere", "--dest", str(tmp_path / "extensions")])  # reinstall
    assert res.exit_code == 0
    res = runner.invoke(cli, ["uninstall", "premiere", "--dest", str(tmp_path / "extensions")])
    assert res.exit_code == 0 and not ext.exists()


def test_install_premiere_on_linux_without_dest_says_why(monkeypatch):
    if sys.platform != "linux":
        pytest.skip("Linux only")
    res = CliRunner().invoke(cli, ["install", "premiere"])
    assert res.exit_code == 6 and "Premiere Pro does not run on Linux" in res.output


def test_wheel_ships_editor_files(tmp_path):
    """The built wheel holds the Resolve scripts, the Premiere panel and both manifests."""
    import shutil

    # Build from a copy: an in-tree build would leave build/ and egg-info behind in the working tree.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            ".hypothesis",
            "tests",
            "benchmarks",
            "out",
        ),
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"the wheel does not build: {run.stderr[-1500:]}"
    wheel = next(tmp_path.glob("captionbridge-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in (
        "captionbridge/resolve_scripts/Generate Captions.py",
        "captionbridge/resolve_scripts/Generate Captions.lua",
        "captionbridge/manifests/plugin_manifest.json",
        "captionbridge/manifests/premiere_manifest.xml",
        "captionbridge/plugin/premiere/index.html",
        "captionbridge/plugin/premiere/js/panel.js",
        "captionbridge/plugin/premiere/js/core.js",
        "captionbridge/plugin/premiere/jsx/host.jsx",
        "captionbridge/adapters/otio_plugin_srt.py",
        "captionbridge/adapters/otio_plugin_vtt.py",
    ):
        assert rel in names, rel
    # every Python module of the package (the rooms of core/ included) is in the wheel
    skip = {".venv", ".git", "tests", "benchmarks", "examples", "build", "dist"}
    modules = {
        "captionbridge/" + p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("*.py")
        if not skip & set(p.relative_to(ROOT).parts)
    }
    missing = sorted(modules - names)
    assert not missing, f"modules missing from the wheel (add their package to pyproject): {missing[:5]}"
    entry = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry[0]).decode()
    assert "[opentimelineio.plugins]" in text and "captionbridge = captionbridge.manifests" in text
