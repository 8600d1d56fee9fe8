"""Extensions to moto's Step Functions interpreter so the project's REAL definitions run locally.

moto 5.2.5 ships LocalStack's ASL interpreter (``moto.stepfunctions.parser``). For a Distributed
Map it lacks what our pipelines rely on; this module adds it without editing site-packages:

- ``ItemBatcher`` (not in moto's ANTLR grammar): the block is taken out of the definition text
  before the grammar sees it and handed to our Distributed Map component, which batches exactly as
  Step Functions does: ``MaxItemsPerBatch[Path]``, ``MaxInputBytesPerBatch[Path]`` and
  ``BatchInput``, each child execution receiving ``{"Items": [...], "BatchInput": {...}}``.
- ``ItemReader`` with ``ReaderConfig.InputType: JSONL`` (moto reads CSV and JSON only).
- Child executions as Step Functions runs them: their own ``$$.Execution`` (name, id), their own
  history, ``ToleratedFailurePercentage[Path]`` / ``ToleratedFailureCount[Path]`` enforced (the
  Map Run fails with ``States.ExceedToleratedFailureThreshold``; moto never fails it),
  ``MaxConcurrency[Path]`` honoured.
- ``ResultWriter`` writing what Step Functions writes: ``<Prefix>/<map run id>/manifest.json`` and
  ``SUCCEEDED_<n>.json`` / ``FAILED_<n>.json`` (moto writes an empty manifest only), plus
  ``WriterConfig`` (``OutputType`` JSON|JSONL, ``Transformation`` NONE|COMPACT|FLATTEN).

``EngineExtensions`` installs the extensions (and the progress hook and Retry time scaling) for the
duration of a ``with`` block and restores moto afterwards.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, cast

from antlr4 import CommonTokenStream, InputStream  # type: ignore[import-untyped]
from jsonpath_ng.ext.parser import parse as jsonpath_parse
from moto.stepfunctions.parser.api import (
    ExecutionFailedEventDetails,
    HistoryEventType,
    MapRunFailedEventDetails,
    MapRunStartedEventDetails,
    MapRunStatus,
)
from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.parargs import Parargs
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import (
    resource_eval_s3 as item_reader_s3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_output_transformer.transformer import (  # noqa: E501
    ResourceOutputTransformer,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.item_reader_decl import (
    ItemReader,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.reader_config.input_type import (
    InputType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.reader_config.reader_config_decl import (
    ReaderConfig,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor import (  # noqa: E501
    DistributedItemProcessor,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.label import Label
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
    resource_eval_s3 as result_writer_s3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
    ResultWriter,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils, state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import Resource
from moto.stepfunctions.parser.asl.component.state.fail import state_fail
from moto.stepfunctions.parser.asl.component.state.state_props import StateProps
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError, ProgramTimedOut
from moto.stepfunctions.parser.asl.eval.states import ContextObjectData, ExecutionData, ItemData, MapData
from moto.stepfunctions.parser.asl.parse import asl_parser as moto_asl_parser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client
from moto.stepfunctions.parser.asl.utils import json_path as moto_json_path
from moto.stepfunctions.parser.asl.utils.json_path import extract_json
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

from local.runner import service_tasks

# Step Functions limits that shape batching (the state payload quota applies to each child input).
MAX_BATCH_INPUT_BYTES: Final = 256 * 1024
# Child executions run in threads of one process: more threads than cores only add contention
# (measured: 2 threads beat 8 on 2 cores), but at least 2 keep concurrency real.
DEFAULT_LOCAL_MAX_WORKERS: Final = max(2, min(8, os.cpu_count() or 2))
EXCEED_TOLERANCE_ERROR: Final = "States.ExceedToleratedFailureThreshold"
EXCEED_TOLERANCE_CAUSE: Final = "The specified tolerated failure threshold was exceeded"
RESULT_WRITER_FAILED: Final = "States.ResultWriterFailed"
ITEM_READER_FAILED: Final = "States.ItemReaderFailed"

_JSONL: Final = "JSONL"


class DefinitionError(ValueError):
    """The definition uses an extension field in a way Step Functions would reject."""


# --------------------------------------------------------------------------------------------
# Definition pre-processing: the fields moto's grammar does not know
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MapExtensions:
    """Fields of one Distributed Map state handled by this module rather than moto's grammar."""

    item_batcher: dict[str, Any] | None = None
    writer_config: dict[str, Any] | None = None


