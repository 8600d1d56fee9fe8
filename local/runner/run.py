"""Run one use case's whole pipeline locally: emulated AWS, sample data, real handlers, real definition.

``run_use_case(Path("semiconductor-eda"), RunOptions())`` creates in moto what the template
defines, seeds the access point with the use case's sample generator (``local.samples.<package>``),
starts the state machine on moto's Step Functions engine (extended by ``local.runner.engine``) and
returns a ``RunResult``: status, error, states executed, items processed and failed, the check that
every input object has exactly one result record, Lambda and emulator statistics, the outputs.
"""

from __future__ import annotations

import contextlib
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
from typing import Any, TextIO
from urllib.parse import quote

import boto3
from moto import mock_aws

from local.emulators.athena import AthenaEmulator, Storage
from local.emulators.bedrock import BedrockEmulator
from local.emulators.rekognition import RekognitionEmulator, s3_reader
from local.emulators.sagemaker import DEFAULT_SCALE_FROM_ZERO_S, SageMakerEmulator
from local.faults import Fault, FaultPlan
from local.runner.clock import EmulatedClock
from local.runner.engine import DEFAULT_LOCAL_MAX_WORKERS, ChildEventManager, EngineExtensions
from local.runner.interceptor import Interceptor
from local.runner.lambdas import FunctionSpec, LambdaRuntime
from local.runner.stack import ACCOUNT, REGION, Stack, TemplateError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OBJECTS = 40
# Variables the embedded engine must not take from events/env.json: it answers AWS calls
# in-process, so endpoint, proxy and CA settings meant for sam local invoke would misroute them.
_TRANSPORT_VARIABLES = ("AWS_ENDPOINT_URL", "HTTPS_PROXY", "HTTP_PROXY", "AWS_CA_BUNDLE", "NO_PROXY")


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
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    emulated: dict[str, int] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    retry_wait_s: float = 0.0
    env_overrides: dict[str, list[str]] = field(default_factory=dict)
    not_emulated: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    log_file: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED" and not self.unaccounted and not self.duplicated

    def to_dict(self, *, history: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not history:
            data.pop("history")
        data["ok"] = self.ok
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


def discover_use_cases(root: Path = REPO_ROOT) -> list[Path]:
    """Every ``<uc>/template-deploy.yaml`` in the repository."""
    return sorted(p.parent for p in root.glob("*/template-deploy.yaml"))


def run_use_case(use_case_dir: Path, options: RunOptions | None = None) -> RunResult:
    options = options or RunOptions()
    use_case_dir = use_case_dir.resolve()
    template = use_case_dir / "template-deploy.yaml"
    if not template.is_file():
        raise TemplateError(f"{use_case_dir}: no template-deploy.yaml")
    log_path = _log_path(use_case_dir, options)
    started = time.monotonic()
    result = RunResult(use_case=use_case_dir.name, status="NOT_STARTED", log_file=str(log_path))
    progress = Progress(use_case_dir.name, options.progress)
    extensions = EngineExtensions(
        max_workers=options.max_workers, retry_time_scale=options.retry_time_scale, listener=progress
    )
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}),
        extensions,
        _lambda_output_to(log_path),
    ):
        _run(use_case_dir, template, options, result, progress)
        result.retry_wait_s = round(extensions.retry_wait_seconds, 3)
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _run(use_case_dir: Path, template: Path, options: RunOptions, result: RunResult, progress: Progress) -> None:
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

    provided = _provided_parameters(use_case_dir, options, session)
    stack = Stack.load(template, parameters=_parameters(template, ap_arn, {**provided, **options.parameters}))
    created = _provision(stack, session)
    result.not_emulated = created["not_emulated"]

    lap("stack_s")
    if options.sample_generator is not None:
        generate = options.sample_generator
    else:
        module = sample_module_name(use_case_dir)
        try:
            generate = importlib.import_module(module).generate
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            raise TemplateError(
                f"{use_case_dir.name}: no sample data generator ({module.replace('.', '/')}.py with generate())"
            ) from e
    progress.say(f"seeding {options.objects} sample objects through {ap_arn}")
    sample_set = generate(s3, ap_arn, objects=options.objects, seed=options.seed)
    result.samples = _describe_samples(sample_set)
    lap("samples_s")

    clock = EmulatedClock()
    plan = FaultPlan(options.faults, clock)
    functions = stack.functions()
    bound_values = _bound_values(stack, ap_arn) | set(created["buckets"]) | set(created["workgroups"])
    functions, result.env_overrides = _apply_env_json(functions, _env_json(options, use_case_dir), bound_values)
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
    rekognition = RekognitionEmulator(s3_reader(session))
    interceptor.add(rekognition.hook, service="rekognition")
    interceptor.add(sagemaker.hook, service="sagemaker")
    interceptor.add(sagemaker.hook, service="sagemaker-runtime")

    sfn = session.client("stepfunctions")
    (sm_logical, sm_arn), *others = created["state_machines"].items()
    if others:
        progress.say(f"template has several state machines; running {sm_logical}")
    result.execution_name = f"local-{uuid.uuid4().hex[:12]}"
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
            time.sleep(0.05)
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
def _create_access_point(session: boto3.Session, use_case: str) -> tuple[str, str]:
    """A bucket behind an S3 access point: FSx for ONTAP exposes its volume the same way."""
    bucket = f"fsxn-volume-{use_case}"[:63].lower()
    name = f"fsxn-{use_case}-ap"[:50].lower()
    session.client("s3").create_bucket(Bucket=bucket)
    session.client("s3control").create_access_point(AccountId=ACCOUNT, Name=name, Bucket=bucket)
    return f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{name}", bucket


