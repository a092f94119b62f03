"""How a bay reaches the facility cluster: ``serve --cluster URL`` or a facility config file (TOML)::

    [cluster]
    url = "https://gpu-head.facility.lan:8443"
    token_file = "/etc/captionbridge/bay-token"    # or token = "cbb_..."; or CAPTIONBRIDGE_CLUSTER_TOKEN
    ca_cert = "/etc/captionbridge/facility-ca.pem"  # the CA that signed the cluster's certificate
    on_unreachable = "fallback"                     # or "wait": hold jobs until the cluster is back
    wait_timeout_s = 900
    stages = ["transcribe", "translate", "speakers"]

``stages`` (default: all three) names what the bay sends to the cluster; translation and speakers go only
where the cluster runs them, and are done locally otherwise.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlparse

from ..errors import InputError

TOKEN_ENV = "CAPTIONBRIDGE_CLUSTER_TOKEN"
POLICIES = ("fallback", "wait")
STAGES = ("transcribe", "translate", "speakers")


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ClusterConfig:
    url: str
    token: str
    ca_cert: str | None = None
    on_unreachable: str = "fallback"
    wait_timeout_s: float = 900.0
    request_timeout_s: float = 30.0
    retry_window_s: float = 20.0  # how long a cluster that goes away mid-job is retried before falling back
    poll_interval_s: float = 0.25
    stages: list[str] = field(default_factory=lambda: list(STAGES))  # what this bay sends to the cluster

    def __post_init__(self) -> None:
        self.url = (self.url or "").rstrip("/")
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InputError(
                f"cluster address {self.url!r} is not an http(s) URL: pass e.g. "
                "--cluster https://gpu-head.facility.lan:8443"
            )
        if parsed.scheme == "http" and not is_loopback_host(parsed.hostname):
            raise InputError(
                f"cluster address {self.url} is plain http to another machine: the bay's token and "
                "audio would cross the network unencrypted; use https:// (the cluster is deployed "
                "with --tls-cert/--tls-key)"
            )
        if not self.token:
            raise InputError(
                f"no token for the cluster at {self.url}: set token_file in the facility config, "
                f"--cluster-token-file, or {TOKEN_ENV} (issued by captionbridge cluster add-bay NAME)"
            )
        if self.on_unreachable not in POLICIES:
            raise InputError(f"on_unreachable must be fallback or wait, not {self.on_unreachable!r}")
        if isinstance(self.stages, str):
            self.stages = [x.strip() for x in self.stages.split(",") if x.strip()]
        unknown = [x for x in self.stages or [] if x not in STAGES]
        if unknown or not self.stages:
            raise InputError(
                f"stages must name one or more of {', '.join(STAGES)} "
                f"(got {', '.join(map(str, unknown)) or 'none'})"
            )
        if self.ca_cert and not Path(self.ca_cert).is_file():
            raise InputError(
                f"CA certificate {self.ca_cert} does not exist: fix ca_cert in the facility config"
            )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        url: str | None = None,
        token_file: str | None = None,
        on_unreachable: str | None = None,
        ca_cert: str | None = None,
        stages: str | None = None,
    ) -> "ClusterConfig":
        """From a facility config file and/or a URL; explicit arguments override the file."""
        data: dict = {}
        if path is not None:
            try:
                import tomllib
            except ImportError:  # Python 3.10
                raise InputError(
                    "a facility config file needs Python 3.11 or later; pass --cluster URL and "
                    "--cluster-token-file instead"
                ) from None
            path = Path(path)
            try:
                data = dict(tomllib.loads(path.read_text(encoding="utf-8")).get("cluster", {}))
            except FileNotFoundError:
                raise InputError(f"facility config {path} does not exist") from None
            except (OSError, ValueError) as exc:  # TOMLDecodeError is a ValueError
                raise InputError(f"facility config {path} is unreadable: {exc}") from exc
            known = {f.name for f in fields(cls)} | {"token_file"}
            unknown = sorted(set(data) - known)
            if unknown:
                raise InputError(
                    f"facility config {path}: unknown key(s) {', '.join(unknown)} in [cluster]; known: "
                    f"{', '.join(sorted(known))}"
                )
        if url:
            data["url"] = url
        if on_unreachable:
            data["on_unreachable"] = on_unreachable
        if ca_cert:
            data["ca_cert"] = ca_cert
        if stages:
            data["stages"] = stages
        token_file = token_file or data.pop("token_file", None)
        token = data.pop("token", None) or os.environ.get(TOKEN_ENV)
        if token_file:
            try:
                token = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InputError(f"cannot read the bay token from {token_file}: {exc}") from exc
        if "url" not in data:
            raise InputError(
                "no cluster address: pass --cluster URL or set url in the facility config's [cluster]"
            )
        return cls(token=token or "", **data)
