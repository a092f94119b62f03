"""The bay's side of ``caption`` and ``serve``: the options that send transcription to the facility
cluster."""

from __future__ import annotations

import click

from ...core.cluster.client import ClusterBackend, ClusterStages
from ...core.cluster.facility import ClusterConfig
from ...core.speech.remote import set_speaker_backend, set_speech_backend
from ...core.translate.remote import set_translation_backend


def cluster_options(command):
    """``--cluster``, ``--facility-config``, ``--cluster-token-file``, ``--cluster-ca-cert``,
    ``--on-cluster-unreachable``, ``--cluster-stages``."""
    for option in reversed(
        [
            click.option(
                "--cluster",
                "cluster_url",
                metavar="URL",
                default=None,
                envvar="CAPTIONBRIDGE_CLUSTER",
                help="Transcribe on the facility cluster at URL (https://...), not on this machine.",
            ),
            click.option(
                "--facility-config",
                type=click.Path(dir_okay=False),
                default=None,
                envvar="CAPTIONBRIDGE_FACILITY_CONFIG",
                help="Facility config file ([cluster] url, token_file, ca_cert, on_unreachable).",
            ),
            click.option(
                "--cluster-token-file",
                type=click.Path(dir_okay=False),
                default=None,
                help="File holding this bay's token (from `captionbridge cluster add-bay`).",
            ),
            click.option(
                "--cluster-ca-cert",
                type=click.Path(dir_okay=False),
                default=None,
                help="CA certificate that signed the cluster's TLS certificate (a private facility CA).",
            ),
            click.option(
                "--on-cluster-unreachable",
                type=click.Choice(["fallback", "wait"]),
                default=None,
                help="When the cluster cannot be reached: transcribe locally (fallback, default) or wait.",
            ),
            click.option(
                "--cluster-stages",
                metavar="LIST",
                default=None,
                help="What goes to the cluster: any of transcribe,translate,speakers [default: all three; "
                "translation and speakers only where the cluster runs them].",
            ),
        ]
    ):
        command = option(command)
    return command


def use_cluster(
    cluster_url: str | None,
    facility_config: str | None,
    cluster_token_file: str | None,
    cluster_ca_cert: str | None,
    on_cluster_unreachable: str | None,
    cluster_stages: str | None = None,
) -> ClusterConfig | None:
    """Install the cluster backend for this process when asked to; returns its config (None: local)."""
    if not (cluster_url or facility_config):
        return None
    config = ClusterConfig.load(
        facility_config,
        url=cluster_url,
        token_file=cluster_token_file,
        ca_cert=cluster_ca_cert,
        on_unreachable=on_cluster_unreachable,
        stages=cluster_stages,
    )
    backend = ClusterBackend(config)
    stages = ClusterStages(backend)
    set_speech_backend(backend if "transcribe" in config.stages else None)
    set_translation_backend(stages if "translate" in config.stages else None)
    set_speaker_backend(stages if "speakers" in config.stages else None)
    return config
