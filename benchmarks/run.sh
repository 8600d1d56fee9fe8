#!/usr/bin/env bash
# Runs every benchmark; each prints its table and writes JSON under benchmarks/results/.
# Measurements, not tests: a benchmark fails only when what it measures fails to run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/../scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
cd "$ROOT"

usage() {
  cat <<EOF
Usage: benchmarks/run.sh [--quick] [--only NAME[,NAME...]] [--help]

Runs these benchmarks (writing benchmarks/results/NAME.json), then regenerates the README's
Performance section from the JSON (python -m benchmarks.readme):
  discovery  access-point listing into a JSONL manifest, 10 k / 100 k / 1 M objects: objects/s, peak RSS
  parsers    UC6 GDSII/OASIS readers next to gdstk on the same files: MB/s, peak RSS, agreement
  sensors    UC9 MP4 key frame, PCD and LAS readers (ranged reads) next to the whole-file approach,
             1 / 10 / 100 MB files: time, peak RSS, bytes read, agreement
  handlers   init, first and warm invocation of every function the CRIU tier covers in a fresh
             python3.13 process, and restore to first response from a CRIU checkpoint
             (benchmarks/snapstart_bench.py; the restore columns need root and
             scripts/build-criu.sh, without them they show n/a and say why)
  payload    largest state payload of a local run per use case at 100 and 100,000 objects, and
             where an inline Map would hit the 256 KiB limit (100,000 objects through the local
             runner take hours on 2 cores)
  pipelines  local wall time per use case at the default size (40) and at 10,000 objects

  --quick       smaller sizes (payload 100 / 1,000 objects, pipelines 40 / 400, sensors 1 / 32 MB,
                2 runs of each handler): about 20 minutes on 2 busy shared cores
  --only LIST   run only these benchmarks (comma-separated)
  --help        show this help
EOF
}

ALL=(discovery parsers sensors handlers payload pipelines)
QUICK=0
ONLY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --only) need_value "$1" "$#" "${2-}"; ONLY="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

SELECTED=()
if [[ -n "$ONLY" ]]; then
  IFS=',' read -r -a names <<<"$ONLY"
  for name in "${names[@]}"; do
    [[ -n "$name" ]] || continue
    [[ " ${ALL[*]} " == *" $name "* ]] || usage_error "--only: unknown benchmark '$name' (benchmarks: ${ALL[*]})"
    SELECTED+=("$name")
  done
  [[ ${#SELECTED[@]} -gt 0 ]] || usage_error "--only needs a value"
else
  SELECTED=("${ALL[@]}")
fi

PY="$ROOT/.venv/bin/python"
RESULTS="$ROOT/benchmarks/results"
mkdir -p "$RESULTS"
quick=()
if [[ $QUICK -eq 1 ]]; then quick=(--quick); fi

bench_discovery() { "$PY" -m benchmarks.discovery_bench "${quick[@]}"; }
bench_parsers() { "$PY" -m benchmarks.parsers_bench "${quick[@]}"; }
bench_sensors() { "$PY" -m benchmarks.sensors_bench "${quick[@]}"; }
bench_handlers() {
  local runs=5
  if [[ $QUICK -eq 1 ]]; then runs=2; fi
  "$PY" -m benchmarks.snapstart_bench --runs "$runs" --warm "$runs" --out "$RESULTS/handlers.json"
}
bench_payload() { "$PY" -m benchmarks.payload_bench "${quick[@]}"; }
bench_pipelines() { "$PY" -m benchmarks.pipelines_bench "${quick[@]}"; }

FAILED=()
for name in "${SELECTED[@]}"; do
  echo "=== $name ==="
  if ! "bench_$name"; then FAILED+=("$name"); log "benchmark $name failed"; fi
done
"$PY" -m benchmarks.readme --write
if [[ ${#FAILED[@]} -gt 0 ]]; then die "failed: ${FAILED[*]}"; fi
