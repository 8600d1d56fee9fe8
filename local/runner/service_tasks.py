"""Optimized service integrations moto's interpreter lacks, added for local runs.

moto 5.2.5 lists ``sagemaker`` among the services it only forwards (``.waitForTaskToken``
only). Step Functions' SageMaker integration runs ``createTransformJob`` with ``.sync``: create
the job, then poll ``DescribeTransformJob`` until it is ``Completed`` (the task output is the
describe reply), ``Failed`` or ``Stopped`` (the task fails with ``States.TaskFailed``, the
describe reply as the cause). API errors of the create call fail the task as
``SageMaker.<error code>`` (``SageMaker.ValidationException``, ``SageMaker.ThrottlingException``,
...). The calls go through an ordinary boto3 client, so whatever answers ``sagemaker`` (the
runner's SageMaker emulator, a fault) answers them. Nothing here is specific to a use case.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, Final

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
    ResourceRuntimePart,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

_SYNC_ACTIONS: Final = {"create_transform_job": ("describe_transform_job", "TransformJobName", "TransformJobStatus")}
# CreateTransformJob's request members (SageMaker API reference), the parameters the task accepts.
_SUPPORTED_PARAMETERS: Final = {
    "createtransformjob": {
        "TransformJobName", "ModelName", "MaxConcurrentTransforms", "ModelClientConfig", "MaxPayloadInMB",
        "BatchStrategy", "Environment", "TransformInput", "TransformOutput", "DataCaptureConfig",
        "TransformResources", "DataProcessing", "Tags", "ExperimentConfig",
    },
}  # fmt: skip
_TERMINAL_OK: Final = {"Completed"}
# Seconds between DescribeTransformJob polls (real time; the emulated job finishes in two polls).
_POLL_SECONDS: Final = 0.2
_TERMINAL_FAILED: Final = {"Failed", "Stopped"}


class LocalSageMakerTask(StateTaskServiceCallback):
    """``arn:aws:states:::sagemaker:<action>[.sync]`` for the actions in ``_SYNC_ACTIONS``."""

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync})  # type: ignore[arg-type]

    def _get_supported_parameters(self) -> set[str] | None:
        return _SUPPORTED_PARAMETERS.get(self.resource.api_action.lower())

    def _client(self, part: ResourceRuntimePart, credentials: StateCredentials) -> Any:
        return boto_client_for(service="sagemaker", region=part.region, state_credentials=credentials)

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            name = f"SageMaker.{ex.response['Error']['Code']}"
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(name),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(  # type: ignore[typeddict-item]
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=name,
                        cause=str(ex.response["Error"].get("Message", "")),
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        failure: FailureEvent = super()._from_error(env=env, ex=ex)
        return failure

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict[str, Any],
        state_credentials: StateCredentials,
    ) -> None:
        action = self._get_boto_service_action()
        if action not in _SYNC_ACTIONS:
            raise ValueError(f"sagemaker:{self.resource.api_action} is not emulated locally")
        response = getattr(self._client(resource_runtime_part, state_credentials), action)(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(response)

    def _eval_integration_pattern(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict[str, Any],
        state_credentials: StateCredentials,
    ) -> None:
        # moto 5.2.5's version calls interrupt_all() on the task-token endpoint even when the
        # integration has none (.sync only), which fails every .sync task; this is its .sync path.
        resolve = self._build_sync_resolver(env, resource_runtime_part, normalised_parameters, state_credentials)
        assert resolve is not None  # noqa: S101 - _build_sync_resolver always returns one
        outcome: Any = None
        while env.is_running() and outcome is None:
            outcome = resolve()
            if outcome is None:
                time.sleep(_POLL_SECONDS)
        env.stack.append(outcome)

    def _build_sync_resolver(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict[str, Any],
        state_credentials: StateCredentials,
    ) -> Callable[[], Any] | None:
        env.stack.pop()  # the create reply; the task's output is the final describe reply
        describe, name_field, status_field = _SYNC_ACTIONS[self._get_boto_service_action()]
        client = self._client(resource_runtime_part, state_credentials)
        name = normalised_parameters[name_field]

        def resolve() -> Any | None:
            reply = _json_ready(getattr(client, describe)(**{name_field: name}))
            reply.pop("ResponseMetadata", None)
            status = reply.get(status_field)
            if status in _TERMINAL_OK:
                return reply
            if status in _TERMINAL_FAILED:
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(  # type: ignore[typeddict-item]
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=to_json_str(reply),
                            )
                        ),
                    )
                )
            return None

        return resolve


def _json_ready(value: Any) -> Any:
    """botocore's datetimes as the epoch milliseconds Step Functions puts in a task's output."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


_original_factory: Final = state_task_service_factory.state_task_service_for


def state_task_service_for(service_name: str) -> StateTaskService:
    """moto's factory, with SageMaker's optimized integration added."""
    if service_name == "sagemaker":
        return LocalSageMakerTask()
    service: StateTaskService = _original_factory(service_name)
    return service
