"""Put the editor entry points where the editors look for them, and take them away again.

* Resolve: ``Generate Captions.py`` (Studio) and ``Generate Captions.lua`` (free edition: since 21.1 it runs
  only Lua menu scripts) into ``Fusion/Scripts/Utility`` so the item shows on every page (Workspace >
  Scripts), with the "Review Captions" and "Update Captions" entries of both languages written from one
  template each (``resolve_scripts/menu_entry.{py,lua}.template``).
* Premiere: the CEP extension folder ``com.captionbridge.premiere`` (CSXS/manifest.xml, panel HTML/JS,
  ExtendScript host) into the CEP ``extensions`` folder. It is unsigned: the user enables PlayerDebugMode
  once.

Both also record where the ``captionbridge`` CLI lives (``<config>/install.json``) so an editor script can
start the engine when it is not running.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import CaptionBridgeError, InputError

RESOLVE_MAIN_SCRIPTS = ("Generate Captions.py", "Generate Captions.lua")
# Menu entries of their own, written by the installer from one template per language
# (resolve_scripts/menu_entry.{py,lua}.template): title -> (the main script's function, what it does).
RESOLVE_MENU_ENTRIES = {
    "Review Captions": (
        "main_review",
        "Opens the CaptionBridge review page (served by the local engine) on the job that captioned the\n"
        "current timeline, through a one-time link: check the words against the sound, correct them, and\n"
        "Approve a new version.",
    ),
    "Update Captions": (
        "main_update",
        "Replaces the subtitle tracks that Generate Captions put on the current timeline with the latest\n"
        "version approved on the review page, verified by read-back (the old track is removed only once the\n"
        "new one is right).",
    ),
}
RESOLVE_SCRIPTS = RESOLVE_MAIN_SCRIPTS + tuple(
    f"{title}.{ext}" for title in RESOLVE_MENU_ENTRIES for ext in ("py", "lua")
)
PREMIERE_EXTENSION_ID = "com.captionbridge.premiere"
MARKER = "CaptionBridge"  # every file we install contains this word; uninstall removes only such files


class InstallError(CaptionBridgeError):
    code = "install_failed"
    exit_code = 6


@dataclass
class InstallResult:
    installed: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    folder: Path | None = None
    notes: list[str] = field(default_factory=list)


def _platform(platform: str | None) -> str:
    p = platform or sys.platform
    if p.startswith("win"):
        return "windows"
    if p == "darwin":
        return "macos"
    return "linux"


def _home(env: dict) -> Path:
    return Path(env.get("HOME") or env.get("USERPROFILE") or os.path.expanduser("~"))


def resolve_scripts_dir(
    all_users: bool = False, platform: str | None = None, env: dict | None = None
) -> Path:
    """``.../Fusion/Scripts/Utility`` for this OS (Blackmagic's documented locations)."""
    env = dict(os.environ) if env is None else env
    osname = _platform(platform)
    if osname == "macos":
        base = (
            Path("/Library/Application Support")
            if all_users
            else _home(env) / "Library" / "Application Support"
        )
        root = base / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
    elif osname == "windows":
        if all_users:
            root = (
                Path(env.get("PROGRAMDATA") or r"C:\ProgramData")
                / "Blackmagic Design"
                / "DaVinci Resolve"
                / "Fusion"
                / "Scripts"
            )
        else:
            appdata = Path(env.get("APPDATA") or _home(env) / "AppData" / "Roaming")
            root = appdata / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    else:
        root = (
            Path("/opt/resolve/Fusion/Scripts")
            if all_users
            else _home(env) / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"
        )
    return root / "Utility"


def cep_extensions_dir(all_users: bool = False, platform: str | None = None, env: dict | None = None) -> Path:
    """Adobe's CEP extension folder for this OS."""
    env = dict(os.environ) if env is None else env
    osname = _platform(platform)
    if osname == "macos":
        base = (
            Path("/Library/Application Support")
            if all_users
            else _home(env) / "Library" / "Application Support"
        )
        return base / "Adobe" / "CEP" / "extensions"
    if osname == "windows":
        if all_users:
            common = (
                env.get("CommonProgramFiles(x86)")
                or env.get("COMMONPROGRAMFILES(X86)")
                or r"C:\Program Files (x86)\Common Files"
            )
            return Path(common) / "Adobe" / "CEP" / "extensions"
        appdata = Path(env.get("APPDATA") or _home(env) / "AppData" / "Roaming")
        return appdata / "Adobe" / "CEP" / "extensions"
    raise InstallError(
        "Premiere Pro does not run on Linux: pass --dest DIR to place the extension folder "
        "somewhere to copy to a Mac or Windows computer"
    )


def _package_dir(subpackage: str) -> Path:
    here = Path(__file__).resolve().parent.parent  # the captionbridge package root
    return here / subpackage


def _permission_hint(path: Path, all_users: bool) -> str:
    if not all_users:
        return f"cannot write to {path}: check the folder's permissions or pass --dest DIR"
    if os.name == "nt":
        return f"cannot write to {path}: run the terminal as Administrator for --all-users"
    return f"cannot write to {path}: --all-users needs administrator rights (sudo captionbridge install ...)"


def record_cli(config: Path | None = None) -> Path | None:
    """Write ``<config>/install.json`` = {"cli", "python", "version"} so editor scripts can start the
    engine."""
    from .. import __version__

    try:
        from .service.paths import config_dir

        folder = Path(config) if config else config_dir()
    except Exception:  # the service package is another area; fall back to the documented rules
        folder = Path(config) if config else _config_dir_fallback()
    exe_name = "captionbridge.exe" if os.name == "nt" else "captionbridge"
    cli = shutil.which("captionbridge") or str(Path(sys.executable).parent / exe_name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "install.json"
        path.write_text(json.dumps({"cli": cli, "python": sys.executable, "version": __version__}, indent=2))
        return path
    except OSError:
        return None


def _config_dir_fallback() -> Path:
    env = os.environ
    if env.get("CAPTIONBRIDGE_CONFIG_DIR"):
        return Path(env["CAPTIONBRIDGE_CONFIG_DIR"])
    osname = _platform(None)
    if osname == "windows":
        return Path(env.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "CaptionBridge"
    if osname == "macos":
        return Path.home() / "Library" / "Application Support" / "CaptionBridge"
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "captionbridge"


def render_menu_entry(title: str, ext: str, folder: str | os.PathLike) -> str:
    """The menu entry ``<title>.<ext>`` ("py" or "lua") for scripts installed in ``folder``: the template with
    its title, description, entry function and folder filled in."""
    entry, about = RESOLVE_MENU_ENTRIES[title]
    template = _package_dir("resolve_scripts") / f"menu_entry.{ext}.template"
    if not template.is_file():
        raise InstallError(
            f"{template} is missing from this CaptionBridge installation: reinstall captionbridge"
        )
    folder = str(folder)
    if ext == "py":
        folder_text = json.dumps(folder)[1:-1]  # inside a "..." literal: backslashes and quotes escaped
    elif "]==]" in folder:
        raise InstallError(f"cannot install into {folder}: a folder name with ']==]' in it; pass --dest DIR")
    else:
        folder_text = folder  # inside a [==[...]==] literal: as it is
    return (
        template.read_text(encoding="utf-8")
        .replace("{{TITLE}}", title)
        .replace("{{ABOUT}}", about)
        .replace("{{ENTRY}}", entry)
        .replace("{{FOLDER}}", folder_text)
    )


def install_resolve(
    all_users: bool = False,
    dest: str | os.PathLike | None = None,
    platform: str | None = None,
    env: dict | None = None,
    config: Path | None = None,
) -> InstallResult:
    folder = Path(dest) if dest else resolve_scripts_dir(all_users, platform, env)
    source = _package_dir("resolve_scripts")
    result = InstallResult(folder=folder)
    fusion = folder.parent.parent  # .../Fusion
    fresh = not dest and not fusion.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in RESOLVE_MAIN_SCRIPTS:
            src = source / name
            if not src.is_file():
                raise InstallError(
                    f"{src} is missing from this CaptionBridge installation: reinstall captionbridge"
                )
            target = folder / name
            shutil.copyfile(src, target)
            result.installed.append(target)
        for title in RESOLVE_MENU_ENTRIES:
            for ext in ("py", "lua"):
                target = folder / f"{title}.{ext}"
                target.write_text(render_menu_entry(title, ext, folder.resolve()), encoding="utf-8")
                result.installed.append(target)
    except PermissionError:
        raise InstallError(_permission_hint(folder, all_users)) from None
    except OSError as exc:
        raise InstallError(f"cannot install into {folder}: {exc.strerror or exc}") from None
    recorded = record_cli(config)
    result.notes = [
        *(
            [
                f"note: {fusion} did not exist - is DaVinci Resolve installed for this user? (created it "
                "anyway)"
            ]
            if fresh
            else []
        ),
        "Restart DaVinci Resolve, then choose Workspace > Scripts > Generate Captions (on every page).",
        "Review Captions opens the review page on that job; Update Captions puts the approved version back.",
        "Studio runs the .py entries; the free edition (21.1+) lists only the .lua ones (same behaviour).",
        "Python in Studio needs a Python 3 install Resolve can find (Help > Documentation > Developer).",
        "The script talks to the engine: keep `captionbridge serve` running"
        + (f" (or it starts {json.loads(recorded.read_text())['cli']} serve)." if recorded else "."),
    ]
    return result


def uninstall_resolve(
    all_users: bool = False,
    dest: str | os.PathLike | None = None,
    platform: str | None = None,
    env: dict | None = None,
) -> InstallResult:
    folder = Path(dest) if dest else resolve_scripts_dir(all_users, platform, env)
    result = InstallResult(folder=folder)
    for name in RESOLVE_SCRIPTS:
        target = folder / name
        if not target.is_file():
            continue
        try:
            if MARKER not in target.read_text(encoding="utf-8", errors="replace"):
                result.notes.append(f"left {target} alone: it is not CaptionBridge's script")
                continue
            target.unlink()
        except PermissionError:
            raise InstallError(_permission_hint(folder, all_users)) from None
        result.removed.append(target)
    if not result.removed and not result.notes:
        result.notes.append(f"nothing to remove: no CaptionBridge scripts in {folder}")
    return result


PLAYER_DEBUG_NOTES = {
    "macos": [
        "defaults write com.adobe.CSXS.11 PlayerDebugMode 1",
        "defaults write com.adobe.CSXS.12 PlayerDebugMode 1",
    ],
    "windows": [
        r"reg add HKCU\Software\Adobe\CSXS.11 /v PlayerDebugMode /t REG_SZ /d 1 /f",
        r"reg add HKCU\Software\Adobe\CSXS.12 /v PlayerDebugMode /t REG_SZ /d 1 /f",
    ],
}


def install_premiere(
    all_users: bool = False,
    dest: str | os.PathLike | None = None,
    platform: str | None = None,
    env: dict | None = None,
    config: Path | None = None,
) -> InstallResult:
    base = Path(dest) if dest else cep_extensions_dir(all_users, platform, env)
    folder = base / PREMIERE_EXTENSION_ID
    panel = _package_dir("plugin") / "premiere"
    manifest = _package_dir("manifests") / "premiere_manifest.xml"
    if not manifest.is_file() or not (panel / "index.html").is_file():
        raise InstallError(f"the Premiere panel files are missing from {panel}: reinstall captionbridge")
    result = InstallResult(folder=folder)
    try:
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(panel, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "README.md"))
        (folder / "CSXS").mkdir(exist_ok=True)
        shutil.copyfile(manifest, folder / "CSXS" / "manifest.xml")
        (folder / ".debug").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n<ExtensionList>\n  <Extension '
            'Id="com.captionbridge.premiere.panel">'
            '\n    <HostList><Host Name="PPRO" Port="8099"/></HostList>\n  </Extension>\n</ExtensionList>\n'
        )
    except PermissionError:
        raise InstallError(_permission_hint(base, all_users)) from None
    except OSError as exc:
        raise InstallError(f"cannot install into {folder}: {exc.strerror or exc}") from None
    result.installed = sorted(p for p in folder.rglob("*") if p.is_file())
    record_cli(config)
    osname = _platform(platform)
    commands = PLAYER_DEBUG_NOTES.get(osname, PLAYER_DEBUG_NOTES["macos"] + PLAYER_DEBUG_NOTES["windows"])
    result.notes = [
        "The panel is not signed: allow unsigned extensions once (Premiere Pro 2022-2025, CEP 11/12):",
        *[f"    {c}" for c in commands],
        "Quit and restart Premiere Pro, then open Window > Extensions > CaptionBridge.",
        "Keep `captionbridge serve` running; the panel talks to it on localhost.",
        "Premiere 25.6+ also runs UXP plugins, but UXP cannot yet make a caption track from a caption file, "
        "so this "
        "panel stays CEP (see plugin/premiere/README.md).",
    ]
    return result


def uninstall_premiere(
    all_users: bool = False,
    dest: str | os.PathLike | None = None,
    platform: str | None = None,
    env: dict | None = None,
) -> InstallResult:
    base = Path(dest) if dest else cep_extensions_dir(all_users, platform, env)
    folder = base / PREMIERE_EXTENSION_ID
    result = InstallResult(folder=folder)
    if not (folder / "CSXS" / "manifest.xml").is_file():
        result.notes.append(f"nothing to remove: {folder} is not installed")
        return result
    if PREMIERE_EXTENSION_ID not in (folder / "CSXS" / "manifest.xml").read_text(errors="replace"):
        raise InputError(f"{folder} does not hold CaptionBridge's panel; left alone")
    try:
        files = [p for p in folder.rglob("*") if p.is_file()]
        shutil.rmtree(folder)
    except PermissionError:
        raise InstallError(_permission_hint(base, all_users)) from None
    result.removed = files
    return result