def split_extensions(definition: dict[str, Any]) -> tuple[dict[str, Any], dict[str, MapExtensions]]:
    """Return (definition without ItemBatcher/WriterConfig, {Map state name: its extensions}).

    State names are unique within a state machine, nested Map and Parallel states included, so
    the name identifies the Map state the extensions belong to.
    """
    stripped = copy.deepcopy(definition)
    found: dict[str, MapExtensions] = {}
    seen: set[str] = set()

    def walk(machine: dict[str, Any]) -> None:
        for name, state in (machine.get("States") or {}).items():
            if name in seen:
                raise DefinitionError(f"state name {name!r} is used twice")
            seen.add(name)
            if state.get("Type") == "Map":
                pct = state.get("ToleratedFailurePercentage")
                if isinstance(pct, int) and not isinstance(pct, bool):
                    # moto's grammar takes only a decimal number here; Step Functions takes 0-100.
                    state["ToleratedFailurePercentage"] = float(pct)
                batcher = state.pop("ItemBatcher", None)
                writer = state.get("ResultWriter")
                writer_config = writer.pop("WriterConfig", None) if isinstance(writer, dict) else None
                if batcher is not None or writer_config is not None:
                    _validate_batcher(name, batcher)
                    found[name] = MapExtensions(item_batcher=batcher, writer_config=writer_config)
                if isinstance(writer, dict) and not writer:
                    # WriterConfig alone: results transformed but not exported.
                    state.pop("ResultWriter")
            for nested in (state.get("ItemProcessor"), state.get("Iterator")):
                if isinstance(nested, dict):
                    walk(nested)
            for branch in state.get("Branches") or []:
                walk(branch)

    walk(stripped)
    return stripped, found


_BATCHER_FIELDS = {
    "MaxItemsPerBatch",
    "MaxItemsPerBatchPath",
    "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath",
    "BatchInput",
}


def _validate_batcher(state: str, batcher: Any) -> None:
    if batcher is None:
        return
    if not isinstance(batcher, dict):
        raise DefinitionError(f"{state}: ItemBatcher must be an object")
    unknown = set(batcher) - _BATCHER_FIELDS
    if unknown:
        raise DefinitionError(f"{state}: ItemBatcher has unknown fields {sorted(unknown)}")
    for static, path in (
        ("MaxItemsPerBatch", "MaxItemsPerBatchPath"),
        ("MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath"),
    ):
        if static in batcher and path in batcher:
            raise DefinitionError(f"{state}: ItemBatcher sets both {static} and {path}")
    if not any(k in batcher for k in _BATCHER_FIELDS - {"BatchInput"}):
        raise DefinitionError(f"{state}: ItemBatcher needs MaxItemsPerBatch[Path] or MaxInputBytesPerBatch[Path]")
    if "BatchInput" in batcher and not isinstance(batcher["BatchInput"], dict):
        raise DefinitionError(f"{state}: ItemBatcher.BatchInput must be an object")


# --------------------------------------------------------------------------------------------
# ItemReader: JSONL
# --------------------------------------------------------------------------------------------
def _jsonl_input_type() -> InputType:
    it = InputType.__new__(InputType)
    # moto's InputType holds an enum without JSONL; the marker string is read by LocalItemReader.
    setattr(it, "input_type_value", _JSONL)  # noqa: B010 - Final attribute in moto's typing
    return it


