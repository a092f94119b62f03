"""Deploying the Serve application onto a running Ray cluster, and reading the cluster's state for
``status``."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from ...core.cluster.facility import is_loopback_host
from ...core.errors import CaptionBridgeError, InputError

NAMESPACE = "captionbridge"


class ClusterNotRunning(CaptionBridgeError):
    code = "cluster_not_running"
    exit_code = 1


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (or RAY_ADDRESS / the local one) as a driver, quietly."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():  # Ray itself would retry an unreachable address for minutes
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as exc:
            raise ClusterNotRunning(
                f"no Ray cluster at {address} ({exc.strerror or exc}): start one with `ray start "
                "--head` on the GPU head node, or fix --address / RAY_ADDRESS"
            ) from None
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            logging_level=logging.WARNING,
            log_to_driver=False,
            include_dashboard=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterNotRunning(
            f"no Ray cluster at {address or 'this machine'} ({str(exc).splitlines()[0]}): "
            "start one with `ray start --head` on the GPU head node, or pass --address"
        ) from None


def check_listen(host: str, tls_cert: str | None, tls_key: str | None) -> None:
    """TLS is required beyond loopback; both PEM files or neither; they must exist."""
    if bool(tls_cert) != bool(tls_key):
        raise InputError("pass both --tls-cert and --tls-key (or neither, on loopback only)")
    if not is_loopback_host(host) and not tls_cert:
        raise InputError(
            f"the cluster would listen on {host}, beyond loopback, without TLS: bays' tokens and "
            "audio would cross the network in the clear. Pass --tls-cert and --tls-key"
        )
    for path in (tls_cert, tls_key):
        if path and not Path(path).is_file():
            raise InputError(
                f"{path} does not exist: pass the PEM files of the cluster's certificate and key"
            )


def check_fits(
    resources: dict,
    device: str,
    min_replicas: int,
    cpus_per_replica: float,
    stages: tuple,
    stage_replicas: int,
    stage_cpus: float,
) -> None:
    """Refuse a deployment whose minimum the cluster cannot hold at all (Serve would wait for it forever)."""
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    cuda = device == "cuda"
    need_cpu = min_replicas * (1 if cuda else cpus_per_replica)
    need_gpu = float(min_replicas) if cuda else 0.0
    if stages:
        need_cpu += stage_replicas * (1 if cuda else stage_cpus)
        need_gpu += 0.25 * stage_replicas if cuda else 0.0
    if need_cpu > cpus + 1e-9 or need_gpu > gpus + 1e-9:
        stage_part = (
            f" + {stage_replicas} Stages replica(s) x {1 if cuda else stage_cpus:g} CPU"
            + (" and 0.25 GPU" if cuda else "")
            if stages
            else ""
        )
        raise InputError(
            f"the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s); {min_replicas} Transcriber "
            f"replica(s) x {1 if cuda else cpus_per_replica:g} CPU{' and 1 GPU' if cuda else ''}"
            f"{stage_part} need "
            f"{need_cpu:g} CPU(s){f' and {need_gpu:g} GPU(s)' if cuda else ''}: add nodes, lower "
            "--min-replicas or --cpus-per-replica, or give translation and speakers fewer CPUs "
            "(--stage-cpus 0 shares the nodes' CPUs; --stages none runs transcription only)"
        )


def deploy(
    address: str | None,
    data_dir: Path,
    model: str | None,
    device: str,
    min_replicas: int,
    max_replicas: int,
    cpus_per_replica: float,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    max_upload_mb: float,
    stages: tuple = ("translate", "speakers"),
    translation_models: tuple = (),
    stage_replicas: int = 1,
    stage_cpus: float = 1.0,
    max_batch_size: int = 16,
    batch_wait_ms: float = 20.0,
    whisper_batch_size: int = 1,
) -> dict:
    from ray import serve

    from .app import APP_NAME, build_app

    if min_replicas > max_replicas:
        raise InputError(f"--min-replicas {min_replicas} is more than --max-replicas {max_replicas}")
    check_listen(host, tls_cert, tls_key)
    for folder in translation_models:
        if not Path(folder).expanduser().is_dir():
            raise InputError(
                f"translation model folder {folder} does not exist (it must exist at that path on every node)"
            )
    translation_models = tuple(str(Path(f).expanduser().resolve()) for f in translation_models)
    if model and os.sep in model and not Path(model).is_dir():
        raise InputError(
            f"model folder {model} does not exist (it must exist at that path on every GPU node)"
        )
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    connect(address)
    import ray

    check_fits(
        ray.cluster_resources(),
        device,
        min_replicas,
        cpus_per_replica,
        tuple(stages),
        stage_replicas,
        stage_cpus,
    )
    was_running = bool(serve.status().proxies)  # an empty status when Serve has not been started here
    http = {"host": host, "port": port}
    if tls_cert:
        http.update(ssl_certfile=str(Path(tls_cert).resolve()), ssl_keyfile=str(Path(tls_key).resolve()))
    serve.start(http_options=http)
    app = build_app(
        model,
        device,
        str(data_dir),
        min_replicas,
        max_replicas,
        cpus_per_replica,
        int(max_upload_mb * 1024 * 1024),
        tuple(stages),
        translation_models,
        stage_replicas,
        stage_cpus,
        max_batch_size,
        batch_wait_ms / 1000.0,
        whisper_batch_size,
    )
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    scheme = "https" if tls_cert else "http"
    return {
        "url": f"{scheme}://{host}:{port}",
        "data_dir": str(data_dir),
        "app": APP_NAME,
        "serve_was_running": was_running,
    }


def shutdown(address: str | None) -> None:
    from ray import serve

    from .app import APP_NAME

    connect(address)
    serve.delete(APP_NAME)


def status(address: str | None) -> dict:
    """Nodes, replicas, GPUs, queue per bay, cache hit rate."""
    import ray
    from ray import serve

    from .app import APP_NAME

    connect(address)
    nodes = [
        {
            "id": n["NodeID"][:12],
            "address": n.get("NodeManagerAddress"),
            "alive": n.get("Alive"),
            "cpus": n.get("Resources", {}).get("CPU", 0),
            "gpus": n.get("Resources", {}).get("GPU", 0),
        }
        for n in ray.nodes()
    ]
    try:
        serve_status = serve.status()
    except Exception as exc:  # Serve not started on this cluster
        raise ClusterNotRunning(
            f"Serve is not running on this Ray cluster ({exc}): run captionbridge cluster deploy first"
        ) from None
    app = serve_status.applications.get(APP_NAME)
    if app is None:
        raise ClusterNotRunning(
            "the captionbridge application is not deployed on this cluster: run captionbridge cluster deploy"
        )
    deployments = {
        name: {
            "status": str(getattr(d.status, "value", d.status)),
            "replicas": {str(getattr(k, "value", k)): v for k, v in d.replica_states.items()},
        }
        for name, d in app.deployments.items()
    }
    replicas = []
    try:
        from ray.util.state import list_actors

        for actor in list_actors(
            filters=[("state", "=", "ALIVE")], detail=True, limit=10000, raise_on_missing_output=False
        ):
            cls = actor.get("class_name", "") if isinstance(actor, dict) else getattr(actor, "class_name", "")
            if cls.startswith("ServeReplica:") and "Transcriber" in cls:
                get = (
                    (lambda k: actor.get(k))
                    if isinstance(actor, dict)
                    else (lambda k: getattr(actor, k, None))
                )
                replicas.append({"pid": get("pid"), "node": (get("node_id") or "")[:12], "name": get("name")})
    except Exception as exc:  # the state API needs the dashboard; the rest of the status does not
        replicas = [{"error": f"replica list unavailable ({type(exc).__name__})"}]
    hub = serve.get_app_handle(APP_NAME).stats.remote().result(timeout_s=30)
    resources = ray.cluster_resources()
    return {
        "app": str(getattr(app.status, "value", app.status)),
        "nodes": nodes,
        "deployments": deployments,
        "replicas": replicas,
        "gpus": resources.get("GPU", 0),
        "cpus": resources.get("CPU", 0),
        **hub,
    }
