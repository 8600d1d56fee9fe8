"""Run one use case's whole pipeline locally: emulated AWS, sample data, real handlers, real definition.

``run_use_case(Path("semiconductor-eda"), RunOptions())`` creates in moto what the template
defines, seeds the access point with the use case's sample generator (``local.samples.<package>``),
starts the state machine on moto's Step Functions engine (extended by ``local.runner.engine``) and
returns a ``RunResult``: status, error, states executed, items processed and failed, the check that
every input object has exactly one result record, Lambda and emulator statistics, the outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import quote

import boto3
from moto import mock_aws

from local.emulators.athena import AthenaEmulator, Storage
from local.emulators.bedrock import BedrockEmulator
from local.emulators.rekognition import RekognitionEmulator, s3_reader
from local.emulators.sagemaker import DEFAULT_SCALE_FROM_ZERO_S, SageMakerEmulator
from local.faults import Fault, FaultPlan
from local.runner import paths
from local.runner.clock import EmulatedClock
from local.runner.dispatch import memoized_backend_urls, shared_error_lookups, shared_model_files
from local.runner.engine import DEFAULT_LOCAL_MAX_WORKERS, ChildEventManager, EngineExtensions
from local.runner.interceptor import Interceptor
from local.runner.lambdas import FunctionSpec, LambdaRuntime
from local.runner.seeding import SeedingClient
from local.runner.stack import ACCOUNT, REGION, Stack, TemplateError
from local.template import load_template, resolve_parameters

# Defined in local.runner.paths (which local.cli reads without importing this module), named here too.
REPO_ROOT: Final = paths.REPO_ROOT
DEFAULT_OBJECTS: Final = paths.DEFAULT_OBJECTS
discover_use_cases = paths.discover_use_cases


@dataclass
class RunOptions:
    objects: int = DEFAULT_OBJECTS
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    keep: Path | None = None
    retry_time_scale: float = 1.0
    # time.sleep inside a Lambda handler advances its emulated clock instead of blocking.
    virtual_sleep: bool = True
    max_workers: int = DEFAULT_LOCAL_MAX_WORKERS
    timeout_s: float = 1800.0
    env_json: Path | None = None
    progress: Callable[[str], None] | None = None
    execution_input: dict[str, Any] = field(default_factory=dict)
    # Defaults to local.samples.<package>.generate; tests pass their own for fixture use cases.
    sample_generator: Callable[..., Any] | None = None
    # Keyword arguments of the samples module's local_services() (UC1: fake ONTAP faults).
    service_options: dict[str, Any] = field(default_factory=dict)
    # Emulated time an inference component with zero copies takes to serve its first request.
    sagemaker_scale_from_zero_s: float = DEFAULT_SCALE_FROM_ZERO_S


@dataclass
class RunResult:
    use_case: str
    status: str
    error: str | None = None
    cause: str | None = None
    execution_name: str = ""
    execution_arn: str = ""
    output: Any = None
    states_executed: int = 0
    items_total: int = 0
    items_failed: int = 0
    records_succeeded: int = 0
    records_failed: int = 0
    records_by_error: dict[str, int] = field(default_factory=dict)
    unaccounted: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    # Wall time of each phase: emulated stack, sample data, the execution, reading the outputs.
    timings: dict[str, float] = field(default_factory=dict)
    outputs: str = ""
    output_keys: list[str] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)
    # Findings the samples are built to produce, and the ones the pipeline reported
    # (reports/<execution>/findings.json), each [rule id, source key, principal].
    expected_findings: list[list[str]] = field(default_factory=list)
    findings: list[list[str]] = field(default_factory=list)
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    emulated: dict[str, int] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    retry_wait_s: float = 0.0
    env_overrides: dict[str, list[str]] = field(default_factory=dict)
    not_emulated: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    log_file: str | None = None

    @property
    def findings_match(self) -> bool:
        """True unless the samples declare the findings they produce and the run reported others."""
        if not self.expected_findings or self.status != "SUCCEEDED":
            return True
        return sorted(self.findings) == sorted(self.expected_findings)

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED" and not self.unaccounted and not self.duplicated and self.findings_match

    def to_dict(self, *, history: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not history:
            data.pop("history")
        data["ok"] = self.ok
        data["findings_match"] = self.findings_match
        return data


class Progress:
    """Turns engine events into one line per state of the main execution and Map Run progress."""

    def __init__(self, use_case: str, emit: Callable[[str], None] | None) -> None:
        self.use_case = use_case
        self._emit = emit
        self.states_entered = 0
        self._lock = threading.Lock()
        self._children_done = 0
        self._children_failed = 0
        self._last_report = 0.0
        self._entered_at: dict[str, float] = {}

    def say(self, text: str) -> None:
        if self._emit is not None:
            self._emit(f"[{self.use_case}] {text}")

    def __call__(self, manager: Any, event_type: str, details: dict[str, Any]) -> None:
        kind = event_type.rsplit(".", 1)[-1]
        child = isinstance(manager, ChildEventManager)
        with self._lock:
            if kind.endswith("StateEntered"):
                self.states_entered += 1
            if child:
                if kind in {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}:
                    self._children_done += 1
                    self._children_failed += kind != "ExecutionSucceeded"
                    now = time.monotonic()
                    if now - self._last_report >= 1.0:
                        self._last_report = now
                        self.say(
                            f"  {manager.map_state}: {self._children_done} child executions done, "
                            f"{self._children_failed} failed"
                        )
                return
        if kind.endswith("StateEntered"):
            name = (details.get("stateEnteredEventDetails") or {}).get("name", "?")
            self._entered_at[name] = time.monotonic()
            self.say(f"> {name}")
        elif kind.endswith("StateExited"):
            name = (details.get("stateExitedEventDetails") or {}).get("name", "?")
            took = time.monotonic() - self._entered_at.get(name, time.monotonic())
            self.say(f"  {name} done ({took:.1f}s)")
        elif kind in {"TaskFailed", "LambdaFunctionFailed"} or (kind.endswith("Failed") and "Map" in kind):
            info: dict[str, Any] = next(iter(details.values()), {}) if details else {}
            self.say(f"  {kind}: {info.get('error', '')} {short_cause(info.get('cause'))[:200]}")
        elif kind == "MapRunStarted":
            self.say("  Map Run started")
        elif kind == "MapRunSucceeded":
            self.say(f"  Map Run succeeded: {self._children_done} child executions, {self._children_failed} failed")
        elif kind in {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}:
            self.say(f"= {kind.removeprefix('Execution').upper()}")


def short_cause(cause: str | None) -> str:
    """The error message of a Lambda error payload (without its stack trace), else the cause."""
    if not cause:
        return ""
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause[:400]
    if isinstance(payload, dict) and "errorMessage" in payload:
        return str(payload["errorMessage"])[:400]
    return cause[:400]


def sample_module_name(use_case_dir: Path) -> str:
    return f"local.samples.{use_case_dir.name.replace('-', '_')}"


def run_use_case(use_case_dir: Path, options: RunOptions | None = None) -> RunResult:
    options = options or RunOptions()
    use_case_dir = use_case_dir.resolve()
    template = use_case_dir / "template-deploy.yaml"
    if not template.is_file():
        raise TemplateError(f"{use_case_dir}: no template-deploy.yaml")
    execution_name = f"local-{uuid.uuid4().hex[:12]}"
    log_path = _log_path(use_case_dir, options, execution_name)
    started = time.monotonic()
    result = RunResult(
        use_case=use_case_dir.name, status="NOT_STARTED", execution_name=execution_name, log_file=str(log_path)
    )
    progress = Progress(use_case_dir.name, options.progress)
    extensions = EngineExtensions(
        max_workers=options.max_workers, retry_time_scale=options.retry_time_scale, listener=progress
    )
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}),
        extensions,
        memoized_backend_urls(),
        shared_error_lookups(),
        shared_model_files(),
        _lambda_output_to(log_path),
        contextlib.ExitStack() as exits,
    ):
        _run_in(exits, use_case_dir, template, options=options, result=result, progress=progress, extensions=extensions)
        result.retry_wait_s = round(extensions.retry_wait_seconds, 3)
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _sample_module(use_case_dir: Path) -> Any:
    module = sample_module_name(use_case_dir)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise TemplateError(
            f"{use_case_dir.name}: no sample data generator ({module.replace('.', '/')}.py with generate())"
        ) from e


def _optional_sample_module(use_case_dir: Path) -> Any:
    """The samples module, or None: a run with its own sample generator (tests) may have none."""
    try:
        return _sample_module(use_case_dir)
    except TemplateError:
        return None


def _run_in(
    exits: contextlib.ExitStack,
    use_case_dir: Path,
    template: Path,
    *,
    options: RunOptions,
    result: RunResult,
    progress: Progress,
    extensions: EngineExtensions,
) -> None:
    mark = time.monotonic()

    def lap(phase: str) -> None:
        nonlocal mark
        now = time.monotonic()
        result.timings[phase] = round(now - mark, 3)
        mark = now

    boto3.DEFAULT_SESSION = None  # clients made from here on see moto's (and our) handlers
    session = boto3.Session(region_name=REGION)
    s3 = session.client("s3")
    ap_arn, _ap_bucket = _create_access_point(session, use_case_dir.name)

    module: Any = None
    if options.sample_generator is not None:
        generate = options.sample_generator
    else:
        module = _sample_module(use_case_dir)
        generate = module.generate
    progress.say(f"seeding {options.objects} sample objects through {ap_arn}")
    # The sample objects are the volume's contents before the pipeline runs: stored straight in
    # the emulated S3 (local.runner.seeding), the same objects an HTTP put stores, without the
    # request round trip per object.
    seeder = SeedingClient(s3)
    sample_set = generate(seeder, ap_arn, objects=options.objects, seed=options.seed)
    result.samples = _describe_samples(sample_set)
    result.expected_findings = [list(f) for f in getattr(sample_set, "expected_findings", ())]
    # A use case whose functions call something outside AWS (UC1: the ONTAP REST API) starts its
    # fake here; it yields the template parameters that point the stack at it.
    services = getattr(module, "local_services", None)
    bound_services: Any = None
    if services is not None:
        bound_services = exits.enter_context(services(session, sample_set, **options.service_options))
        progress.say(f"local services: {', '.join(sorted(bound_services.parameters))}")
    elif options.service_options:
        raise TemplateError(f"{use_case_dir.name}: service options given but its samples start no local services")
    lap("samples_s")

    service_parameters: dict[str, str] = dict(bound_services.parameters) if bound_services is not None else {}
    provided = _provided_parameters(use_case_dir, options, session)
    parameters = {**provided, **service_parameters, **options.parameters}
    stack = Stack.load(template, parameters=_parameters(template, ap_arn, parameters))
    created = _provision(stack, session)
    result.not_emulated = created["not_emulated"]
    lap("stack_s")

    clock = EmulatedClock()
    plan = FaultPlan(options.faults, clock)
    functions = stack.functions()
    functions, result.env_overrides = _apply_env_json(functions, _env_json(options, use_case_dir))
    runtime = LambdaRuntime(functions, clock, base_environment={"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION})
    athena = AthenaEmulator(session, clock, account_id=ACCOUNT, query_run_seconds=plan.slow_seconds)
    bedrock = BedrockEmulator()
    sagemaker = SageMakerEmulator(
        s3, clock, account_id=ACCOUNT, region=REGION, scale_from_zero_seconds=options.sagemaker_scale_from_zero_s
    )
    _register_sagemaker(stack, sagemaker)
    interceptor = Interceptor()
    interceptor.add(plan.hook)
    interceptor.add(runtime.hook, service="lambda")
    interceptor.add(athena.hook, service="athena")
    interceptor.add(bedrock.hook, service="bedrock-runtime")
    rekognition = RekognitionEmulator(s3_reader(ACCOUNT))
    interceptor.add(rekognition.hook, service="rekognition")
    interceptor.add(sagemaker.hook, service="sagemaker")
    interceptor.add(sagemaker.hook, service="sagemaker-runtime")

    sfn = session.client("stepfunctions")
    (sm_logical, sm_arn), *others = created["state_machines"].items()
    if others:
        progress.say(f"template has several state machines; running {sm_logical}")
    with interceptor, clock.virtual_sleep() if options.virtual_sleep else contextlib.nullcontext():
        progress.say(f"start {sm_logical} execution {result.execution_name}")
        arn = sfn.start_execution(
            stateMachineArn=sm_arn, name=result.execution_name, input=json.dumps(options.execution_input)
        )["executionArn"]
        result.execution_arn = arn
        deadline = time.monotonic() + options.timeout_s
        while True:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                sfn.stop_execution(executionArn=arn, error="Local.Timeout", cause="local run timed out")
                continue
            # Woken as soon as the engine records the end; DescribeExecution stays the answer.
            extensions.wait_for_end(arn, timeout=max(0.05, min(5.0, deadline - time.monotonic())))
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    lap("execution_s")

    result.status = described["status"]
    result.error = described.get("error")
    result.cause = described.get("cause")
    result.output = json.loads(described["output"]) if described.get("output") else None
    result.history = [_jsonable(e) for e in history]
    result.states_executed = progress.states_entered
    result.functions = {
        lid: {
            "invocations": st.invocations,
            "cold_starts": st.cold_starts,
            "errors": dict(st.errors),
            "seconds": round(st.seconds, 3),
        }
        for lid, st in runtime.stats.items()
    }
    result.emulated = {
        "athena (DuckDB)": len(athena.queries),
        "bedrock-runtime Converse": len(bedrock.calls),
    }
    if bound_services is not None:
        result.emulated.update(bound_services.emulated())
    if rekognition.calls:
        result.emulated["rekognition DetectLabels"] = len(rekognition.calls)
    if sagemaker.models:
        result.emulated["sagemaker-runtime InvokeEndpoint"] = sagemaker.stats.invocations
        result.emulated["sagemaker transform jobs"] = sagemaker.stats.transform_jobs
        result.emulated["sagemaker no-capacity replies"] = (
            sagemaker.stats.no_capacity_replies + sagemaker.stats.model_not_ready_replies
        )
    result.faults = plan.summary()
    _collect_items(result, created["buckets"])
    _collect_outputs(result, session, created, options.keep, use_case_dir.name)
    lap("outputs_s")


# --- setup -----------------------------------------------------------------------------------------
def _access_point_name(use_case: str) -> str:
    return f"fsxn-{use_case}-ap"[:50].lower()


def _create_access_point(session: boto3.Session, use_case: str) -> tuple[str, str]:
    """A bucket behind an S3 access point: FSx for ONTAP exposes its volume the same way."""
    bucket = f"fsxn-volume-{use_case}"[:63].lower()
    name = _access_point_name(use_case)
    session.client("s3").create_bucket(Bucket=bucket)
    session.client("s3control").create_access_point(AccountId=ACCOUNT, Name=name, Bucket=bucket)
    return f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{name}", bucket


def check_parameters(use_case_dir: Path, given: dict[str, str]) -> dict[str, Any]:
    """The stack's parameter values for a run, validated as CloudFormation validates them
    (``local.template``); raises ``ParameterError`` before anything is created or run."""
    template = use_case_dir / "template-deploy.yaml"
    ap_arn = f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{_access_point_name(use_case_dir.name)}"
    # Parameters the sample module provides once the run has started (UC1: the fake ONTAP's
    # endpoint and secret; UC9: the model archive) stand in for the check with the values of the
    # same shape its ``stack_parameter_values()`` returns without creating anything; --parameter wins.
    params = {**_stack_parameter_values(use_case_dir), **given}
    return resolve_parameters(load_template(template), _parameters(template, ap_arn, params), source=str(template))


def _stack_parameter_values(use_case_dir: Path) -> dict[str, str]:
    """``stack_parameter_values()`` of the use case's samples module (empty without one): a value
    for every template parameter its ``local_services`` or ``stack_parameters`` will provide."""
    values = getattr(_optional_sample_module(use_case_dir), "stack_parameter_values", None)
    return {str(k): str(v) for k, v in values().items()} if values is not None else {}


def _parameters(template: Path, ap_arn: str, given: dict[str, str]) -> dict[str, str]:
    declared = load_template(template).get("Parameters") or {}
    params = dict(given)
    for name, spec in declared.items():
        if name not in params and "Default" not in spec and name.endswith("AccessPointArn"):
            params[name] = ap_arn
    return params


def _provided_parameters(use_case_dir: Path, options: RunOptions, session: boto3.Session) -> dict[str, str]:
    """Template parameters the use case's sample module provides (``stack_parameters(session)``).

    For parameters that name artifacts a deployment uploads first (a model archive, say): the
    module creates them in the emulated account and returns their values. ``--parameter`` wins.
    A test's own ``sample_generator`` replaces the sample data only, not these.
    """
    del options
    provide = getattr(_optional_sample_module(use_case_dir), "stack_parameters", None)
    if provide is None:
        return {}
    values = provide(session)
    return {str(k): str(v) for k, v in values.items()}


def _register_sagemaker(stack: Stack, emulator: SageMakerEmulator) -> None:
    """The template's SageMaker resources, in dependency order, as CloudFormation creates them."""
    for lid in stack.resources("AWS::SageMaker::Model"):
        emulator.add_model(stack.physical[lid].attrs["ModelName"], stack.properties(lid))
    for lid in stack.resources("AWS::SageMaker::EndpointConfig"):
        emulator.add_endpoint_config(stack.physical[lid].attrs["EndpointConfigName"], stack.properties(lid))
    for lid in stack.resources("AWS::SageMaker::Endpoint"):
        config_name = str(stack.properties(lid)["EndpointConfigName"])
        emulator.add_endpoint(stack.physical[lid].attrs["EndpointName"], config_name)
    for lid in stack.resources("AWS::SageMaker::InferenceComponent"):
        emulator.add_inference_component(stack.physical[lid].attrs["InferenceComponentName"], stack.properties(lid))


