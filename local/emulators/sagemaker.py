"""Amazon SageMaker hosting and Batch Transform, emulated by running the model's own inference code.

The runner registers the template's ``AWS::SageMaker::Model``, ``EndpointConfig``, ``Endpoint``
and ``InferenceComponent`` resources (``register``); an ``EndpointConfig`` with
``EnableNetworkIsolation`` beside a variant's ``ModelName`` is refused as CreateEndpointConfig
refuses it. A model is loaded as a SageMaker Python
framework container loads it: ``model.tar.gz`` is read from its ``ModelDataUrl`` in the emulated
S3, extracted to a model directory, and ``code/inference.py`` (``SAGEMAKER_PROGRAM``) is imported;
``model_fn(model_dir)`` loads it once, and each request goes through ``input_fn``, ``predict_fn``
and ``output_fn``. No container image runs: the image URI is recorded only.

Answered (control plane ``sagemaker``, data plane ``sagemaker-runtime``):

- ``CreateTransformJob`` / ``DescribeTransformJob`` / ``StopTransformJob``: the job reads every
  object under its ``S3Uri`` prefix (``S3DataType: S3Prefix``), splits it into records
  (``SplitType: Line`` or ``None``), groups records into mini-batches of at most
  ``MaxPayloadInMB`` (``BatchStrategy: MultiRecord``; one record each with ``SingleRecord``),
  and writes ``<S3OutputPath>/<object name>.out`` with the predictions joined by newlines
  (``AssembleWith: Line``). A record larger than ``MaxPayloadInMB`` or a model error fails the
  job (``Failed`` with a ``FailureReason``), as SageMaker does. The first describe after the
  create answers ``InProgress``, the next ``Completed``, so ``.sync`` pollers poll.
- ``InvokeEndpoint``: real-time endpoints (6 MB body limit), serverless endpoints (4 MB), and
  inference components (``InferenceComponentName``, required on such endpoints and refused on
  others). A component starts with zero copies, as an idle scale-to-zero stack is; the first
  request starts a scale-out that takes ``scale_from_zero_seconds`` of the run's emulated
  clock: during the first half SageMaker's "no capacity" ``ValidationError`` is answered,
  during the second ``ModelNotReadyException`` (the copy is loading), then requests succeed.
  Errors of the inference code are ``ModelError`` (424) as SageMaker reports them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import io
import re
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from botocore.awsrequest import AWSResponse

from local.runner.clock import EmulatedClock
from local.runner.interceptor import Call, error_reply, reply

REALTIME_LIMIT_BYTES: Final = 6 * 1024 * 1024
SERVERLESS_LIMIT_BYTES: Final = 4 * 1024 * 1024
DEFAULT_SCALE_FROM_ZERO_S: Final = 240.0
_JOB_NAME: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
NO_CAPACITY_MESSAGE: Final = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
    "in-progress (if configured) or try to increase the capacity by invoking "
    "UpdateInferenceComponentRuntimeConfig API."
)


class SageMakerError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class _Model:
    name: str
    image: str
    model_data_url: str
    environment: dict[str, str]
    loaded: tuple[ModuleType, Any] | None = None


@dataclass
class _Endpoint:
    name: str
    config: str
    kind: str  # "instance" | "serverless" | "components"
    model: str | None


@dataclass
class _Component:
    name: str
    endpoint: str
    model: str
    copies: int = 0
    scale_out_started: float | None = None


@dataclass
class Stats:
    invocations: int = 0
    no_capacity_replies: int = 0
    model_not_ready_replies: int = 0
    transform_jobs: int = 0
    records: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


class SageMakerEmulator:
    """Install with ``interceptor.add(e.hook, service="sagemaker")`` and ``service="sagemaker-runtime"``."""

    def __init__(
        self,
        s3: Any,
        clock: EmulatedClock,
        *,
        account_id: str,
        region: str,
        scale_from_zero_seconds: float = DEFAULT_SCALE_FROM_ZERO_S,
    ) -> None:
        if scale_from_zero_seconds < 0:
            raise ValueError("scale_from_zero_seconds must be >= 0")
        self._s3 = s3
        self._clock = clock
        self._account = account_id
        self._region = region
        self.scale_from_zero_seconds = scale_from_zero_seconds
        self.models: dict[str, _Model] = {}
        self.endpoint_configs: dict[str, list[dict[str, Any]]] = {}
        self.endpoints: dict[str, _Endpoint] = {}
        self.components: dict[str, _Component] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.stats = Stats()
        self._lock = threading.RLock()
        self._workdir = tempfile.TemporaryDirectory(prefix="local-sagemaker-")

    # --- resources the stack creates ------------------------------------------------------------
    def add_model(self, name: str, properties: dict[str, Any]) -> None:
        container = properties.get("PrimaryContainer") or {}
        self.models[name] = _Model(
            name=name,
            image=str(container.get("Image", "")),
            model_data_url=str(container.get("ModelDataUrl", "")),
            environment={k: str(v) for k, v in (container.get("Environment") or {}).items()},
        )

    def add_endpoint_config(self, name: str, properties: dict[str, Any]) -> None:
        """An ``EndpointConfig``; refused, as CreateEndpointConfig refuses it, when it sets
        ``EnableNetworkIsolation`` beside a variant's ``ModelName``: the setting is for
        inference-component configs (variants without a model); elsewhere the Model's own
        ``EnableNetworkIsolation`` applies."""
        variants = list(properties.get("ProductionVariants") or [])
        with_model = [v.get("VariantName") for v in variants if v.get("ModelName")]
        if str(properties.get("EnableNetworkIsolation", "false")).lower() == "true" and with_model:
            raise SageMakerError(
                "ValidationException",
                f"EndpointConfig {name}: EnableNetworkIsolation is supported only for inference component "
                f"endpoints, and variants {with_model} name a model.",
            )
        self.endpoint_configs[name] = variants

    def add_endpoint(self, name: str, config_name: str) -> None:
        variants = self.endpoint_configs.get(config_name)
        if not variants:
            raise SageMakerError("ValidationException", f"Could not find endpoint configuration {config_name}.")
        variant = variants[0]
        if "ServerlessConfig" in variant:
            kind = "serverless"
        elif not variant.get("ModelName"):
            kind = "components"
        else:
            kind = "instance"
        self.endpoints[name] = _Endpoint(name, config_name, kind, variant.get("ModelName"))

    def add_inference_component(self, name: str, properties: dict[str, Any]) -> None:
        endpoint = str(properties.get("EndpointName"))
        if self.endpoints.get(endpoint) is None or self.endpoints[endpoint].kind != "components":
            raise SageMakerError("ValidationException", f"Endpoint {endpoint} cannot host inference components.")
        model = str((properties.get("Specification") or {}).get("ModelName"))
        # An idle stack has scaled its component in to zero copies; the first request wakes it.
        self.components[name] = _Component(name, endpoint, model)

    # --- dispatch ---------------------------------------------------------------------------------
    def hook(self, call: Call) -> AWSResponse | None:
        try:
            if call.service == "sagemaker-runtime" and call.operation == "InvokeEndpoint":
                return self._invoke(call)
            if call.service == "sagemaker":
                handler = {
                    "CreateTransformJob": self._create_job,
                    "DescribeTransformJob": self._describe_job,
                    "StopTransformJob": self._stop_job,
                }.get(call.operation)
                if handler is None:
                    return None
                return reply(call, 200, handler(call.json()))
        except SageMakerError as e:
            return error_reply(call, e.code, str(e), e.status)
        return None

    # --- models -----------------------------------------------------------------------------------
    def _load(self, model_name: str) -> tuple[ModuleType, Any]:
        with self._lock:
            model = self.models.get(model_name)
            if model is None:
                raise SageMakerError("ValidationException", f"Could not find model \"{model_name}\".")
            if model.loaded is not None:
                return model.loaded
            match = re.fullmatch(r"s3://([^/]+)/(.+)", model.model_data_url)
            if not match:
                raise SageMakerError("ValidationException", f"ModelDataUrl {model.model_data_url!r} is not an S3 URL")
            body = self._s3.get_object(Bucket=match.group(1), Key=match.group(2))["Body"].read()
            digest = hashlib.sha256(body).hexdigest()[:16]
            model_dir = Path(self._workdir.name) / f"{model_name}-{digest}"
            model_dir.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
                tar.extractall(model_dir, filter="data")
            program = model.environment.get("SAGEMAKER_PROGRAM", "inference.py")
            code = model_dir / "code" / program
            if not code.is_file():
                raise SageMakerError("ValidationException", f"model.tar.gz has no code/{program}")
            spec = importlib.util.spec_from_file_location(f"local_sagemaker_{digest}", code)
            if spec is None or spec.loader is None:
                raise SageMakerError("ValidationException", f"cannot import {code}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            model.loaded = (module, module.model_fn(str(model_dir)))
            return model.loaded

    def predict(self, model_name: str, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """One request through input_fn -> predict_fn -> output_fn; model errors -> ModelError."""
        module, model = self._load(model_name)
        try:
            data = module.input_fn(body, content_type)
            prediction = module.predict_fn(data, model)
            out = module.output_fn(prediction, accept)
        except Exception as e:  # any inference code error is the container's 4xx/5xx reply
            raise SageMakerError(
                "ModelError",
                f"Received client error (400) from primary with message \"{type(e).__name__}: {e}\".",
                424,
            ) from e
        payload, kind = out if isinstance(out, tuple) else (out, accept)
        raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        return raw, str(kind)

    # --- data plane -------------------------------------------------------------------------------
    def _invoke(self, call: Call) -> AWSResponse:
        match = re.fullmatch(r"/endpoints/([^/]+)/invocations", call.path)
        if not match:
            raise SageMakerError("ValidationError", f"unexpected path {call.path}")
        name = match.group(1)
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise SageMakerError("ValidationError", f"Endpoint {name} of account {self._account} not found.")
        body = call.body
        component_name = call.header("X-Amzn-SageMaker-Inference-Component")
        limit = SERVERLESS_LIMIT_BYTES if endpoint.kind == "serverless" else REALTIME_LIMIT_BYTES
        if len(body) > limit:
            raise SageMakerError(
                "ValidationError",
                f"Request payload of {len(body)} bytes exceeds the {limit} bytes the endpoint accepts.",
            )
        if endpoint.kind == "components":
            if not component_name:
                raise SageMakerError(
                    "ValidationError",
                    "Inference Component Name header is required for endpoints to which you plan to deploy "
                    "inference components.",
                )
            component = self.components.get(component_name)
            if component is None or component.endpoint != name:
                raise SageMakerError(
                    "ValidationError", f"Inference component {component_name} does not exist on endpoint {name}."
                )
            self._wait_for_copy(component)
            model_name = component.model
        else:
            if component_name:
                raise SageMakerError("ValidationError", f"Endpoint {name} does not host inference components.")
            model_name = str(endpoint.model)
        content_type = call.header("Content-Type") or "application/octet-stream"
        accept = call.header("Accept") or content_type
        payload, kind = self.predict(model_name, body, content_type, accept)
        with self._lock:
            self.stats.invocations += 1
            self.stats.by_endpoint[name] = self.stats.by_endpoint.get(name, 0) + 1
        return reply(call, 200, payload, {"Content-Type": kind, "x-Amzn-Invoked-Production-Variant": "AllTraffic"})

    def _wait_for_copy(self, component: _Component) -> None:
        with self._lock:
            if component.copies > 0:
                return
            now = self._clock.now()
            if component.scale_out_started is None:
                component.scale_out_started = now
            waited = now - component.scale_out_started
            if waited >= self.scale_from_zero_seconds:
                component.copies = 1
                return
            if waited < self.scale_from_zero_seconds / 2:
                self.stats.no_capacity_replies += 1
                raise SageMakerError("ValidationError", NO_CAPACITY_MESSAGE)
            self.stats.model_not_ready_replies += 1
            raise SageMakerError(
                "ModelNotReadyException", f"Model for inference component {component.name} is not ready.", 429
            )

    # --- Batch Transform --------------------------------------------------------------------------
    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self._region}:{self._account}:{kind}/{name.lower()}"

    def _create_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("TransformJobName", ""))
        if not _JOB_NAME.fullmatch(name):
            raise SageMakerError("ValidationException", f"TransformJobName {name!r} does not match {_JOB_NAME.pattern}")
        with self._lock:
            if name in self.jobs:
                raise SageMakerError(
                    "ValidationException",
                    "Job name must be unique within an AWS account and region, and a job with this name already exists "
                    f"({self._arn('transform-job', name)})",
                )
            model_name = str(request.get("ModelName", ""))
            if model_name not in self.models:
                raise SageMakerError("ValidationException", f"Could not find model \"{model_name}\".")
            now = dt.datetime.now(dt.UTC).timestamp()
            job: dict[str, Any] = {
                "TransformJobName": name,
                "TransformJobArn": self._arn("transform-job", name),
                "TransformJobStatus": "InProgress",
                "ModelName": model_name,
                "MaxPayloadInMB": int(request.get("MaxPayloadInMB", 6)),
                "BatchStrategy": request.get("BatchStrategy", "MultiRecord"),
                "TransformInput": request.get("TransformInput") or {},
                "TransformOutput": request.get("TransformOutput") or {},
                "TransformResources": request.get("TransformResources") or {},
                "CreationTime": now,
                "TransformStartTime": now,
            }
            self.jobs[name] = job
            self.stats.transform_jobs += 1
        self._run_job(job)
        return {"TransformJobArn": job["TransformJobArn"]}

    def _run_job(self, job: dict[str, Any]) -> None:
        outcome: dict[str, Any] = {"status": "Completed"}
        try:
            self._transform(job)
        except SageMakerError as e:
            outcome = {"status": "Failed", "reason": str(e)}
        job["_outcome"] = outcome
        job["_describes"] = 0

    def _transform(self, job: dict[str, Any]) -> None:
        source = (job["TransformInput"].get("DataSource") or {}).get("S3DataSource") or {}
        match = re.fullmatch(r"s3://([^/]+)/?(.*)", str(source.get("S3Uri", "")))
        out_match = re.fullmatch(r"s3://([^/]+)/?(.*)", str(job["TransformOutput"].get("S3OutputPath", "")))
        if not match or not out_match:
            raise SageMakerError("ValidationException", "S3Uri and S3OutputPath must be s3:// URLs")
        bucket, prefix = match.groups()
        out_bucket, out_prefix = out_match.groups()
        split = job["TransformInput"].get("SplitType", "None")
        content_type = str(job["TransformInput"].get("ContentType", "application/octet-stream"))
        accept = str(job["TransformOutput"].get("Accept", content_type))
        joiner = b"\n" if job["TransformOutput"].get("AssembleWith", "None") == "Line" else b""
        limit = job["MaxPayloadInMB"] * 1024 * 1024
        single = job["BatchStrategy"] == "SingleRecord"
        keys = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [entry["Key"] for entry in page.get("Contents") or []]
        if not keys:
            raise SageMakerError("ValidationException", f"No S3 objects found under S3 URL s3://{bucket}/{prefix}")
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        for key in keys:
            data = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            records = [r for r in data.split(b"\n") if r.strip()] if split == "Line" else [data]
            outputs: list[bytes] = []
            batch: list[bytes] = []
            size = 0
            for record in records:
                if len(record) + 1 > limit:
                    raise SageMakerError(
                        "ValidationException", f"{key}: a record of {len(record)} bytes exceeds MaxPayloadInMB"
                    )
                if batch and (single or size + len(record) + 1 > limit):
                    outputs.append(self._predict_batch(job, batch, content_type, accept))
                    batch, size = [], 0
                batch.append(record)
                size += len(record) + 1
            if batch:
                outputs.append(self._predict_batch(job, batch, content_type, accept))
            body = joiner.join(o.rstrip(b"\n") for o in outputs)
            if joiner and body:
                body += joiner
            relative = key[len(base) :]
            target = f"{out_prefix.rstrip('/')}/{relative}.out" if out_prefix else f"{relative}.out"
            self._s3.put_object(Bucket=out_bucket, Key=target, Body=body, ContentType=accept)

    def _predict_batch(self, job: dict[str, Any], batch: list[bytes], content_type: str, accept: str) -> bytes:
        try:
            payload, _ = self.predict(job["ModelName"], b"\n".join(batch) + b"\n", content_type, accept)
        except SageMakerError as e:
            raise SageMakerError("ValidationException", f"ClientError: {e}") from e
        with self._lock:
            self.stats.records += len(batch)
        return payload

    def _describe_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("TransformJobName", ""))
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                raise SageMakerError("ValidationException", f"Could not find job to describe ({name}).")
            job["_describes"] += 1
            if job["_describes"] > 1 and job["TransformJobStatus"] == "InProgress":
                outcome = job["_outcome"]
                job["TransformJobStatus"] = outcome["status"]
                job["TransformEndTime"] = dt.datetime.now(dt.UTC).timestamp()
                if "reason" in outcome:
                    job["FailureReason"] = outcome["reason"][:1024]
            return {k: v for k, v in job.items() if not k.startswith("_")}

    def _stop_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("TransformJobName", ""))
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                raise SageMakerError("ValidationException", f"Could not find job ({name}).")
            if job["TransformJobStatus"] == "InProgress":
                job["TransformJobStatus"] = "Stopped"
        return {}

    def summary(self) -> dict[str, int]:
        return {
            "invocations": self.stats.invocations,
            "transform_jobs": self.stats.transform_jobs,
            "no_capacity_replies": self.stats.no_capacity_replies,
            "model_not_ready_replies": self.stats.model_not_ready_replies,
        }
