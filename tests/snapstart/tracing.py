"""Tracing a hosted function into a loopback X-Ray daemon stand-in (tests/support/xray.py).

The host sends stdout to /dev/null, so the start report of ``shared.observability`` (the
``start_type`` annotation on the ``## handler`` subsegment) is read where the X-Ray SDK sends it:
over UDP to ``AWS_XRAY_DAEMON_ADDRESS``, from the restored process as from any other. The Lambda
variables the SDK and Powertools look for (``LAMBDA_TASK_ROOT``, a sampled ``_X_AMZN_TRACE_ID``)
are set in the function's environment, so they are in the snapshot as in a Lambda environment.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from tests.snapstart.criu import FunctionSpec
from tests.support.xray import XrayDaemon


def traced(spec: FunctionSpec, daemon: XrayDaemon) -> tuple[FunctionSpec, str]:
    """``spec`` with tracing enabled and sent to ``daemon``, and the trace id its invocations carry."""
    trace_id = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return dataclasses.replace(
        spec,
        env={
            **spec.env,
            "POWERTOOLS_TRACE_DISABLED": "false",
            "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_X_AMZN_TRACE_ID": f"Root={trace_id};Parent={uuid.uuid4().hex[:16]};Sampled=1",
        },
    ), trace_id


def start_types(documents: list[dict[str, Any]], trace_id: str) -> list[Any]:
    """The ``start_type`` annotation of every ``## handler`` subsegment of the trace, in the order
    they started."""
    handlers = sorted(
        (d for d in documents if d.get("name") == "## handler" and d.get("trace_id") == trace_id),
        key=lambda d: d["start_time"],
    )
    return [d.get("annotations", {}).get("start_type") for d in handlers]