def _provision(stack: Stack, session: boto3.Session) -> dict[str, Any]:
    """Create in moto what the pipeline touches; return what was made."""
    created: dict[str, Any] = {"buckets": [], "workgroups": [], "topics": {}, "state_machines": {}, "not_emulated": []}
    s3 = session.client("s3")
    for lid in stack.resources("AWS::S3::Bucket"):
        name = stack.physical[lid].ref
        s3.create_bucket(Bucket=name)
        versioning = (stack.properties(lid).get("VersioningConfiguration") or {}).get("Status")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
        created["buckets"].append(name)
    # What an "existing resource" parameter names (…BucketName, …WorkgroupName) must exist too.
    for name, value in stack.parameters.items():
        if isinstance(value, str) and value and name.endswith("BucketName") and value not in created["buckets"]:
            s3.create_bucket(Bucket=value)
            created["buckets"].append(value)
    glue = session.client("glue")
    for lid in stack.resources("AWS::Glue::Database"):
        glue.create_database(DatabaseInput=stack.properties(lid)["DatabaseInput"])
    for lid in stack.resources("AWS::Glue::Table"):
        props = stack.properties(lid)
        glue.create_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])
    athena = session.client("athena")
    for lid in stack.resources("AWS::Athena::WorkGroup"):
        props = stack.properties(lid)
        config = dict(props.get("WorkGroupConfiguration") or {})
        if "BytesScannedCutoffPerQuery" in config:
            config["BytesScannedCutoffPerQuery"] = int(config["BytesScannedCutoffPerQuery"])
        athena.create_work_group(Name=props["Name"], Configuration=config, Description=props.get("Description", ""))
    for name, value in stack.parameters.items():
        if isinstance(value, str) and value and name.lower().endswith("workgroupname") and created["buckets"]:
            location = f"s3://{created['buckets'][0]}/athena-results/"
            athena.create_work_group(Name=value, Configuration={"ResultConfiguration": {"OutputLocation": location}})
            created["workgroups"].append(value)
    sns, sqs = session.client("sns"), session.client("sqs")
    for lid in stack.resources("AWS::SNS::Topic"):
        attrs = stack.physical[lid].attrs
        props = stack.properties(lid)
        attributes = {k: str(props[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in props}
        topic_arn = sns.create_topic(Name=attrs["TopicName"], Attributes=attributes)["TopicArn"]
        queue_url = sqs.create_queue(QueueName=f"capture-{attrs['TopicName']}"[:80])["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        created["topics"][topic_arn] = queue_url
    for lid in stack.resources("AWS::SQS::Queue"):
        sqs.create_queue(QueueName=stack.physical[lid].attrs["QueueName"])
    secrets = session.client("secretsmanager")
    for lid in stack.resources("AWS::SecretsManager::Secret"):
        props = stack.properties(lid)
        value = props.get("SecretString") or json.dumps({"generated": uuid.uuid4().hex})
        secrets.create_secret(Name=stack.physical[lid].ref.split(":secret:")[1].rsplit("-", 1)[0], SecretString=value)
    sfn = session.client("stepfunctions")
    for lid, (definition, role) in stack.state_machine_definitions().items():
        props = stack.properties(lid)
        arn = sfn.create_state_machine(
            name=stack.physical[lid].attrs["Name"],
            definition=definition,
            roleArn=role,
            type=str(props.get("StateMachineType", "STANDARD")),
        )["stateMachineArn"]
        created["state_machines"][lid] = arn
    handled = {
        "AWS::S3::Bucket",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
        "AWS::Athena::WorkGroup",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::SecretsManager::Secret",
        "AWS::StepFunctions::StateMachine",
        "AWS::Lambda::Function",
        "AWS::Lambda::Version",
        "AWS::Lambda::Alias",
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::InferenceComponent",
    }
    created["not_emulated"] = sorted(
        f"{lid} ({res['Type']})" for lid, res in stack.resources().items() if res.get("Type") not in handled
    )
    if not created["state_machines"]:
        raise TemplateError(f"{stack.template_path}: no AWS::StepFunctions::StateMachine to run")
    return created


def _env_json(options: RunOptions, use_case_dir: Path) -> dict[str, Any]:
    path = options.env_json or (use_case_dir.parent / "events" / "env.json")
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def _apply_env_json(
    functions: list[FunctionSpec], env_json: dict[str, Any]
) -> tuple[list[FunctionSpec], dict[str, list[str]]]:
    """``events/env.json`` (SAM format: per function, then ``Parameters`` for all) fills only what
    the stack cannot. It is written for ``sam local invoke``, which has no stack; here every
    variable the template declares is resolved from the stack (its parameters, the emulated
    resources), so the template's value always wins — ``--parameter FileSuffixes=.oas`` reaches
    the function whatever env.json says. Variables env.json would set to another value are
    reported under ``kept_from_template``; env.json never adds a variable the template does not
    declare (as ``sam local invoke --env-vars`` does not).
    """
    report: dict[str, list[str]] = {"applied": [], "kept_from_template": []}
    for spec in functions:
        overrides = {**(env_json.get("Parameters") or {}), **(env_json.get(spec.logical_id) or {})}
        for key, value in overrides.items():
            if key in spec.environment and str(value) != spec.environment[key]:
                report["kept_from_template"].append(f"{spec.logical_id}.{key}")
    return functions, report


def _describe_samples(sample_set: Any) -> dict[str, Any]:
    def keys(*names: str) -> list[str]:
        for name in names:
            value = getattr(sample_set, name, None)
            if value is not None:
                return sorted(str(k) for k in value)
        return []

    return {
        "keys": keys("keys", "all_keys"),
        "valid": keys("valid", "valid_keys"),
        "corrupt": keys("corrupt", "invalid", "corrupt_keys", "invalid_keys"),
        "ignored": keys("ignored", "skipped", "unmatched"),
    }


# --- results ---------------------------------------------------------------------------------------
def _collect_items(result: RunResult, buckets: list[str]) -> None:
    """Items read by the Map, result records by status, and the one-record-per-input check."""
    execution = result.execution_name
    manifest_keys: list[str] = []
    records: Counter[str] = Counter()
    # Read straight from moto's store: the report must not cost one GetObject per item.
    storage = Storage(ACCOUNT)
    for bucket in buckets:
        for _key, raw in storage.objects(bucket, f"manifests/{execution}/"):
            for line in raw.decode().split("\n"):  # JSONL: records end at "\n" only, as the ItemReader reads them
                if line.strip():
                    entry = json.loads(line)
                    manifest_keys.append(str(entry.get("key") or entry.get("Key")))
        prefix = f"results/execution_id={execution}/"
        for key, raw in storage.objects(bucket, prefix):
            # One JSON record per object (UC6), or one per line of a batch's JSONL object (UC1).
            for record in _records(raw, key.endswith(".jsonl")):
                source = str(record.get("source_key") or key[len(prefix) :])
                records[source] += 1
                if str(record.get("status", "")).upper() == "FAILED":
                    result.records_failed += 1
                    error = str(record.get("error_type") or "unknown")
                    result.records_by_error[error] = result.records_by_error.get(error, 0) + 1
                else:
                    result.records_succeeded += 1
        findings = storage.objects(bucket, f"reports/{execution}/findings.json")
        for _key, raw in findings:
            for finding in json.loads(raw).get("findings", []):
                result.findings.append(
                    [str(finding.get("rule_id")), str(finding.get("source_key")), str(finding.get("principal"))]
                )
    result.items_total = len(manifest_keys)
    expected = Counter(manifest_keys)
    result.unaccounted = sorted(
        k for k in expected if records.get(k, 0) == 0 and records.get(quote(k, safe=""), 0) == 0
    )
    result.duplicated = sorted(k for k, n in records.items() if n > 1)
    result.items_failed = result.records_failed + len(result.unaccounted)


def _records(raw: bytes, jsonl: bool) -> Iterator[dict[str, Any]]:
    if not jsonl:
        yield json.loads(raw)
        return
    for line in raw.decode("utf-8").split("\n"):
        if line.strip():
            yield json.loads(line)


def _collect_outputs(
    result: RunResult, session: boto3.Session, created: dict[str, Any], keep: Path | None, use_case: str
) -> None:
    sqs = session.client("sqs")
    for topic_arn, queue_url in created["topics"].items():
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages") or []
            if not messages:
                break
            for m in messages:
                envelope = json.loads(m["Body"])
                result.notifications.append(
                    {"topic": topic_arn, "subject": envelope.get("Subject"), "message": envelope.get("Message")}
                )
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    target = keep_dir(keep, use_case, result.execution_name) if keep else None
    storage = Storage(ACCOUNT)
    index: dict[str, dict[str, str]] = {}
    for bucket in created["buckets"]:
        objects = list(storage.objects(bucket, ""))
        paths = key_paths([key for key, _ in objects])
        index[bucket] = {}
        for key, body in objects:
            result.output_keys.append(f"s3://{bucket}/{key}")
            if target is not None:
                relative = Path("s3", bucket, *paths[key])
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)
                index[bucket][key] = relative.as_posix()
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
        (target / "run.json").write_text(json.dumps(result.to_dict(history=True), indent=2, default=str))
        (target / "notifications.json").write_text(json.dumps(result.notifications, indent=2))
        (target / "s3-keys.json").write_text(json.dumps(index, indent=1, ensure_ascii=False))
        result.outputs = str(target)
    else:
        buckets = ", ".join(f"s3://{b}" for b in created["buckets"])
        result.outputs = f"{buckets} (emulated; --keep DIR to save)"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def keep_dir(keep: Path, use_case: str, execution_name: str) -> Path:
    """``--keep DIR``: each run in its own folder, named after its execution (never reused)."""
    return keep / use_case / execution_name


# One path segment of a kept S3 key: at most this many bytes (file systems allow 255).
_MAX_SEGMENT_BYTES: Final = 240
# Characters kept as they are in a path segment; everything else is percent-encoded (UTF-8), "~"
# included, so the "~" markers below cannot come from a key.
_SAFE_SEGMENT_CHARS: Final = "-_.!$&'()+,;=@ "


def key_paths(keys: list[str]) -> dict[str, tuple[str, ...]]:
    """A relative path (segments) for every S3 key, such that every key can be written.

    A key is split on "/" and each segment percent-encoded (``%2F``-style, control characters,
    ``%``, ``~`` and anything outside printable ASCII included); an empty segment becomes ``~``,
    ``.``/``..`` become ``%2E``/``%2E%2E``; a segment longer than 240 bytes keeps its first 200
    and ends ``~<sha256 prefix>``. An object whose path is also a folder of other keys (``a`` and
    ``a/b``) is written as ``a~object``. Distinct keys always get distinct paths; ``s3-keys.json``
    beside the tree maps each key back.
    """
    encoded = {key: tuple(_segment(part) for part in key.split("/")) for key in keys}
    folders = {parts[:i] for parts in encoded.values() for i in range(1, len(parts))}
    out: dict[str, tuple[str, ...]] = {}
    for key, parts in encoded.items():
        out[key] = (*parts[:-1], parts[-1] + "~object") if parts in folders else parts
    return out


def _segment(part: str) -> str:
    if part == "":
        return "~"
    if part in {".", ".."}:
        return part.replace(".", "%2E")
    text = quote(part, safe=_SAFE_SEGMENT_CHARS)
    if len(text.encode()) > _MAX_SEGMENT_BYTES:
        digest = hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        text = f"{text[:200]}~{digest}"
    return text


def _log_path(use_case_dir: Path, options: RunOptions, execution_name: str) -> Path:
    if options.keep is not None:
        path = keep_dir(options.keep, use_case_dir.name, execution_name) / "lambda.log"
        path.parent.mkdir(parents=True, exist_ok=False)
        return path
    fd, name = tempfile.mkstemp(prefix=f"local-{use_case_dir.name}-", suffix=".log")
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def _lambda_output_to(path: Path) -> Iterator[None]:
    """Handler logs (Powertools writes to stdout) go to a file; progress keeps the terminal."""
    with path.open("w", encoding="utf-8") as log:
        saved: tuple[TextIO, TextIO] = (sys.stdout, sys.stderr)
        sys.stdout = sys.stderr = _Tee(log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


class _Tee(io.TextIOBase):
    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return self._target.write(text)

    def flush(self) -> None:
        with self._lock:
            if not self._target.closed:
                self._target.flush()