class JsonlTransformer(ResourceOutputTransformer):
    """Turns the body of a JSONL object into the list of items (one per non-empty line)."""

    def _eval_body(self, env: Environment) -> None:
        reader_config = env.stack.pop()
        body: str = env.stack.pop()
        items: list[Any] = []
        # Step Functions separates JSONL records by "\n" only (a trailing "\r" is JSON
        # whitespace); str.splitlines() would also split on U+2028, U+0085, ... inside a key.
        for number, line in enumerate(body.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise _failure(
                    env,
                    ITEM_READER_FAILED,
                    f"ItemReader: line {number} of the JSONL object is not valid JSON: {e}",
                ) from e
        max_items = reader_config.get("MaxItemsValue")
        env.stack.append(items[:max_items] if max_items else items)


class LocalItemReader(ItemReader):
    """moto's ItemReader plus ``InputType: JSONL``; a failure to read is ``States.ItemReaderFailed``.

    Step Functions reports any error reading the items (the S3 call failing after its retries,
    an object that does not parse) as ``States.ItemReaderFailed`` on the Map state, so the Map's
    ``Retry``/``Catch`` on that name applies; moto lets the botocore exception escape, which
    ends the execution with ``States.Runtime``.
    """

    def _eval_body(self, env: Environment) -> None:
        try:
            super()._eval_body(env)
        except FailureEventException:
            raise
        except Exception as e:
            raise _failure(env, ITEM_READER_FAILED, f"{type(e).__name__}: {e}") from e

    def __init__(self, resource: Any, parargs: Any, reader_config: Any) -> None:
        is_jsonl = reader_config is not None and reader_config.input_type.input_type_value == _JSONL
        if is_jsonl:
            # The parent constructor picks a transformer by InputType and knows no JSONL.
            super().__init__(resource=resource, parargs=parargs, reader_config=None)
            setattr(self, "reader_config", reader_config)  # noqa: B010 - Final attribute in moto's typing
            self.resource_output_transformer = JsonlTransformer()
        else:
            super().__init__(resource=resource, parargs=parargs, reader_config=reader_config)


# --------------------------------------------------------------------------------------------
# Distributed Map
# --------------------------------------------------------------------------------------------
@dataclass
class ChildRecord:
    """One child workflow execution of a Map Run, in the shape ResultWriter exports."""

    index: int
    name: str
    arn: str
    input: Any
    start: dt.datetime
    item_count: int
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stop: dt.datetime | None = None

    def export(self, state_machine_arn: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ExecutionArn": self.arn,
            "Input": json.dumps(self.input, separators=(",", ":")),
            "InputDetails": {"Included": True},
            "Name": self.name,
            "RedriveCount": 0,
            "RedriveStatus": "NOT_REDRIVABLE",
            "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven"
            if self.status == "SUCCEEDED"
            else "Execution is part of a Map Run",
            "StartDate": _iso(self.start),
            "StateMachineArn": state_machine_arn,
            "Status": self.status,
            "StopDate": _iso(self.stop or self.start),
        }
        if self.status == "SUCCEEDED":
            out["Output"] = json.dumps(self.output, separators=(",", ":"))
            out["OutputDetails"] = {"Included": True}
        else:
            out["Error"] = self.error or "States.TaskFailed"
            out["Cause"] = self.cause or ""
        return out


@dataclass
class MapRunOutcome:
    """What a Map Run hands to its ResultWriter (pushed on the stack instead of the output list)."""

    map_run_arn: str
    child_state_machine_arn: str
    records: list[ChildRecord] = field(default_factory=list)


class ChildEventManager(EventManager):
    """The history of one child workflow execution, tagged for the progress listener."""

    def __init__(self, map_state: str, execution_name: str) -> None:
        super().__init__()
        self.map_state = map_state
        self.execution_name = execution_name


class LocalDistributedMap(DistributedItemProcessor):
    """A Distributed Map that batches, enforces its failure tolerance and runs child executions."""

    state_name: str = ""
    item_batcher: dict[str, Any] | None = None
    writer_config: dict[str, Any] | None = None
    has_result_writer: bool = False
    batch_input_template: Any = None  # moto Parameters component evaluating BatchInput
    max_workers: int = DEFAULT_LOCAL_MAX_WORKERS

    @classmethod
    def replacing(cls, original: Any) -> LocalDistributedMap:
        return cls(
            query_language=original._query_language,
            start_at=original._start_at,
            states=original._states,
            comment=original._comment,
            processor_config=original._processor_config,
        )

    # moto's _eval_body does: MapRunStarted, item_reader.eval, _map_run, MapRunSucceeded and the
    # failure events. We keep that frame and replace _map_run.
    def _map_run(self, env: Environment, eval_input: Any) -> None:
        raw_items = env.stack.pop()
        if not isinstance(raw_items, list):
            raise _failure(env, ITEM_READER_FAILED, "Attempting to map over non-iterable node.")
        map_input = env.stack[-1] if env.stack else env.states.get_input()
        items = self._select_items(env, eval_input, map_input, raw_items)
        batches = self._batches(env, map_input, items)
        record = eval_input.map_run_record
        child_sm_arn = record.map_run_arn.rsplit(":", 1)[0].replace(":mapRun:", ":stateMachine:")
        outcome = MapRunOutcome(map_run_arn=record.map_run_arn, child_state_machine_arn=child_sm_arn)
        total_items = len(items)
        tolerated_count = int(eval_input.tolerated_failure_count or 0)
        tolerated_pct = float(eval_input.tolerated_failure_percentage or 0.0)
        program = self._get_iteration_program()

        failed_items = 0
        exceeded = False
        lock = threading.Lock()
        concurrency = int(eval_input.max_concurrency or 0)
        workers = max(1, min(self.max_workers, concurrency or self.max_workers, len(batches) or 1))

        def exceeds() -> bool:
            # Step Functions: with no threshold configured any failure fails the Map Run; with
            # one or both configured, exceeding either fails it. A threshold of 0 is "not set".
            if failed_items == 0:
                return False
            over_count = failed_items > tolerated_count
            over_pct = total_items > 0 and failed_items * 100.0 / total_items > tolerated_pct
            if tolerated_count > 0 and tolerated_pct > 0:
                return over_count or over_pct
            if tolerated_count > 0:
                return over_count
            if tolerated_pct > 0:
                return over_pct
            return True

        pending = list(enumerate(batches))
        pending.reverse()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"map-{self.state_name}") as pool:
            running: set[Future[ChildRecord]] = set()
            while pending or running:
                while pending and len(running) < workers and not exceeded and env.is_running():
                    index, batch = pending.pop()
                    running.add(pool.submit(self._run_child, env, program, record, index, batch))
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    running.discard(fut)
                    child = fut.result()
                    outcome.records.append(child)
                    with lock:
                        if child.status == "SUCCEEDED":
                            record.item_counter.succeeded.count(child.item_count)
                            record.execution_counter.succeeded.count()
                        else:
                            failed_items += child.item_count
                            record.item_counter.failed.count(child.item_count)
                            record.execution_counter.failed.count()
                        if exceeds():
                            exceeded = True
                if exceeded:
                    pending.clear()
        outcome.records.sort(key=lambda r: r.index)
        record.item_counter.total.count(total_items)
        record.execution_counter.total.count(len(outcome.records))

        if exceeded:
            if self.has_result_writer:
                # Results of the children that ran are still exported before the run fails.
                env.stack.append(outcome)
                env.heap["local.map_run_failed"] = True
            raise _failure(env, EXCEED_TOLERANCE_ERROR, EXCEED_TOLERANCE_CAUSE)
        if self.has_result_writer:
            env.stack.append(outcome)
        else:
            env.stack.append([_compact(r) for r in outcome.records])

    def _select_items(self, env: Environment, eval_input: Any, map_input: Any, items: list[Any]) -> list[Any]:
        selector = eval_input.item_selector or eval_input.parameters
        if selector is None:
            return items
        selected: list[Any] = []
        frame = env.open_inner_frame()
        try:
            for index, item in enumerate(items):
                frame.states.context_object.context_object_data["Map"] = MapData(Item=ItemData(Index=index, Value=item))
                frame.states.reset(input_value=map_input)
                frame.stack.append(map_input)
                selector.eval(frame)
                selected.append(frame.stack.pop())
                frame.stack.clear()
        finally:
            env.delete_frame(frame)
        return selected

    def _batch_limit(self, key: str, map_input: Any) -> int | None:
        batcher = self.item_batcher or {}
        if key in batcher:
            value = batcher[key]
        elif f"{key}Path" in batcher:
            value = extract_json(batcher[f"{key}Path"], map_input)
        else:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{self.state_name}: ItemBatcher.{key} must be a non-negative integer, got {value!r}")
        return value or None

    def _batches(self, env: Environment, map_input: Any, items: list[Any]) -> list[Any]:
        if self.item_batcher is None:
            return [_Single(item) for item in items]
        max_items = self._batch_limit("MaxItemsPerBatch", map_input)
        max_bytes = self._batch_limit("MaxInputBytesPerBatch", map_input)
        if max_bytes is not None and max_bytes > MAX_BATCH_INPUT_BYTES:
            raise _failure(env, "States.Runtime", f"MaxInputBytesPerBatch {max_bytes} exceeds 256 KiB")
        byte_limit = min(max_bytes or MAX_BATCH_INPUT_BYTES, MAX_BATCH_INPUT_BYTES)
        batch_input = self._eval_batch_input(env, map_input)
        base = {"Items": [], "BatchInput": batch_input} if batch_input is not None else {"Items": []}
        base_size = _json_size(base)
        batches: list[Any] = []
        current: list[Any] = []
        size = base_size
        for item in items:
            item_size = _json_size(item) + (1 if current else 0)
            if base_size + _json_size(item) > byte_limit:
                raise _failure(
                    env,
                    "States.Runtime",
                    f"An item of {_json_size(item)} bytes does not fit in a batch of at most {byte_limit} bytes",
                )
            full = (max_items is not None and len(current) >= max_items) or size + item_size > byte_limit
            if current and full:
                batches.append(_Batch(current, batch_input))
                current, size = [], base_size
                item_size = _json_size(item)
            current.append(item)
            size += item_size
        if current:
            batches.append(_Batch(current, batch_input))
        return batches

    def _eval_batch_input(self, env: Environment, map_input: Any) -> Any:
        if self.batch_input_template is None:
            return None
        frame = env.open_inner_frame()
        try:
            frame.states.reset(input_value=map_input)
            frame.stack.append(map_input)
            self.batch_input_template.eval(frame)
            return frame.stack.pop()
        finally:
            env.delete_frame(frame)

    def _run_child(self, parent: Environment, program: Any, record: Any, index: int, job: Any) -> ChildRecord:
        name = str(uuid.uuid4())
        sm = parent.states.context_object.context_object_data["StateMachine"]
        # Map Run arn:...:mapRun:<machine>/<label>:<run id> -> child arn:...:execution:<machine>/<label>:<name>
        execution_arn = f"{record.map_run_arn.rsplit(':', 1)[0].replace(':mapRun:', ':execution:')}:{name}"
        child_input = job.payload()
        child = ChildRecord(
            index=index,
            name=name,
            arn=execution_arn,
            input=child_input,
            start=dt.datetime.now(tz=dt.UTC),
            item_count=job.count(),
        )
        exec_data = parent.states.context_object.context_object_data["Execution"]
        env = Environment(
            aws_execution_details=parent.aws_execution_details,
            execution_type=parent.execution_type,
            context=cast(
                ContextObjectData,
                {
                    "Execution": ExecutionData(
                        Id=execution_arn,
                        Input=child_input,
                        Name=name,
                        RoleArn=exec_data.get("RoleArn"),
                        StartTime=child.start.isoformat(),
                    ),
                    "StateMachine": {"Id": sm["Id"], "Name": sm["Name"]},
                },
            ),
            event_history_context=EventHistoryContext.of_program_start(),
            cloud_watch_logging_session=None,
            activity_store=parent.activity_store,
        )
        env.event_manager = ChildEventManager(map_state=self.state_name, execution_name=name)
        env.states.reset(input_value=child_input)
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionStarted,
            update_source_event_id=False,
        )
        try:
            program.eval(env)
            state = env.program_state()
        except Exception as e:  # noqa: BLE001 - an interpreter crash fails this child, as in AWS
            state = ProgramError(error={"error": "States.Runtime", "cause": f"{type(e).__name__}: {e}"})
        child.stop = dt.datetime.now(tz=dt.UTC)
        if isinstance(state, ProgramEnded):
            child.status = "SUCCEEDED"
            child.output = env.states.get_input()
        elif isinstance(state, ProgramTimedOut):
            child.status, child.error, child.cause = "TIMED_OUT", "States.Timeout", ""
        elif isinstance(state, ProgramError):
            err = state.error or {}
            child.status = "FAILED"
            child.error = err.get("error") or "States.TaskFailed"
            child.cause = err.get("cause") or ""
        else:
            child.status, child.error, child.cause = "ABORTED", "States.Aborted", "Map Run stopped"
        return child

    def _eval_body(self, env: Environment) -> None:
        # Same frame as moto's DistributedIterationComponent._eval_body; ours keeps the outcome on
        # the stack when the run fails so the ResultWriter can still export it.
        eval_input = env.stack.pop()
        map_run_record = eval_input.map_run_record
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.MapRunStarted,
            event_details=_details(
                mapRunStartedEventDetails=MapRunStartedEventDetails(mapRunArn=map_run_record.map_run_arn)
            ),
        )
        try:
            if eval_input.item_reader:
                eval_input.item_reader.eval(env=env)
            else:
                env.stack.append(eval_input.input_items)
            self._map_run(env=env, eval_input=eval_input)
        except FailureEventException as failure:
            details = MapRunFailedEventDetails()
            pair = failure.extract_error_cause_pair()
            if pair:
                details["error"], details["cause"] = pair
            env.event_manager.add_event(
                context=env.event_history_context,
                event_type=HistoryEventType.MapRunFailed,
                event_details=_details(mapRunFailedEventDetails=details),
            )
            map_run_record.set_stop(status=MapRunStatus.FAILED)
            raise
        env.event_manager.add_event(context=env.event_history_context, event_type=HistoryEventType.MapRunSucceeded)
        map_run_record.set_stop(status=MapRunStatus.SUCCEEDED)


