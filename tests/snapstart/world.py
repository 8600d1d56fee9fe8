"""The emulated AWS in which real handlers are hosted: moto behind ``local.sam``'s HTTPS proxy.

Shared by the CRIU tests of the real handlers and ``benchmarks/snapstart_bench.py``. Functions
come from the templates (``local.usecases.discover``: each ``AWS::Lambda::Function``'s
``Code`` and ``Handler``, in the order the state machine calls them) and get the environment of
``events/env.json`` and the canonical event of ``events/<uc>/<function>.json``, as ``sam local
invoke`` does. The hosted processes keep their ordinary boto3 clients: ``HTTPS_PROXY`` and
``AWS_CA_BUNDLE`` send every call, over real TLS connections, to the proxy in this process.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from local.emulators.sagemaker import SageMakerEmulator
from local.sam.emulation import EmulationServer
from local.sam.overrides import embedded_emulators, sagemaker_emulator
from local.sam.provision import on_host, provision, sam_environment
from local.sam_engine import DEFAULT_OBJECTS
from local.usecases import FunctionSpec as UseCaseFunction
from local.usecases import UseCase, discover
from tests.snapstart.checks import failed_invocations
from tests.snapstart.criu import REPO_ROOT, FunctionSpec, cold_run

ENV_JSON: dict[str, Any] = json.loads((REPO_ROOT / "events" / "env.json").read_text(encoding="utf-8"))


def real_functions() -> list[tuple[UseCase, UseCaseFunction]]:
    """Every function of every use case, each use case's in pipeline order."""
    return [(uc, fn) for uc in discover() for fn in uc.functions]


def function_label(use_case: UseCase, function: UseCaseFunction) -> str:
    """``<use case>/<code folder>``, or ``<use case>/<logical id>`` where several functions share
    a code folder (UC9's three endpoint invoke functions run ``functions/endpoint_invoke``)."""
    shared = sum(fn.name == function.name for fn in use_case.functions) > 1
    return f"{use_case.name}/{function.logical_id if shared else function.name}"


@dataclass
class World:
    """One emulated AWS account, and which functions have already run in it."""

    server: EmulationServer
    session: boto3.Session
    services: contextlib.ExitStack
    sagemaker: SageMakerEmulator
    state_dir: Path
    provisioned: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)
    # The first restore's result of each function checkpointed so far (label -> host result), for
    # the tests that examine one more aspect of it instead of checkpointing the function again.
    restored: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Paths the events name inside a Lambda container -> the file on this host (the fake ONTAP's CA).
    container_files: dict[str, Path] = field(default_factory=dict)

    def spec(self, use_case: UseCase, function: UseCaseFunction) -> FunctionSpec:
        env = sam_environment(use_case, function, ENV_JSON)
        env.update(
            {
                "HTTPS_PROXY": self.server.proxy_url(),
                "https_proxy": self.server.proxy_url(),
                "AWS_CA_BUNDLE": str(self.server.ca_bundle),
            }
        )
        return FunctionSpec(
            label=function_label(use_case, function),
            code_dir=function.code_dir,
            handler=function.handler,
            event=self.host_event(use_case, function),
            env=env,
        )

    def host_event(self, use_case: UseCase, function: UseCaseFunction) -> Path:
        """The canonical event, or a copy in which every in-container path of a local service's
        file (``/etc/fsxn-s3ap-local/ontap-ca.pem``) names that file on this host: the functions
        run here as host processes, not in the sam tier's image that holds those paths."""
        path = use_case.event_path(function)
        event = use_case.load_event(function)
        mapped = on_host(event, self.container_files)
        if mapped == event:
            return path
        copy = self.state_dir / "events" / use_case.events_name / path.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(json.dumps(mapped), encoding="utf-8")
        return copy

    def prepare(self, use_case: UseCase, function: UseCaseFunction, workdir: Path) -> None:
        """Provision the use case once, and run (cold) the functions before ``function`` that
        have not run yet: its event may rely on what they write (the manifest, the results)."""
        if use_case.name not in self.provisioned:
            done = provision(
                use_case,
                ENV_JSON,
                self.session,
                objects=DEFAULT_OBJECTS,
                services=self.services,
                sagemaker=self.sagemaker,
            )
            self.container_files.update(done.container_files)
            self.provisioned.add(use_case.name)
        for earlier in use_case.functions[: use_case.functions.index(function)]:
            self.mark_ran(use_case, earlier, workdir / f"before-{earlier.logical_id}")

    def mark_ran(self, use_case: UseCase, function: UseCaseFunction, workdir: Path) -> None:
        key = function_label(use_case, function)
        if key in self.ran:
            return
        run = cold_run(self.spec(use_case, function), workdir)
        problems = failed_invocations(run.result)
        if problems:
            raise RuntimeError(f"{key} failed while preparing the emulated account:\n" + "\n".join(problems))
        self.ran.add(key)


@contextmanager
def emulated_world(state_dir: Path) -> Iterator[World]:
    with mock_aws(), contextlib.ExitStack() as services:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        sagemaker = sagemaker_emulator(session)
        overrides = embedded_emulators(session, sagemaker)
        with EmulationServer("127.0.0.1", state_dir, overrides=overrides) as server:
            yield World(server, session, services, sagemaker, state_dir)
