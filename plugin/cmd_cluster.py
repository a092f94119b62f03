"""`captionbridge cluster deploy|add-bay|revoke-bay|status`: the facility's shared transcription cluster (Ray
Serve).

Run these on the cluster's head node (where its data folder is). Bays then point ``captionbridge serve
--cluster`` (or ``caption --cluster``) at the URL ``deploy`` prints, each with the token ``add-bay`` printed
for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

DATA_DIR_ENV = "CAPTIONBRIDGE_CLUSTER_DIR"


def _default_data_dir() -> Path:
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    from .service.paths import config_dir

    return config_dir() / "cluster"


def _data_dir_option(command):
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help=f"The cluster's data folder: bay tokens, shared transcript cache, audio, access log "
        f"[default: ${DATA_DIR_ENV} or the config folder's cluster/].",
    )(command)


def _address_option(command):
    return click.option(
        "--address",
        default=None,
        envvar="RAY_ADDRESS",
        help="Ray cluster address (host:port of the head's GCS) [default: $RAY_ADDRESS or the "
        "local cluster].",
    )(command)


@click.group("cluster")
def cluster_cmd() -> None:
    """The facility cluster: shared GPU transcription for every edit bay (Ray Serve)."""


@cluster_cmd.command("deploy")
@_address_option
@_data_dir_option
@click.option(
    "--model",
    default=None,
    help="Whisper model name or folder (the same path on every node) [default: the packaged model].",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="Replica device [default: cuda when the cluster has GPUs, else cpu].",
)
@click.option("--min-replicas", type=click.IntRange(1, 1024), default=1, show_default=True)
@click.option(
    "--max-replicas",
    type=click.IntRange(1, 1024),
    default=None,
    help="Autoscaling ceiling [default: one per GPU, or --min-replicas on CPU].",
)
@click.option(
    "--cpus-per-replica",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="CPU cores each CPU replica holds (and its decoding threads).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the HTTP ingress listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8443, show_default=True)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    default=None,
    help="PEM certificate (required beyond loopback).",
)
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="PEM private key.")
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=1),
    default=512.0,
    show_default=True,
    help="Largest audio span accepted (FLAC; about 2 MB per minute).",
)
@click.option(
    "--stages",
    default="translate,speakers",
    show_default=True,
    help="What the cluster runs besides transcription: translate, speakers, both, or none.",
)
@click.option(
    "--translation-model",
    "translation_models",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Offline translation model folder (repeatable, one per direction; the same path on every node) "
    "[default: what the nodes find offline].",
)
@click.option("--stage-replicas", type=click.IntRange(1, 256), default=1, show_default=True)
@click.option(
    "--stage-cpus",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="CPU cores each translation/speakers replica holds.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Translation requests from different bays merged into one model call (1: no batching).",
)
@click.option(
    "--batch-wait-ms",
    type=click.FloatRange(min=0, max=1000),
    default=20.0,
    show_default=True,
    help="How long a batch (translation, or Whisper with --whisper-batch-size) waits for more requests.",
)
@click.option(
    "--whisper-batch-size",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Spans from different bays that a Whisper replica decodes in one batch when each fits one 30 s "
    "window and their settings match (1: off). Batched decoding uses the first temperature only, without "
    "the fallback to higher temperatures.",
)
def deploy_cmd(
    address,
    data_dir,
    model,
    device,
    min_replicas,
    max_replicas,
    cpus_per_replica,
    host,
    port,
    tls_cert,
    tls_key,
    max_upload_mb,
    stages,
    translation_models,
    stage_replicas,
    stage_cpus,
    batch_size,
    batch_wait_ms,
    whisper_batch_size,
) -> None:
    """Deploy (or update) the transcription application on a running Ray cluster."""
    from .cluster.deploy import check_listen, connect, deploy

    check_listen(host, tls_cert, tls_key)  # before joining the cluster: a refusal costs nothing
    extra = [x.strip() for x in (stages or "").split(",") if x.strip() and x.strip() != "none"]
    if any(x not in ("translate", "speakers") for x in extra):
        raise click.UsageError(f"--stages {stages!r}: use translate, speakers, translate,speakers or none")
    connect(address)
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    device = device or ("cuda" if gpus else "cpu")
    if device == "cuda" and not gpus:
        raise click.UsageError("--device cuda, but the Ray cluster has no GPUs")
    max_replicas = max_replicas or (max(gpus, min_replicas) if device == "cuda" else min_replicas)
    info = deploy(
        address,
        Path(data_dir) if data_dir else _default_data_dir(),
        model,
        device,
        min_replicas,
        max(max_replicas, min_replicas),
        cpus_per_replica,
        host,
        port,
        tls_cert,
        tls_key,
        max_upload_mb,
        tuple(extra),
        tuple(translation_models),
        stage_replicas,
        stage_cpus,
        batch_size,
        batch_wait_ms,
        whisper_batch_size,
    )
    if info["serve_was_running"]:
        click.echo(
            "note: Ray Serve was already running on this cluster, so its HTTP address, port and TLS files "
            "stay "
            "as they were started; to change them, run `serve shutdown` and deploy again",
            err=True,
        )
    click.echo(
        f"deployed {info['app']} ({device}, {min_replicas}-{max(max_replicas, min_replicas)} replicas) at "
        f"{info['url']}; data in {info['data_dir']}. Add bays with: captionbridge cluster add-bay NAME"
    )


@cluster_cmd.command("add-bay")
@click.argument("name")
@_data_dir_option
@click.option("--url", default=None, help="The cluster's URL, for the facility config printed.")
def add_bay_cmd(name, data_dir, url) -> None:
    """Issue a token for edit bay NAME (printed once; only its hash is kept)."""
    from ..core.cluster.bays import BayRegistry

    token = BayRegistry(Path(data_dir) if data_dir else _default_data_dir()).add(name)
    click.echo(token)
    click.echo(
        f"bay {name!r} added. On the bay, save the token (first line) to a file readable only by the "
        "editor's account and put in its facility config:\n[cluster]\n"
        f'url = "{url or "https://CLUSTER-HEAD:8443"}"\ntoken_file = "/path/to/that/file"\n'
        'ca_cert = "/path/to/facility-ca.pem"\non_unreachable = "fallback"',
        err=True,
    )


@cluster_cmd.command("revoke-bay")
@click.argument("name")
@_data_dir_option
def revoke_bay_cmd(name, data_dir) -> None:
    """Withdraw bay NAME's token; the cluster refuses it from the next request on."""
    from ..core.cluster.bays import BayRegistry

    BayRegistry(Path(data_dir) if data_dir else _default_data_dir()).revoke(name)
    click.echo(f"bay {name!r} revoked", err=True)


