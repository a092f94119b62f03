"""Per-bay credentials of the facility cluster: ``captionbridge cluster add-bay NAME`` issues a token,
``revoke-bay`` withdraws it. Only sha256 digests of tokens are kept (``bays.json`` in the cluster's data
folder, mode 600); the ingress rereads the file when it changes, so a revocation holds from the next request
on, without a redeploy."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from pathlib import Path

from ..errors import InputError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TOKEN_PREFIX = "cbb_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class BayRegistry:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "bays.json"
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._bays: dict[str, dict] = {}

    # -- file ------------------------------------------------------------------------------------------------
    def _load(self) -> dict[str, dict]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._bays = None, {}
            return self._bays
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(
                    f"{self.path} is unreadable ({exc}): restore it from a backup or re-add the bays"
                ) from exc
            self._bays, self._stamp = dict(data.get("bays", {})), stamp
        return self._bays

    def _save(self, bays: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".bays.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"version": 1, "bays": bays}, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    # -- admin -----------------------------------------------------------------------------------------------
    def add(self, name: str) -> str:
        """A new token for bay ``name`` (shown once). A revoked bay may be added again; an active one may
        not."""
        if not NAME_PATTERN.match(name or ""):
            raise InputError(
                f"bay name {name!r} is not usable: letters, digits, '.', '_' and '-', up to 64 "
                "characters, starting with a letter or digit"
            )
        with self._lock:
            bays = dict(self._load())
            if name in bays and not bays[name].get("revoked"):
                raise InputError(
                    f"bay {name!r} already has a token: revoke it first (captionbridge cluster "
                    f"revoke-bay {name}) to issue a new one"
                )
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            bays[name] = {"token_sha256": _digest(token), "created": time.time(), "revoked": None}
            self._save(bays)
            self._stamp = None
        return token

    def revoke(self, name: str) -> None:
        with self._lock:
            bays = dict(self._load())
            if name not in bays:
                known = ", ".join(sorted(bays)) or "none"
                raise InputError(f"no bay named {name!r} (bays: {known})")
            if bays[name].get("revoked"):
                return
            bays[name] = {**bays[name], "revoked": time.time()}
            self._save(bays)
            self._stamp = None

    def list(self) -> list[dict]:
        with self._lock:
            return [
                {"name": n, "created": b.get("created"), "revoked": b.get("revoked")}
                for n, b in sorted(self._load().items())
            ]

    # -- ingress ---------------------------------------------------------------------------------------------
    def authenticate(self, token: str | None) -> str | None:
        """The bay a token belongs to, or None (unknown, malformed or revoked)."""
        if not token or not token.startswith(TOKEN_PREFIX):
            return None
        digest = _digest(token)
        with self._lock:
            bays = self._load()
        found = None
        for name, bay in bays.items():  # compare every digest: the time taken does not say which one matched
            if hmac.compare_digest(digest, bay.get("token_sha256", "")) and not bay.get("revoked"):
                found = name
        return found
