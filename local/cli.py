"""``python -m local.cli``: run use-case pipelines end to end on this machine (scripts/local-test.sh).

Exit status: 0 when every selected pipeline SUCCEEDED with one result per input object; 1 when
any failed; 2 for a usage error (unknown option, use case or fault specification).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from local.hard_exit import hard_exit
from local.run_arguments import add_run_arguments
from local.runner.paths import DEFAULT_OBJECTS, REPO_ROOT
from local.usecase_names import UseCaseError, folders, select

if TYPE_CHECKING:
    from local.runner.run import RunResult

USAGE_ERROR = 2


def build_parser(use_cases: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/local-test.sh",
        description=(
            "Run every use case's whole pipeline on this machine: emulated AWS (moto), the real "
            "state machine definitions on moto's Step Functions engine, the real Lambda handlers "
            "in-process, sample data from local/samples/. No AWS account is used."
        ),
        epilog=f"Use cases found: {', '.join(use_cases) or '(none)'}. See docs/local-runner.md.",
    )
    add_run_arguments(
        parser,
        default_objects=DEFAULT_OBJECTS,
        max_objects=None,
        keep_help="write outputs, logs and run.json under DIR/<uc>/<execution name>/",
        json_help="print one JSON document with every result (progress goes to stderr)",
    )
    parser.add_argument(
        "--engine",
        choices=["embedded", "sam", "auto"],
        default="embedded",
        help="embedded runs in-process (this program); sam and auto are dispatched by local-test.sh",
    )
    parser.add_argument("--seed", type=int, default=0, help="sample data seed (default 0)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault: SERVICE:OPERATION=transient|permanent|slow[,times=N][,code=C][,seconds=S][,match=TEXT]",
    )
    parser.add_argument(
        "--parameter", action="append", default=[], metavar="KEY=VALUE", help="template parameter override (repeatable)"
    )
    parser.add_argument(
        "--retry-time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply Step Functions Retry waits by F (default 1: as long as AWS would wait)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-state progress")
    return parser


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    present = folders(REPO_ROOT)
    parser = build_parser([uc.name for uc in present])
    args = parser.parse_args(argv)
    if args.engine == "sam":
        err.write("local.cli runs the embedded engine; --engine sam and auto are handled by python -m local\n")
        return USAGE_ERROR
    try:
        chosen = select(present, args.uc)
    except UseCaseError as e:
        err.write(f"local-test: {e}\n")
        return USAGE_ERROR
    if not chosen:
        err.write("local-test: no use case found (no */template-deploy.yaml)\n")
        return USAGE_ERROR
    known = {uc.name: uc.directory for uc in chosen}
    selected = list(known)
    # The runner (moto, boto3) is imported only now: --help and the usage
    # errors above answer without it, at once.
    from local.faults import Fault, FaultSpecError  # noqa: PLC0415
    from local.runner.run import RunOptions, RunResult, check_parameters, run_use_case  # noqa: PLC0415
    from local.runner.stack import TemplateError  # noqa: PLC0415
    from local.template import ParameterError  # noqa: PLC0415

    try:
        for spec in args.fault:
            Fault.parse(spec)  # validated up front; each use case gets fresh fault counters below
    except FaultSpecError as e:
        err.write(f"local-test: {e}\n")
        return USAGE_ERROR
    if not math.isfinite(args.retry_time_scale) or args.retry_time_scale < 0:
        err.write(f"local-test: --retry-time-scale must be a finite number >= 0, got {args.retry_time_scale}\n")
        return USAGE_ERROR
    parameters = {}
    for item in args.parameter:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err.write(f"local-test: --parameter expects KEY=VALUE, got {item!r}\n")
            return USAGE_ERROR
        parameters[key] = value
    # CloudFormation refuses a stack whose parameters break a constraint or a Rule before it
    # creates anything; so does every run here, before any use case starts.
    for name in selected:
        try:
            check_parameters(known[name], parameters)
        except ParameterError as e:
            for message in e.messages:
                err.write(f"local-test: {name}: ValidationError: {message}\n")
            return USAGE_ERROR

    # Emulator and engine chatter (moto's interpreter logs handled errors) stays out of the report.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    progress_stream = err if args.json else out

    def progress(line: str) -> None:
        if not args.quiet:
            progress_stream.write(line + "\n")
            progress_stream.flush()

    results: list[RunResult] = []
    for name in selected:
        options = RunOptions(
            objects=args.objects,
            seed=args.seed,
            faults=[Fault.parse(spec) for spec in args.fault],
            parameters=parameters,
            keep=args.keep.resolve() if args.keep else None,
            retry_time_scale=args.retry_time_scale,
            progress=progress,
        )
        started = time.monotonic()
        try:
            result = run_use_case(known[name], options)
        except TemplateError as e:
            result = RunResult(use_case=name, status="ERROR", error="TemplateError", cause=str(e))
            result.duration_s = round(time.monotonic() - started, 3)
        except Exception as e:  # noqa: BLE001 - one broken use case must not hide the others' results
            result = RunResult(use_case=name, status="ERROR", error=type(e).__name__, cause=str(e))
            result.duration_s = round(time.monotonic() - started, 3)
        results.append(result)

    # A fault that no call matched in any use case tested nothing: the command fails (exit 1)
    # and says which, even when every pipeline succeeded.
    fired = {(str(f["fault"]), f["match"]) for r in results for f in r.faults if f.get("hits")}
    unfired = [spec for spec in args.fault if (Fault.parse(spec).name, Fault.parse(spec).match) not in fired]
    for spec in unfired:
        err.write(f"local-test: fault never fired (no call matched it): {spec}\n")

    if args.json:
        out.write(
            json.dumps(
                {
                    "ok": all(r.ok for r in results) and not unfired,
                    "unfired_faults": unfired,
                    "results": [r.to_dict() for r in results],
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
    else:
        out.write(render_table(results))
    return 0 if all(r.ok for r in results) and not unfired else 1


def render_table(results: list[RunResult]) -> str:
    from local.runner.run import short_cause  # noqa: PLC0415 - imported by main() already

    header = ("use case", "status", "states", "items", "failed", "lost", "duration", "outputs")
    rows = [
        (
            r.use_case,
            r.status if r.ok or r.status != "SUCCEEDED" else "INCOMPLETE",
            str(r.states_executed),
            str(r.items_total),
            str(r.items_failed),
            str(len(r.unaccounted)),
            f"{r.duration_s:.1f}s",
            r.outputs or "-",
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["", "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for r in results:
        if r.error:
            lines.append(f"{r.use_case}: {r.error}: {short_cause(r.cause)}")
        if r.output is not None and r.status == "SUCCEEDED":
            # The state machine's own output (a use case says there what it did, e.g. which
            # inference path served the run), compact and cut to one line.
            text = json.dumps(r.output, separators=(",", ":"), ensure_ascii=False, default=str)
            lines.append(f"{r.use_case}: output: {text[:300]}{'...' if len(text) > 300 else ''}")
        emulated = ", ".join(f"{k}: {v} call(s)" for k, v in r.emulated.items() if v)
        if emulated:
            lines.append(f"{r.use_case}: emulated services (not AWS): {emulated}")
        if r.findings or r.expected_findings:
            by_rule = Counter(f[0] for f in r.findings)
            verdict = (
                "as the samples expect"
                if r.findings_match
                else f"MISMATCH: the samples expect {len(r.expected_findings)}"
            )
            counts = ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items()))
            lines.append(f"{r.use_case}: findings: {len(r.findings)} ({counts}) - {verdict}")
            lines += [f"  {rule:<28} {principal:<48} {key}" for rule, key, principal in sorted(r.findings)[:40]]
            if len(r.findings) > 40:
                lines.append(f"  ... {len(r.findings) - 40} more in reports/<execution>/findings.json")
        if r.unaccounted:
            lines.append(f"{r.use_case}: input objects without a result record: {', '.join(r.unaccounted[:10])}")
        if not r.ok and r.log_file:
            lines.append(f"{r.use_case}: Lambda logs: {r.log_file}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    hard_exit(main())