@cluster_cmd.command("status")
@_address_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(address, as_json) -> None:
    """Nodes, replicas, GPUs, queue per bay, cache hit rate."""
    from .cluster.deploy import status

    info = status(address)
    if as_json:
        click.echo(json.dumps(info, indent=1, default=str))
        return
    alive = [n for n in info["nodes"] if n["alive"]]
    click.echo(
        f"application: {info['app']}; model {info['model']['model_name']} ({info['model']['compute']})"
    )
    click.echo(
        f"nodes: {len(alive)} alive of {len(info['nodes'])}; CPUs {info['cpus']:g}, GPUs {info['gpus']:g}"
    )
    for node in info["nodes"]:
        click.echo(
            f"  {node['id']} {node['address']} {'alive' if node['alive'] else 'DEAD'} "
            f"cpus {node['cpus']:g} gpus {node['gpus']:g}"
        )
    for name, dep in info["deployments"].items():
        states = ", ".join(f"{k.lower()} {v}" for k, v in dep["replicas"].items()) or "none"
        click.echo(f"deployment {name}: {dep['status'].lower()}; replicas: {states}")
    cache = info["cache"]
    rate = "n/a" if cache["hit_rate"] is None else f"{100 * cache['hit_rate']:.1f} %"
    click.echo(
        f"jobs in flight {info['inflight']}/{info['max_inflight']}; cache hit rate {rate} "
        f"({cache['hits']} of {cache['lookups']} lookups); replicas lost mid-span {info['replicas_lost']}"
    )
    if not info["bays"]:
        click.echo("no bay has asked for anything yet")
    for bay, row in info["bays"].items():
        click.echo(
            f"  bay {bay}: queued {row['queued']}, running {row['running']}, jobs {row['jobs']}, "
            f"cache hits {row['cache_hits']}/{row['lookups']}, uploaded {row['uploaded_bytes']} bytes"
        )
    offered = info.get("offered") or {}
    for kind, row in (info.get("stages") or {}).items():
        rate = "n/a" if row["hit_rate"] is None else f"{100 * row['hit_rate']:.1f} %"
        models = offered.get(kind)
        what = ", ".join(f"{d} {m}" for d, m in models.items()) if isinstance(models, dict) else models
        click.echo(
            f"stage {kind} ({what}): queued {row['queued']}, in flight "
            f"{row['inflight']}/{row['max_inflight']}, jobs {row['jobs']}, cache hit rate {rate} "
            f"({row['hits']} of {row['lookups']})"
        )
    batches = (info.get("stage_replica") or {}).get("batches") or {}
    if batches.get("batches"):
        click.echo(
            f"translation batches on one stage replica: {batches['batches']} for {batches['requests']} "
            f"requests (largest {batches['largest']})"
        )
    whisper = (info.get("transcriber_replica") or {}).get("batches") or {}
    if whisper.get("batches"):
        click.echo(
            f"Whisper batches on one replica: {whisper['batches']} for {whisper['requests']} spans "
            f"(largest {whisper['largest']}; spans decoded together {whisper.get('decoded_together', 0)}, "
            f"at most {whisper.get('largest_decoded_together', 0)} at once; on their own "
            f"{whisper.get('decoded_alone', 0)})"
        )
