"""Find the container engine (Docker or Finch), probe it, and build the image handlers run in.

The engine is found the way SAM CLI finds it: ``DOCKER_HOST`` when set, else Docker's default
socket, else Finch's. ``sam`` itself is given the host-network relay in front of that endpoint
(local/sam/host_network_relay.py) as its ``DOCKER_HOST``.

The invoke image is derived from the python3.13 base image (the official
``public.ecr.aws/lambda/python:3.13`` or the offline one from ``scripts/build-local-image.sh``) and
adds only what points handlers at the emulation: the emulation's CA certificate and the
``HTTPS_PROXY`` / ``AWS_CA_BUNDLE`` environment. SAM CLI passes a function only the environment
variables its template declares, so endpoint configuration cannot travel through ``--env-vars``;
image environment is the channel that needs no template change. The build is a two-instruction
Dockerfile (COPY, ENV): no RUN, no network.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]

OFFICIAL_IMAGE = "public.ecr.aws/lambda/python:3.13"
LOG = logging.getLogger(__name__)
CA_PATH_IN_IMAGE = "/etc/fsxn-s3ap-local/emulation-ca.pem"
DERIVED_REPOSITORY = "fsxn-s3ap/sam-invoke"
# Stable name of the invoke image while `python -m local.sam_engine --serve` runs (samconfig.sample.toml).
SERVE_TAG = f"{DERIVED_REPOSITORY}:serve"
_PROBE_TIMEOUT_S = 5


class ContainerEngineError(RuntimeError):
    """No usable container engine, or it refused an operation."""


@dataclass(frozen=True)
class Engine:
    base_url: str  # unix:///var/run/docker.sock, tcp://..., what DOCKER_HOST would hold
    name: str  # "docker" or "finch"


def _finch_sockets() -> list[Path]:
    home = Path.home()
    return [home / ".finch" / "finch.sock", Path("/var/run/finch.sock"), Path("/run/finch.sock")]


def candidate_engines(environ: dict[str, str] | None = None) -> list[Engine]:
    """Engines to try, in order: DOCKER_HOST, Docker's default socket, Finch's sockets."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        host = env["DOCKER_HOST"]
        return [Engine(host, "finch" if "finch" in host else "docker")]
    engines = [Engine("unix:///var/run/docker.sock", "docker")]
    engines += [Engine(f"unix://{sock}", "finch") for sock in _finch_sockets()]
    return engines


def _client(engine: Engine) -> Any:
    return docker.DockerClient(base_url=engine.base_url, timeout=_PROBE_TIMEOUT_S)


def find_engine(environ: dict[str, str] | None = None) -> Engine | None:
    """The first engine that answers a ping, or None."""
    for engine in candidate_engines(environ):
        if engine.base_url.startswith("unix://") and not Path(engine.base_url[len("unix://") :]).exists():
            continue
        try:
            client = _client(engine)
            try:
                if client.ping():
                    return engine
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 - any failure means "this engine does not answer"
            LOG.debug("engine %s does not answer: %s", engine.base_url, exc)
            continue
    return None


def image_exists(engine: Engine, image: str) -> bool:
    client = docker.DockerClient(base_url=engine.base_url, timeout=60)
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()
    return True


def derived_image_tag(
    base_image: str, environment: dict[str, str], ca_pem: bytes, base_id: str, files: Mapping[str, bytes] | None = None
) -> str:
    digest = hashlib.sha256(
        json.dumps({"base": base_image, "id": base_id, "env": environment}, sort_keys=True).encode()
        + ca_pem
        + b"".join(path.encode() + b"\0" + data for path, data in sorted((files or {}).items()))
    ).hexdigest()[:16]
    # The digest names the repository, not only the tag: SAM derives its rapid image's name from
    # the repository (local/sam/invoke.py, SamInvoker.force_image_build).
    return f"{DERIVED_REPOSITORY}-{digest}:latest"


def build_invoke_image(
    engine: Engine,
    base_image: str,
    ca_bundle: Path,
    environment: dict[str, str],
    *,
    pull: bool,
    files: Mapping[str, Path] | None = None,
) -> str:
    """Build (or reuse) the image SAM invokes: ``base_image`` + the CA + ``environment`` + ``files``
    (path in the image -> file here: what local services need inside, e.g. the fake ONTAP's CA)."""
    client = docker.DockerClient(base_url=engine.base_url, timeout=600)
    try:
        try:
            base = client.images.get(base_image)
        except docker.errors.ImageNotFound:
            if not pull:
                raise ContainerEngineError(
                    f"image {base_image} is not present and pulling is disabled; build it with "
                    "scripts/build-local-image.sh or pull it"
                ) from None
            try:
                base = client.images.pull(base_image)
            except docker.errors.APIError as exc:
                raise ContainerEngineError(
                    f"cannot pull {base_image} ({exc.explanation}); on a machine without registry access "
                    "build the offline image with scripts/build-local-image.sh and pass --invoke-image"
                ) from exc
        ca_pem = ca_bundle.read_bytes()
        extra = {path: source.read_bytes() for path, source in sorted((files or {}).items())}
        tag = derived_image_tag(base_image, environment, ca_pem, str(base.id), extra)
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        env_lines = "".join(f"ENV {key}={json.dumps(value)}\n" for key, value in sorted(environment.items()))
        copies = "".join(f"COPY file-{i} {path}\n" for i, path in enumerate(extra))
        dockerfile = f"FROM {base_image}\nCOPY emulation-ca.pem {CA_PATH_IN_IMAGE}\n{copies}{env_lines}"
        context = io.BytesIO()
        members = [("Dockerfile", dockerfile.encode()), ("emulation-ca.pem", ca_pem)]
        members += [(f"file-{i}", data) for i, data in enumerate(extra.values())]
        with tarfile.open(fileobj=context, mode="w") as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        context.seek(0)
        try:
            client.images.build(fileobj=context, custom_context=True, tag=tag, pull=False, rm=True)
        except (docker.errors.BuildError, docker.errors.APIError) as exc:
            raise ContainerEngineError(f"building {tag} from {base_image} failed: {exc}") from exc
        return tag
    finally:
        client.close()


def tag_image(engine: Engine, image: str, tag: str) -> None:
    repository, _, name = tag.rpartition(":")
    client = docker.DockerClient(base_url=engine.base_url, timeout=60)
    try:
        if not client.images.get(image).tag(repository, name):
            raise ContainerEngineError(f"cannot tag {image} as {tag}")
    finally:
        client.close()