class _Single:
    def __init__(self, item: Any) -> None:
        self.item = item

    def payload(self) -> Any:
        return copy.deepcopy(self.item)

    def count(self) -> int:
        return 1


class _Batch:
    def __init__(self, items: list[Any], batch_input: Any) -> None:
        self.items = items
        self.batch_input = batch_input

    def payload(self) -> Any:
        out: dict[str, Any] = {"Items": copy.deepcopy(self.items)}
        if self.batch_input is not None:
            out["BatchInput"] = copy.deepcopy(self.batch_input)
        return out

    def count(self) -> int:
        return len(self.items)


def _compact(record: ChildRecord) -> Any:
    if record.status == "SUCCEEDED":
        return record.output
    return {"Error": record.error, "Cause": record.cause}


# --------------------------------------------------------------------------------------------
# ResultWriter
# --------------------------------------------------------------------------------------------
class LocalMapState(StateMap):
    """A Map state whose ResultWriter also runs when the Map Run exceeded its tolerance."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def _eval_execution(self, env: Environment) -> None:
        try:
            super()._eval_execution(env)
        except FailureEventException:
            if env.heap.pop("local.map_run_failed", False) and self.result_writer is not None:
                try:
                    self.result_writer.eval(env)
                finally:
                    env.stack.clear()
            raise


class LocalResultWriter(ResultWriter):
    """Writes the Map Run's child executions to S3 the way Step Functions exports them."""

    writer_config: dict[str, Any] | None = None

    def _eval_body(self, env: Environment) -> None:
        outcome = env.stack.pop()
        # Parameters paths read the state's effective input, which is under the outcome.
        self.parargs.eval(env=env)
        params = env.stack.pop()
        if not isinstance(outcome, MapRunOutcome):
            raise TypeError("ResultWriter evaluated without a Map Run outcome")
        bucket = params.get("Bucket")
        prefix = str(params.get("Prefix", ""))
        if not bucket:
            raise _failure(env, RESULT_WRITER_FAILED, "ResultWriter.Parameters.Bucket is required")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        run_id = outcome.map_run_arn.rsplit(":", 1)[-1]
        base = f"{prefix}{run_id}/"
        config = self.writer_config or {}
        output_type = config.get("OutputType", "JSON")
        transformation = config.get("Transformation", "NONE")
        region = env.aws_execution_details.region
        s3 = service_client_for(region=region, service="s3")
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        try:
            for status in ("SUCCEEDED", "FAILED"):
                group = [r for r in outcome.records if (r.status == "SUCCEEDED") == (status == "SUCCEEDED")]
                if not group:
                    continue
                entries = [_transform(r, transformation, outcome.child_state_machine_arn) for r in group]
                if transformation == "FLATTEN" and status == "SUCCEEDED":
                    entries = [e for entry in entries for e in (entry if isinstance(entry, list) else [entry])]
                ext = "jsonl" if output_type == "JSONL" else "json"
                key = f"{base}{status}_0.{ext}"
                if output_type == "JSONL":
                    body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode()
                else:
                    body = json.dumps(entries, separators=(",", ":")).encode()
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                files[status].append({"Key": key, "Size": len(body)})
            manifest = {
                "DestinationBucket": bucket,
                "MapRunArn": outcome.map_run_arn,
                "ResultFiles": files,
            }
            manifest_key = f"{base}manifest.json"
            s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
        except FailureEventException:
            raise
        except Exception as e:
            raise _failure(env, RESULT_WRITER_FAILED, f"{type(e).__name__}: {e}") from e
        env.stack.append(
            {
                "MapRunArn": outcome.map_run_arn,
                "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
            }
        )


