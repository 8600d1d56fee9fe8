"""Serve the embedded runner's emulators (local/emulators/) to containers through the proxy.

Those emulators are hooks written for botocore's ``before-send`` event: they take a ``Call``
(service id, operation name, the prepared request) and return a complete HTTP reply, or ``None`` to
let moto answer. A request reaching the proxy is the same HTTP request, so it is turned back into
a ``Call``: the operation name is recovered from the wire the way AWS routes it (the
``X-Amz-Target`` header for JSON protocols, the method and URI template for REST protocols).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import boto3
import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from local.emulators.athena import AthenaEmulator
from local.emulators.bedrock import BedrockEmulator
from local.emulators.rekognition import RekognitionEmulator, s3_reader
from local.emulators.sagemaker import SageMakerEmulator
from local.runner.clock import EmulatedClock
from local.runner.interceptor import Call
from local.sam.emulation import Incoming, Override, Reply, moto_dispatch

Hook = Callable[[Call], AWSResponse | None]
_lock = threading.Lock()


@cache
def _service_model(endpoint_prefix: str) -> Any:
    session = botocore.session.get_session()
    for name in session.get_available_services():
        model = session.get_service_model(name)
        if endpoint_prefix in {model.endpoint_prefix, name}:
            return model
    raise KeyError(endpoint_prefix)


def _uri_pattern(request_uri: str) -> re.Pattern[str]:
    path = request_uri.split("?", 1)[0]
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join(
        ("(.+)" if part.endswith("+}") else "([^/]+)") if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{regex}$")


def operation_name(endpoint_prefix: str, incoming: Incoming) -> str | None:
    """The API operation an HTTP request calls, as botocore names it (``Converse``, ...)."""
    model = _service_model(endpoint_prefix)
    target = incoming.headers.get("X-Amz-Target") or incoming.headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    path = incoming.path.split("?", 1)[0]
    for name in model.operation_names:
        http = model.operation_model(name).http
        if http.get("method", "").upper() == incoming.method.upper() and _uri_pattern(http.get("requestUri", "")).match(
            path
        ):
            return str(name)
    return None


def hook_override(endpoint_prefix: str, hook: Hook) -> Override:
    """An ``Override`` for the proxy that asks ``hook`` first and moto otherwise."""
    service_id = _service_model(endpoint_prefix).service_id.hyphenize()

    def answer(incoming: Incoming) -> Reply:
        operation = operation_name(endpoint_prefix, incoming)
        response = None
        if operation is not None:
            request = AWSPreparedRequest(
                incoming.method, incoming.url, dict(incoming.headers), incoming.body, stream_output=False
            )
            response = hook(Call(service=service_id, operation=operation, request=request))
        if response is None:
            return moto_dispatch(incoming)
        headers = {str(k): str(v) for k, v in response.headers.items()}
        return int(response.status_code), headers, bytes(response.content)

    return answer


def sagemaker_emulator(session: boto3.Session) -> SageMakerEmulator:
    """The runner's SageMaker emulator for the tiers: the project's own inference code behind
    the endpoints and inference components provisioning registers. A component has a copy at
    the first request (no scale-from-zero wait: a container would sleep through the real
    backoff); the wait and its retries are covered by the runner's workflow tests."""
    return SageMakerEmulator(
        session.client("s3"), EmulatedClock(), account_id="123456789012", region="us-east-1", scale_from_zero_seconds=0
    )


def embedded_emulators(session: boto3.Session, sagemaker: SageMakerEmulator | None = None) -> Mapping[str, Override]:
    """Athena (DuckDB over the emulated S3 and Glue), Bedrock Runtime Converse, Rekognition
    DetectLabels (on the emulated S3's images) and SageMaker (``sagemaker`` or a new one: the
    control plane's transform jobs, the runtime's InvokeEndpoint)."""
    athena = AthenaEmulator(session, EmulatedClock())
    bedrock = BedrockEmulator()
    rekognition = RekognitionEmulator(s3_reader())
    sagemaker = sagemaker or sagemaker_emulator(session)
    return {
        "athena": hook_override("athena", athena.hook),
        "bedrock-runtime": hook_override("bedrock-runtime", bedrock.hook),
        "rekognition": hook_override("rekognition", rekognition.hook),
        "api.sagemaker": hook_override("api.sagemaker", sagemaker.hook),
        "runtime.sagemaker": hook_override("runtime.sagemaker", sagemaker.hook),
    }
