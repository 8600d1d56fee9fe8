"""Run one function through ``sam local invoke`` and judge what it returned.

``sam local invoke`` exits 0 even when the handler raised: the runtime's error document
(``errorType``/``errorMessage``) is printed as the response. So the verdict comes from the response:
an error document, an unparseable response, a non-zero exit or a response missing a field the
state machine's ``ResultSelector`` reads (``$.Payload.<field>``) is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local.usecases import REPO_ROOT, FunctionSpec, UseCase

SAM_VENV_BIN = REPO_ROOT / ".tools" / "sam-venv" / "bin" / "sam"
_EXTRA_TIMEOUT_S = 180  # image build and container start on top of the function's own Timeout


@dataclass
class Verdict:
    use_case: str
    function: str
    logical_id: str
    passed: bool
    seconds: float
    error_type: str | None = None
    error_message: str | None = None
    response: Any = None
    missing_fields: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_sam() -> Path | None:
    if SAM_VENV_BIN.is_file() and os.access(SAM_VENV_BIN, os.X_OK):
        return SAM_VENV_BIN
    found = shutil.which("sam")
    return Path(found) if found else None


def _payload_fields(node: Any) -> Iterator[str]:
    """Top-level ``$.Payload.<field>`` names read by ResultSelectors in a definition subtree."""
    if isinstance(node, Mapping):
        selector = node.get("ResultSelector")
        if isinstance(selector, Mapping):
            for key, value in selector.items():
                if key.endswith(".$") and isinstance(value, str) and value.startswith("$.Payload."):
                    yield value[len("$.Payload.") :].split(".", 1)[0].split("[", 1)[0]
        for value in node.values():
            if isinstance(value, Mapping | list):
                yield from _payload_fields(value)
    elif isinstance(node, list):
        for item in node:
            yield from _payload_fields(item)


def _tasks_invoking(node: Any, substitution: str) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        params = node.get("Parameters")
        if node.get("Type") == "Task" and isinstance(params, Mapping) and params.get("FunctionName") == substitution:
            yield node
        for value in node.values():
            if isinstance(value, Mapping | list):
                yield from _tasks_invoking(value, substitution)
    elif isinstance(node, list):
        for item in node:
            yield from _tasks_invoking(item, substitution)


def expected_fields(use_case: UseCase, function: FunctionSpec) -> list[str]:
    """The response fields the state machine selects from this function's result."""
    wanted: list[str] = []
    for resource in (use_case.template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties") or {}
        # Convention: the substitution for XFunction is XFunctionArn (function or alias ARN).
        for name in props.get("DefinitionSubstitutions") or {}:
            if name != f"{function.logical_id}Arn":
                continue
            for task in _tasks_invoking(props.get("Definition") or {}, "${" + name + "}"):
                for field_name in _payload_fields(task):
                    if field_name not in wanted:
                        wanted.append(field_name)
    return wanted


def judge(  # noqa: PLR0917 - one call site, all needed
    use_case: str, function: FunctionSpec, returncode: int, stdout: str, seconds: float, expected: list[str]
) -> Verdict:
    verdict = Verdict(
        use_case=use_case, function=function.name, logical_id=function.logical_id, passed=False, seconds=seconds
    )
    text = stdout.strip()
    response: Any = None
    if text:
        try:
            response = json.loads(text)
        except json.JSONDecodeError:
            # Anything printed before the response document: the document is the last line.
            try:
                response = json.loads(text.splitlines()[-1])
            except json.JSONDecodeError:
                response = None
    verdict.response = response
    if returncode != 0:
        verdict.error_type = "SamInvokeFailed"
        verdict.error_message = f"sam local invoke exited {returncode}"
        return verdict
    if response is None:
        verdict.error_type = "NoResponse"
        verdict.error_message = f"no JSON response on stdout: {text[-300:]!r}"
        return verdict
    if isinstance(response, Mapping) and ("errorType" in response or "errorMessage" in response):
        verdict.error_type = str(response.get("errorType", "Error"))
        verdict.error_message = str(response.get("errorMessage", ""))
        return verdict
    if expected:
        present = response.keys() if isinstance(response, Mapping) else set()
        verdict.missing_fields = [name for name in expected if name not in present]
        if verdict.missing_fields:
            verdict.error_type = "ContractMismatch"
            verdict.error_message = "response lacks fields the state machine selects: " + ", ".join(
                verdict.missing_fields
            )
            return verdict
    verdict.passed = True
    return verdict


def _relative(path: Path) -> str:
    """``path`` as written from the repository root (the invocation's working directory)."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


@dataclass(frozen=True)
class SamInvoker:
    sam: Path
    docker_host: str
    image: str
    env_vars: Path
    log_dir: Path
    # SAM names its "rapid" image (invoke image + emulator) after the invoke image's *repository*
    # when the template defines no layer, and reuses it even after that image changed. The engine's
    # invoke images carry their content digest in the repository (containers.derived_image_tag), so
    # a changed image gets a rapid image of its own and the rebuild need not be forced; a stable
    # name (--serve's SERVE_TAG) needs it. Templates with local layers are rebuilt by SAM anyway.
    force_image_build: bool = True

    def command(self, use_case: UseCase, function: FunctionSpec) -> list[str]:
        """The article's command (paths relative to the repository, where it runs), plus the flags
        that pick the invoke image."""
        force = ["--force-image-build"] if self.force_image_build else []
        return [
            str(self.sam),
            "local",
            "invoke",
            "--template",
            _relative(use_case.template_path),
            "--event",
            _relative(use_case.event_path(function)),
            "--env-vars",
            _relative(self.env_vars),
            "--invoke-image",
            self.image,
            "--skip-pull-image",
            *force,
            function.logical_id,
        ]

    def invoke(self, use_case: UseCase, function: FunctionSpec, timeout_s: int) -> Verdict:
        env = {
            **os.environ,
            "DOCKER_HOST": self.docker_host,
            "SAM_CLI_TELEMETRY": "0",
            # Region and credentials the containers get (SAM passes its own session's).
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            # SAM asks STS for the account id before every invocation (no endpoint answers here,
            # it falls back to the default id); botocore's retries made that 6-7 s of each
            # invocation. One attempt fails at once with the same outcome. SAM passes handlers
            # only the variables their template declares, so they keep botocore's defaults.
            "AWS_MAX_ATTEMPTS": "1",
        }
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
        started = time.monotonic()
        try:
            proc = subprocess.run(
                self.command(use_case, function),
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s + _EXTRA_TIMEOUT_S,
                check=False,
            )
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            returncode = -1
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            stderr = (exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")) + "\n[timed out]"
        seconds = time.monotonic() - started
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{use_case.name}.{function.logical_id}"  # UC9's invoke functions share a code folder
        (self.log_dir / f"{stem}.stderr.log").write_text(stderr, encoding="utf-8")
        (self.log_dir / f"{stem}.response.json").write_text(stdout, encoding="utf-8")
        verdict = judge(use_case.name, function, returncode, stdout, seconds, expected_fields(use_case, function))
        if returncode == -1:
            verdict.error_type, verdict.error_message = (
                "Timeout",
                f"sam local invoke ran over {timeout_s + _EXTRA_TIMEOUT_S}s",
            )
        return verdict