def _transform(record: ChildRecord, transformation: str, sm_arn: str) -> Any:
    if record.status != "SUCCEEDED" or transformation == "NONE":
        return record.export(sm_arn)
    return record.output


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------
class LocalPreprocessor(Preprocessor):
    """moto's preprocessor, building our components where moto's fall short."""

    def __init__(self, extensions: dict[str, MapExtensions], max_workers: int) -> None:
        super().__init__()
        self._extensions = extensions
        self._max_workers = max_workers

    def visitInput_type_decl(self, ctx: Any) -> Any:  # noqa: N802 - ANTLR visitor name
        if self._inner_string_of(ctx.string_literal()) == _JSONL:
            return _jsonl_input_type()
        return super().visitInput_type_decl(ctx)

    def visitItem_reader_decl(self, ctx: Any) -> Any:  # noqa: N802
        # Same walk as moto's visitor, whose ItemReader constructor rejects JSONL.
        props = StateProps()  # type: ignore[no-untyped-call]
        for child in ctx.children[3:-1]:
            props.add(self.visit(child))
        resource = props.get(typ=Resource)
        if resource is None:
            raise DefinitionError(f"ItemReader needs a Resource: {ctx.getText()}")
        return LocalItemReader(resource=resource, parargs=props.get(Parargs), reader_config=props.get(ReaderConfig))

    def visitResult_writer_decl(self, ctx: Any) -> Any:  # noqa: N802
        writer = super().visitResult_writer_decl(ctx)
        return LocalResultWriter(resource=writer.resource, parargs=writer.parargs)

    def visitState_decl_body(self, ctx: Any) -> Any:  # noqa: N802
        props = super().visitState_decl_body(ctx)
        # StateProps files components by exact type; ours must be found under moto's base types.
        registry = props._instance_by_type
        for local_type, base_type in ((LocalItemReader, ItemReader), (LocalResultWriter, ResultWriter)):
            if local_type in registry:
                registry[base_type] = registry.pop(local_type)
        return props

    def visitState_decl(self, ctx: Any) -> Any:  # noqa: N802
        state = super().visitState_decl(ctx)
        if not isinstance(state, StateMap):
            return state
        if isinstance(state.iteration_component, DistributedIterationComponent):
            if state.label is None:
                # Step Functions names Map Runs and child executions after the state (or Label).
                state.label = Label(label=state.name)
            local_state = LocalMapState()
            local_state.__dict__.update(state.__dict__)
            state = local_state
            component = LocalDistributedMap.replacing(state.iteration_component)
            ext = self._extensions.get(state.name, MapExtensions())
            component.state_name = state.name
            component.item_batcher = ext.item_batcher
            component.max_workers = self._max_workers
            component.has_result_writer = state.result_writer is not None
            if ext.item_batcher and "BatchInput" in ext.item_batcher:
                component.batch_input_template = _parameters_component(ext.item_batcher["BatchInput"])
            if isinstance(state.result_writer, LocalResultWriter):
                state.result_writer.writer_config = ext.writer_config
            state.iteration_component = component
        elif state.name in self._extensions and self._extensions[state.name].item_batcher is not None:
            raise DefinitionError(f"{state.name}: ItemBatcher is only valid in a DISTRIBUTED Map")
        return state


