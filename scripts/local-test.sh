#!/usr/bin/env bash
# Runs every use case's whole pipeline on this machine, no AWS account (see docs/local-runner.md).
#   --engine embedded  moto's Step Functions engine + the real handlers in-process (default)
#   --engine sam       every function through `sam local invoke` (python -m local.sam_engine)
#   --engine auto      sam when a container engine answers, else embedded
# Every other option is passed to the engine; `--help` lists them.
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

  --uc NAME        use case directory to run (repeatable; default: every */template-deploy.yaml)
  --engine E       embedded (default), sam, or auto (sam when a container engine answers)
  --objects N      sample objects per use case
  --keep DIR       keep outputs, logs and run.json under DIR/<uc>/
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

if [[ "$engine" == "auto" ]]; then
  engine="embedded"
  if [[ -f "$ROOT/local/sam_engine.py" ]] && "$PY" -m local.sam_engine --probe >/dev/null 2>&1; then
    engine="sam"
  fi
fi
if [[ "$engine" == "sam" ]]; then
  [[ -f "$ROOT/local/sam_engine.py" ]] || die "the sam engine (local/sam_engine.py) is not available"
  exec "$PY" -m local.sam_engine "${args[@]}"
fi
exec "$PY" -m local.cli "${args[@]}"
