"""Update Captions - CaptionBridge for DaVinci Resolve (Workspace > Scripts > Utility > Update Captions).

Replaces the subtitle tracks that Generate Captions put on the current timeline with the latest version
approved on the review page, verified by read-back (the old track is removed only once the new one is right).
Standard library only; the work is done by "Generate Captions.py" from the same folder (installed together).
"""

from __future__ import print_function

import importlib.util
import os
import sys

MAIN_SCRIPT = "Generate Captions.py"


def _candidates():
    here = globals().get("__file__") or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    if here:
        yield os.path.join(os.path.dirname(os.path.abspath(here)), MAIN_SCRIPT)
    home = os.path.expanduser("~")
    for base in (
        os.path.join(os.environ.get("APPDATA", ""), "Blackmagic Design", "DaVinci Resolve", "Support"),
        os.path.join(os.environ.get("PROGRAMDATA", ""), "Blackmagic Design", "DaVinci Resolve"),
        os.path.join(home, "Library", "Application Support", "Blackmagic Design", "DaVinci Resolve"),
        "/Library/Application Support/Blackmagic Design/DaVinci Resolve",
        os.path.join(home, ".local", "share", "DaVinciResolve"),
        "/opt/resolve",
    ):
        yield os.path.join(base, "Fusion", "Scripts", "Utility", MAIN_SCRIPT)


def load_main():
    for path in _candidates():
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("captionbridge_generate_captions", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise SystemExit(
        "CaptionBridge: '%s' was not found next to this script: run 'captionbridge install resolve' "
        "again" % MAIN_SCRIPT
    )


def main():
    app = globals().get("resolve")
    if app is None and globals().get("bmd") is not None:
        app = globals()["bmd"].scriptapp("Resolve")
    module = load_main()
    for name in ("resolve", "fusion", "bmd"):  # what Resolve injected here, for the main script's dialogs
        if name in globals():
            setattr(module, name, globals()[name])
    return module.main_update(app)


if __name__ == "__main__" or "resolve" in globals() or "bmd" in globals():
    main()