def _parameters_component(template: dict[str, Any]) -> EvalComponent:
    """Compile a payload template (``.$`` keys, intrinsics) with moto's own grammar."""
    probe = {"StartAt": "T", "States": {"T": {"Type": "Pass", "Parameters": template, "End": True}}}
    program, _ = _parse_plain(json.dumps(probe))
    parameters: EvalComponent = program.states.states["T"].parameters
    return parameters


def _parse_plain(text: str) -> tuple[Any, Any]:
    return _ORIGINAL_PARSE(text)


_ORIGINAL_PARSE: Final = moto_asl_parser.AmazonStateLanguageParser.parse


# ANTLR parse trees of definitions, by their text. Lexing and parsing with ANTLR's Python runtime
# is most of a parse (UC9's definition: 0.3 s of CPU), and a run parses each of its definitions
# at least twice (CreateStateMachine, StartExecution), again in every run of a process. A tree is
# only read (by the preprocessor below and moto's static analysers), never changed; every parse
# still builds a new program from it, so no state of one execution reaches another.
_TREES: dict[str, Any] = {}
_TREES_LOCK = threading.Lock()
_TREES_KEPT = 64


def _parse_tree(text: str) -> Any:
    with _TREES_LOCK:
        tree = _TREES.get(text)
    if tree is not None:
        return tree
    listener = moto_asl_parser.SyntaxErrorListener()  # type: ignore[no-untyped-call]
    lexer = ASLLexer(InputStream(text))
    parser = ASLParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    tree = parser.state_machine()  # type: ignore[no-untyped-call]
    if listener.errors:
        raise moto_asl_parser.ASLParserException(errors=listener.errors)
    with _TREES_LOCK:
        if len(_TREES) >= _TREES_KEPT:
            _TREES.clear()
        _TREES[text] = tree
    return tree


