"""``scripts/local-test.sh --engine sam``: every function of every use case in a Lambda container.

For each selected use case (every ``*/template-deploy.yaml`` by default) this starts emulated AWS
on 127.0.0.1, creates the resources ``events/env.json`` and samconfig's ``local_invoke`` section
name (with the use case's sample data behind its S3 access point), and runs each function, in
state machine order, with ``sam local invoke --template <uc>/template-deploy.yaml --event
events/<uc>/<fn>-event.json --env-vars events/env.json <Function>``. A function passes when its
response is a JSON document that is not a Lambda error and carries every field the state machine
reads from it. Exit status: 0 all
passed, 1 a function failed, 2 usage or environment error (no container engine, no sam, ...).

Handlers reach emulated AWS only: the invoke image sets ``HTTPS_PROXY`` to the emulation and
trusts its CA (see local/sam/containers.py); the emulation answers from moto plus the embedded
runner's Athena (DuckDB), Bedrock Converse, Rekognition and SageMaker emulators, and relays nothing
anywhere else. A use case's local services (UC1's fake ONTAP, on 127.0.0.1 where its events point)
are started with its resources; the image carries the files they need inside (the fake ONTAP's CA).

Everything stays on loopback: ``sam`` talks to the container engine through a relay
(local/sam/host_network_relay.py) that creates SAM's Lambda containers in the host network with the
Runtime Interface Emulator on 127.0.0.1, so no bridge or private address is involved.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from local.run_arguments import add_run_arguments
from local.sam import containers
from local.sam.emulation import LOOPBACK, EmulationServer
from local.sam.host_network_relay import HostNetworkRelay, RelayError
from local.sam.invoke import SamInvoker, Verdict, find_sam
from local.sam.overrides import embedded_emulators, sagemaker_emulator
from local.sam.provision import Provisioned, provision, stack_parameters
from local.usecases import REPO_ROOT, UseCase, UseCaseError, discover, select

LOG = logging.getLogger("sam-engine")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_OBJECTS = 12
MAX_OBJECTS = 10_000  # each object is seeded into the emulation before the first invoke


class EngineError(RuntimeError):
    """The run cannot start (exit 2): the message says what to install or start."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="local-test.sh --engine sam",
        description=(
            "Invoke every function of every selected use case with its event through "
            "`sam local invoke`, against emulated AWS; print a table; exit 1 if any failed. "
            "Loopback only: the emulation listens on 127.0.0.1 and sam's Lambda containers run in the "
            "host network (a Docker API relay rewrites their creation), so the container engine must "
            "run on this machine (a Linux dockerd; not an engine inside a VM). See docs/sam-local.md."
        ),
    )
    add_run_arguments(
        parser,
        default_objects=DEFAULT_OBJECTS,
        max_objects=MAX_OBJECTS,
        keep_help="keep responses, sam logs and the emulation's request log in DIR",
        json_help="print the results as JSON instead of a table",
    )
    parser.add_argument(
        "--invoke-image",
        metavar="IMAGE",
        help="python3.13 Lambda base image to run in, e.g. the offline one from "
        "scripts/build-local-image.sh; it is never pulled. Default: "
        f"{containers.OFFICIAL_IMAGE}, pulled if absent",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help=f"start the emulation and the Docker API relay, create the resources, tag the invoke image "
        f"{containers.SERVE_TAG} and wait (Ctrl-C stops), for hand-run `sam local invoke` "
        "(samconfig.sample.toml) with DOCKER_HOST set to the printed relay socket",
    )
    parser.add_argument(
        "--probe", action="store_true", help="only check that a container engine answers (exit 0) or not (exit 1)"
    )
    return parser.parse_args(argv)


