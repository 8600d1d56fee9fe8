#!/usr/bin/env bash
# Runs every use case's whole pipeline on this machine, no AWS account (see docs/local-runner.md).
#   --engine embedded  moto's Step Functions engine + the real handlers in-process (default)
#   --engine sam       every function through `sam local invoke` (local/sam_engine.py)
#   --engine auto      sam when a container engine answers, else embedded
# Every option is passed to `python -m local`, the one entry point for local runs; `--help` lists them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
PY="$ROOT/.venv/bin/python"

usage() {
  cat <<USAGE
Usage: scripts/local-test.sh [--uc NAME]... [--engine embedded|sam|auto] [--objects N]
                             [--keep DIR] [--json] [--fault SPEC]... [--help]

Runs each use case's whole pipeline locally and prints one row per use case: status, states
executed, items processed and failed, duration and where the outputs are. Exits non-zero when
any pipeline fails.

  --uc NAME        use case to run: folder, events name or number (semiconductor-eda,
                   uc06-semiconductor-eda, uc6); repeatable; default: every */template-deploy.yaml
  --engine E       embedded (default), sam, or auto (sam when a container engine answers)
  --objects N      sample objects per use case (the sam engine takes at most 10,000)
  --keep DIR       keep outputs, logs and run.json under DIR/<uc>/<execution name>/
  --json           machine-readable results on stdout
  --fault SPEC     inject a fault (embedded engine), e.g. s3:GetObject=transient,times=3
  --help           this help; the engine's own --help lists every option
USAGE
}

engine="embedded"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --engine) need_value "$1" "$#" "${2-}" "a value (embedded|sam|auto)"; engine="$2"; shift 2 ;;
    --engine=*) engine="${1#--engine=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$engine" in
  embedded | sam | auto) ;;
  *) usage_error "unknown engine '$engine' (expected embedded, sam or auto)" ;;
esac

if [[ ! -x "$PY" ]]; then
  "$ROOT/scripts/setup.sh" --quiet
fi
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# One entry point for every engine (python -m local): auto picks sam when a container engine answers.
exec "$PY" -m local --engine "$engine" "${args[@]}"