# moto's extract_json (InputPath, OutputPath, Parameters' ".$" fields, ItemsPath, Choice rules)
# parses its JSONPath with jsonpath-ng's PLY parser on every evaluation: 3 % of a 2,000-object
# semiconductor-eda run. A parsed path is only read by find(), so one per path text serves all.
jsonpath = functools.lru_cache(maxsize=1024)(jsonpath_parse)


def parse_definition(definition: str, *, max_workers: int = DEFAULT_LOCAL_MAX_WORKERS) -> tuple[Any, Any]:
    """Parse a definition the way our extended engine runs it; same contract as moto's parser."""
    stripped, extensions = split_extensions(json.loads(definition))
    tree = _parse_tree(json.dumps(stripped))
    program = LocalPreprocessor(extensions, max_workers).visit(tree)
    return program, tree


def error_name_for(error_name: str | None) -> Any:
    """``StatesErrorName`` for a ``States.*`` name, ``CustomErrorName`` otherwise."""
    if error_name is not None and error_name.startswith("States."):
        try:
            return StatesErrorName(typ=StatesErrorNameType.from_name(error_name))
        except ValueError:
            pass
    return CustomErrorName(error_name)


def _failure(env: Environment, error: str, cause: str) -> FailureEventException:
    """A failure with a Step Functions error name (``States.*``) or a custom one."""
    error_name = error_name_for(error)
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=error_name,
            event_type=HistoryEventType.TaskFailed,
            event_details=_details(executionFailedEventDetails=ExecutionFailedEventDetails(error=error, cause=cause)),
        )
    )


def _details(**details: Any) -> EventDetails:
    """moto's EventDetails TypedDict lists every kind of detail; an event carries one."""
    return cast(EventDetails, details)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def _iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------------
EventListener = Callable[[EventManager, str, dict[str, Any]], None]


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's Retrier: waits scaled, every wait recorded."""

    def __init__(self, scale: float, record: Callable[[float], None]) -> None:
        self._scale = scale
        self._record = record

    def sleep(self, seconds: float) -> None:
        import time  # noqa: PLC0415

        self._record(seconds)
        if self._scale > 0:
            time.sleep(seconds * self._scale)


def service_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """The client Step Functions' own calls use (ItemReader, ResultWriter, service integrations).

    moto's ``boto_client_for`` disables retries (``max_attempts: 0``); Step Functions retries its
    S3 reads and writes as the AWS SDKs do, so the local engine uses botocore's ``standard``
    retry mode (3 attempts, throttling and 5xx errors retried with backoff) instead.
    """
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(
        service_name=service,
        region_name=region,
        aws_access_key_id="ak",
        aws_secret_access_key="sk",  # noqa: S106 - emulated AWS
        config=Config(parameter_validation=False, retries={"mode": "standard", "total_max_attempts": 3}),
    )