def _ensure_layers(use_cases: list[UseCase]) -> None:
    """Bring the layers up to date: scripts/build-layer.sh rebuilds only when its inputs
    (shared/, the runtime or media requirements) changed, so a stale layer is never invoked."""
    builder = REPO_ROOT / "scripts" / "build-layer.sh"
    if builder.is_file():
        subprocess.run([str(builder), "--quiet"], cwd=REPO_ROOT, check=True, stdout=sys.stderr)
        # UC9's media layer (PyAV, laspy, numpy): only when a selected template names it.
        if any(d.name == "layer-media" for uc in use_cases for d in uc.layer_dirs):
            subprocess.run([str(builder), "--media", "--quiet"], cwd=REPO_ROOT, check=True, stdout=sys.stderr)
    missing = sorted({str(d) for uc in use_cases for d in uc.layer_dirs if not d.is_dir()})
    if missing:
        raise EngineError(f"layer folder(s) {', '.join(missing)} missing (scripts/build-layer.sh builds them)")


def _check_events(use_cases: list[UseCase]) -> None:
    problems = [
        f"{uc.name}: no event {uc.event_path(fn).relative_to(REPO_ROOT)} for {fn.logical_id}"
        for uc in use_cases
        for fn in uc.functions
        if not uc.event_path(fn).is_file()
    ]
    if problems:
        raise EngineError("; ".join(problems))