def _parameters(template: Path, ap_arn: str, given: dict[str, str]) -> dict[str, str]:
    from local.runner.stack import load_template  # noqa: PLC0415

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
    try:
        module = importlib.import_module(sample_module_name(use_case_dir))
    except ModuleNotFoundError:
        return {}
    provide = getattr(module, "stack_parameters", None)
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


def _bound_values(stack: Stack, ap_arn: str) -> set[str]:
    values = {ap_arn}
    for phys in stack.physical.values():
        values.add(str(phys.ref))
        values.update(str(v) for v in phys.attrs.values())
    return values


def _env_json(options: RunOptions, use_case_dir: Path) -> dict[str, Any]:
    path = options.env_json or (use_case_dir.parent / "events" / "env.json")
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def _apply_env_json(
    functions: list[FunctionSpec], env_json: dict[str, Any], bound: set[str]
) -> tuple[list[FunctionSpec], dict[str, list[str]]]:
    """SAM's env.json semantics (per function, then ``Parameters`` for all), declared variables only.

    Values the template binds to an emulated resource (bucket, table, topic, the access point) and
    transport settings are kept: the overrides are meant for ``sam local invoke``.
    """
    from dataclasses import replace  # noqa: PLC0415

    report: dict[str, list[str]] = {"applied": [], "kept_from_template": []}
    out = []
    for spec in functions:
        overrides = {**(env_json.get("Parameters") or {}), **(env_json.get(spec.logical_id) or {})}
        env = dict(spec.environment)
        for key, value in overrides.items():
            if key not in env:
                continue
            if env[key] in bound or key.startswith(_TRANSPORT_VARIABLES):
                if str(value) != env[key]:
                    report["kept_from_template"].append(f"{spec.logical_id}.{key}")
                continue
            env[key] = str(value)
            report["applied"].append(f"{spec.logical_id}.{key}")
        out.append(replace(spec, environment=env))
    return out, report


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
            for line in raw.decode().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    manifest_keys.append(str(entry.get("key") or entry.get("Key")))
        prefix = f"results/execution_id={execution}/"
        for key, raw in storage.objects(bucket, prefix):
            record = json.loads(raw)
            source = str(record.get("source_key") or key[len(prefix) :])
            records[source] += 1
            if str(record.get("status", "")).upper() == "FAILED":
                result.records_failed += 1
                error = str(record.get("error_type") or "unknown")
                result.records_by_error[error] = result.records_by_error.get(error, 0) + 1
            else:
                result.records_succeeded += 1
    result.items_total = len(manifest_keys)
    expected = Counter(manifest_keys)
    result.unaccounted = sorted(
        k for k in expected if records.get(k, 0) == 0 and records.get(quote(k, safe=""), 0) == 0
    )
    result.duplicated = sorted(k for k, n in records.items() if n > 1)
    result.items_failed = result.records_failed + len(result.unaccounted)


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
    target = keep / use_case if keep else None
    storage = Storage(ACCOUNT)
    for bucket in created["buckets"]:
        for key, body in storage.objects(bucket, ""):
            result.output_keys.append(f"s3://{bucket}/{key}")
            if target is not None:
                path = target / bucket / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
        (target / "run.json").write_text(json.dumps(result.to_dict(history=True), indent=2, default=str))
        (target / "notifications.json").write_text(json.dumps(result.notifications, indent=2))
        result.outputs = str(target)
    else:
        buckets = ", ".join(f"s3://{b}" for b in created["buckets"])
        result.outputs = f"{buckets} (emulated; --keep DIR to save)"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _log_path(use_case_dir: Path, options: RunOptions) -> Path:
    if options.keep is not None:
        path = options.keep / use_case_dir.name / "lambda.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    fd, name = tempfile.mkstemp(prefix=f"local-{use_case_dir.name}-", suffix=".log")
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def _lambda_output_to(path: Path) -> Iterator[None]:
    """Handler logs (Powertools writes to stdout) go to a file; progress keeps the terminal."""
    with path.open("a", encoding="utf-8") as log:
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