class ReusedClients:
    """moto's ``boto_client_for`` for the engine's Lambda tasks, one client per Region and service.

    moto creates a new boto3 client (service model, endpoint rules, event handlers: about 8 ms of
    CPU) for every Lambda task it runs, so a Distributed Map of 1,000 batches spent 8 s creating
    clients. Step Functions keeps its connections; here one client per (Region, service) is made
    by moto's own function, with moto's own configuration (retries off: Step Functions' Retry
    decides), and reused for the install. botocore clients are thread-safe; the requests and
    replies are the same as before.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = moto_boto_client.boto_client_for(
                    region=region, service=service, state_credentials=state_credentials
                )
                self._clients[key] = client
            return client

    @property
    def created(self) -> int:
        return len(self._clients)


class EngineExtensions:
    """Installs the extensions into moto's interpreter for a ``with`` block (not re-entrant).

    ``retry_time_scale`` multiplies Retry waits (1.0 waits as long as AWS would; tests use a small
    factor); the waits AWS would have made are summed in ``retry_wait_seconds``.
    """

    _lock = threading.Lock()

    def __init__(
        self,
        *,
        max_workers: int = DEFAULT_LOCAL_MAX_WORKERS,
        retry_time_scale: float = 1.0,
        listener: EventListener | None = None,
    ) -> None:
        self.max_workers = max_workers
        self.retry_time_scale = retry_time_scale
        self.listener = listener
        self.retry_wait_seconds = 0.0
        self.lambda_clients = ReusedClients()
        self._saved: list[tuple[Any, str, Any]] = []
        self._ended: set[str] = set()
        self._ended_cond = threading.Condition()

    def wait_for_end(self, execution_arn: str, timeout: float) -> bool:
        """Block until the engine has recorded the end of ``execution_arn`` (its status is then
        what ``DescribeExecution`` answers) or ``timeout`` seconds pass; True when it ended.

        A caller waiting for an execution can wait on this instead of polling DescribeExecution
        every few milliseconds: a 5-minute run polled every 50 ms made 6,000 requests through
        botocore and moto (1.6-3 per object), all competing with the handlers for the one GIL.
        """
        with self._ended_cond:
            return self._ended_cond.wait_for(lambda: execution_arn in self._ended, timeout=timeout)

    def _record_end(self, execution_arn: str) -> None:
        with self._ended_cond:
            self._ended.add(execution_arn)
            self._ended_cond.notify_all()

    def _record_wait(self, seconds: float) -> None:
        with self._lock:
            self.retry_wait_seconds += seconds

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)))
        setattr(owner, name, value)

    def __enter__(self) -> EngineExtensions:
        max_workers = self.max_workers

        def parse(definition: str) -> tuple[Any, Any]:
            return parse_definition(definition, max_workers=max_workers)

        self._patch(moto_asl_parser.AmazonStateLanguageParser, "parse", staticmethod(parse))
        # A Fail state (ErrorPath) or a failed Parallel branch may re-raise a caught States.* error
        # (States.ExceedToleratedFailureThreshold, States.Timeout, ...); moto refuses those names.
        self._patch(state_fail, "CustomErrorName", error_name_for)
        self._patch(branches_decl, "CustomErrorName", error_name_for)
        self._patch(retrier_decl, "time", _ScaledTime(self.retry_time_scale, self._record_wait))
        for module in (item_reader_s3, result_writer_s3):
            self._patch(module, "boto_client_for", service_client_for)
        self.lambda_clients = ReusedClients()
        self._patch(lambda_eval_utils, "boto_client_for", self.lambda_clients)
        original_terminated = BaseExecutionWorkerCommunication.terminated
        record_end = self._record_end

        def terminated(comm: BaseExecutionWorkerCommunication) -> None:
            try:
                original_terminated(comm)  # moto sets the execution's status, output, error
            finally:
                record_end(str(comm.execution.exec_arn))

        self._patch(BaseExecutionWorkerCommunication, "terminated", terminated)
        # Optimized integrations moto only forwards (SageMaker createTransformJob.sync).
        self._patch(state_task_factory, "state_task_service_for", service_tasks.state_task_service_for)
        self._patch(moto_json_path, "parse", jsonpath)
        # moto warns that tolerance fields have no effect; with these extensions they do.
        preprocessor_log = logging.getLogger(Preprocessor.__module__)
        self._patch(preprocessor_log, "disabled", True)
        if self.listener is not None:
            listener = self.listener
            original_add = EventManager.add_event

            def add_event(manager: EventManager, *args: Any, **kwargs: Any) -> int:
                event_id: int = original_add(manager, *args, **kwargs)
                event_type = kwargs.get("event_type", args[1] if len(args) > 1 else None)
                details = kwargs.get("event_details", args[2] if len(args) > 2 else None)
                listener(manager, str(event_type), dict(details or {}))
                return event_id

            self._patch(EventManager, "add_event", add_event)
        return self

    def __exit__(self, *exc: object) -> None:
        while self._saved:
            owner, name, value = self._saved.pop()
            setattr(owner, name, value)


@contextmanager
def installed(**kwargs: Any) -> Iterator[EngineExtensions]:
    with EngineExtensions(**kwargs) as ext:
        yield ext
