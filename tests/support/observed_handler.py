"""A handler decorated with shared.observability, invoked as Lambda would: cold, warm, then an
after-restore (shared.runtime.run_after_restore_hooks, as the runtime runs the hooks after a
SnapStart restore), then warm again. Run as a script by tests/unit/test_observability.py with
AWS_XRAY_DAEMON_ADDRESS and POWERTOOLS_TRACE_DISABLED set; the Lambda variables are set here,
before Powertools is imported (the X-Ray SDK picks its Lambda context at import)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.update({
    "LAMBDA_TASK_ROOT": str(Path(__file__).resolve().parent),
    "AWS_LAMBDA_FUNCTION_NAME": "observed",
    "POWERTOOLS_SERVICE_NAME": "observed",
    "POWERTOOLS_METRICS_NAMESPACE": "Test/Observed",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
})

from aws_lambda_powertools import Logger, Metrics, Tracer

from shared import observability, runtime
from tests.support.lambda_context import FakeLambdaContext

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@runtime.after_restore
def refresh_connection() -> None:
    time.sleep(0.02)


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("invoked")
    return {"ok": True}


def invoke() -> None:
    os.environ["_X_AMZN_TRACE_ID"] = (
        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1"
    )
    context: Any = FakeLambdaContext()
    assert handler({}, context) == {"ok": True}


if __name__ == "__main__":
    invoke()
    invoke()
    runtime.run_after_restore_hooks()
    invoke()
    invoke()