def _table(verdicts: list[Verdict]) -> str:
    rows = [("USE CASE", "FUNCTION", "RESULT", "SECONDS", "DETAIL")]
    names = [(v.use_case, v.function) for v in verdicts]
    for v in verdicts:
        detail = "" if v.passed else f"{v.error_type}: {v.error_message}"
        # Functions that share a code folder (UC9's endpoint invokers) are told apart by logical id.
        name = v.function if names.count((v.use_case, v.function)) == 1 else f"{v.function} ({v.logical_id})"
        rows.append((v.use_case, name, "PASS" if v.passed else "FAIL", f"{v.seconds:.1f}", detail[:160]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip() for row in rows]
    passed = sum(v.passed for v in verdicts)
    lines.append(f"{passed} passed, {len(verdicts) - passed} failed")
    return "\n".join(lines)


def _serve(use_cases: list[UseCase], engine: containers.Engine, image: str, invoker: SamInvoker) -> None:
    """Keep the emulation up for hand-run invocations until interrupted."""
    containers.tag_image(engine, image, containers.SERVE_TAG)
    lines = [
        f"emulation ready; invoke image {containers.SERVE_TAG}. In another shell:",
        f"  export DOCKER_HOST={invoker.docker_host}   # the relay: Lambda containers on the host network",
    ]
    for use_case in use_cases:
        for function in use_case.functions:
            command = invoker.command(use_case, function)
            command[0] = "sam"
            command[command.index("--invoke-image") + 1] = containers.SERVE_TAG
            lines.append("  " + " ".join(shlex.quote(part) for part in command))
    lines.append("Ctrl-C stops the emulation.")
    print("\n".join(lines), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass


def container_environment(server: EmulationServer) -> dict[str, str]:
    """What the invoke image sets so handlers reach the emulation. The containers share this
    machine's network namespace (the relay), so the proxy is on loopback."""
    return {
        "HTTPS_PROXY": server.proxy_url(),
        "https_proxy": server.proxy_url(),
        # The RIE's runtime API (also on loopback) must not be proxied; AWS host names are.
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "AWS_CA_BUNDLE": containers.CA_PATH_IN_IMAGE,
    }


def _relay(engine: containers.Engine) -> HostNetworkRelay:
    try:
        return HostNetworkRelay(engine.base_url)
    except RelayError as exc:
        raise EngineError(str(exc)) from exc


def container_files(provisioned: list[Provisioned]) -> dict[str, Path]:
    """What the invoke image must hold for the use cases' local services (one file per path)."""
    files: dict[str, Path] = {}
    for done in provisioned:
        for path, source in done.container_files.items():
            if files.setdefault(path, source) != source:
                raise EngineError(f"two local services need different files at {path} in the container")
    return files


def run(args: argparse.Namespace) -> int:
    use_cases = select(discover(), args.uc)
    if not use_cases:
        raise EngineError("no use case found (no */template-deploy.yaml)")
    _check_events(use_cases)
    env_json_path = REPO_ROOT / "events" / "env.json"
    env_json: dict[str, Any] = json.loads(env_json_path.read_text(encoding="utf-8"))
    for use_case in use_cases:
        stack_parameters(use_case, env_json)  # refused as CloudFormation would, before any container

    engine = containers.find_engine()
    if engine is None:
        raise EngineError("no container engine answers (start Docker or Finch, or set DOCKER_HOST)")
    sam = find_sam()
    if sam is None:
        raise EngineError("sam not found: scripts/test-sam.sh --setup-only installs it into .tools/sam-venv")
    _ensure_layers(use_cases)

    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="sam-engine-"))
    work.mkdir(parents=True, exist_ok=True)
    verdicts: list[Verdict] = []
    started = time.monotonic()
    try:
        with mock_aws(), contextlib.ExitStack() as services:
            session = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - emulated AWS
                region_name="us-east-1",
            )
            sagemaker = sagemaker_emulator(session)
            overrides = embedded_emulators(session, sagemaker)
            with (
                EmulationServer(LOOPBACK, work / "emulation", overrides=overrides) as server,
                _relay(engine) as relay,
            ):
                # Every use case's resources and local services first: the image carries what
                # the services need inside the container (the fake ONTAP's CA).
                provisioned = []
                for use_case in use_cases:
                    done = provision(
                        use_case, env_json, session, objects=args.objects, services=services, sagemaker=sagemaker
                    )
                    LOG.info("%s: provisioned %s", use_case.name, done)
                    provisioned.append(done)
                environment = container_environment(server)
                base = args.invoke_image or containers.OFFICIAL_IMAGE
                image = containers.build_invoke_image(
                    engine,
                    base,
                    server.ca_bundle,
                    environment,
                    pull=args.invoke_image is None,
                    files=container_files(provisioned),
                )
                LOG.info("invoke image %s (from %s), emulation at %s", image, base, server.proxy_url())
                invoker = SamInvoker(
                    sam, relay.base_url, image, env_json_path, work / "logs", force_image_build=args.serve
                )
                if args.serve:
                    _serve(use_cases, engine, image, invoker)
                    return EXIT_OK
                for use_case in use_cases:
                    for function in use_case.functions:
                        verdict = invoker.invoke(use_case, function, function.timeout_s)
                        LOG.info(
                            "%s/%s: %s (%.1fs)",
                            use_case.name,
                            function.name,
                            "PASS" if verdict.passed else f"FAIL {verdict.error_type}: {verdict.error_message}",
                            verdict.seconds,
                        )
                        verdicts.append(verdict)
                (work / "emulation-requests.json").write_text(
                    json.dumps([r.__dict__ for r in server.records], indent=1), encoding="utf-8"
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    failed = [v for v in verdicts if not v.passed]
    if args.json:
        json.dump(
            {
                "engine": "sam",
                "seconds": round(time.monotonic() - started, 1),
                "passed": len(verdicts) - len(failed),
                "failed": len(failed),
                "results": [v.to_dict() for v in verdicts],
            },
            sys.stdout,
            indent=2,
            default=str,
        )
        sys.stdout.write("\n")
    else:
        print(_table(verdicts))
        if args.keep:
            print(f"logs, responses and the emulation request log: {work}")
    return EXIT_FAILED if failed or not verdicts else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=os.environ.get("SAM_ENGINE_LOG_LEVEL", "INFO"), format="sam-engine: %(message)s", stream=sys.stderr
    )
    if args.probe:
        return EXIT_OK if containers.find_engine() is not None else EXIT_FAILED
    try:
        return run(args)
    except (EngineError, UseCaseError, containers.ContainerEngineError) as exc:
        LOG.error("%s", exc)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
