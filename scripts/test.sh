#!/usr/bin/env bash
# The project's test command (README): every static check and every test layer that runs
# without an AWS account. Runs all selected stages even after a failure, prints a summary and
# exits non-zero if any stage failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
cd "$ROOT"

# In launch order: the static stages run side by side (the longest first), beside pytest.
ALL_STAGES=(mypy peer shellcheck cfn-lint guard asl ruff pytest)

usage() {
  cat <<EOF
Usage: scripts/test.sh [--only STAGE[,STAGE...]] [--skip STAGE[,STAGE...]] [--with-sam]
                       [--with-snapstart] [--workers N] [--pytest-args "ARGS"] [--help]

Runs scripts/setup.sh (installs only what changed), then these stages. The static ones (all but
pytest) run side by side, as many at once as there are cores, beside pytest; pytest's output is
printed as it runs, each static stage's whole once pytest and all of them have ended.
  mypy        strict mypy over shared/, local/, tests/, benchmarks/ and each function folder
  peer        AWS Control Tower proactive controls (cfn-guard) and checkov over every
              */template-deploy.yaml and the hook template: any unsuppressed finding, any
              suppression without a reason, or a README suppression table out of date fails
  shellcheck  every bash script (scripts/*.sh, .ci/run)
  cfn-lint    every CloudFormation template; any error OR warning fails
  guard       scripts/guard-check.sh: cfn-guard rule unit tests + every template against every rule
  asl         asl-validator over every state machine definition, extracted from the templates
              with DefinitionSubstitutions resolved, for default and opt-in parameters
  ruff        ruff check over all Python
  pytest      all test layers except the opt-in tiers (markers sam, criu); no tests = failure;
              the project's modules are compiled first (compileall), not again in every process;
              in parallel workers (pytest-xdist), one per core and one more (the tests wait
              on processes and timeouts part of the time) unless --workers says otherwise;
              ends with the ten slowest tests

Opt-in tiers (slow, need extra system tools; see README):
  --with-sam        scripts/test-sam.sh: sam local invoke of every function in a Lambda container
  --with-snapstart  scripts/test-snapstart.sh: real checkpoint/restore with CRIU

  --only LIST         run only these stages (comma-separated)
  --skip LIST         skip these stages
  --workers N         pytest-xdist workers (default: TEST_WORKERS, else the core count + 1);
                      0 runs every test in this one process
  --pytest-args ARGS  extra arguments for pytest (e.g. "-k routing -x")
  --help              show this help

Environment: TEST_WORKERS  as --workers
             TEST_TMPDIR   folder for the run's scratch files (the tests' tmp_path and TMPDIR,
                           removed at the end); default /dev/shm when it is a memory file system
                           with 2 GiB free, else TMPDIR or /tmp
EOF
}

contains() { local needle="$1"; shift; local item; for item in "$@"; do [[ "$item" == "$needle" ]] && return 0; done; return 1; }

# split_list ARRAY OPTION LIST: the comma-separated stage names of LIST into ARRAY; an unknown
# name is a usage error (in this shell, so that it really stops the command).
split_list() {
  local -n into="$1"
  local option="$2" item items=()
  IFS=',' read -r -a items <<<"$3"
  into=()
  for item in "${items[@]}"; do
    [[ -n "$item" ]] || continue
    contains "$item" "${ALL_STAGES[@]}" || usage_error "$option: unknown stage '$item' (stages: ${ALL_STAGES[*]})"
    into+=("$item")
  done
  [[ ${#into[@]} -gt 0 ]] || usage_error "$option needs a value"
}

ONLY=()
SKIP=()
WITH_SAM=0
WITH_SNAPSTART=0
PYTEST_ARGS=""
WORKERS="${TEST_WORKERS:-}"
WORKERS_FROM="TEST_WORKERS"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --only) need_value "$1" "$#" "${2-}"; split_list ONLY "$1" "$2"; shift ;;
    --skip) need_value "$1" "$#" "${2-}"; split_list SKIP "$1" "$2"; shift ;;
    --with-sam) WITH_SAM=1 ;;
    --with-snapstart) WITH_SNAPSTART=1 ;;
    --workers) need_value "$1" "$#" "${2-}"; WORKERS="$2"; WORKERS_FROM="--workers"; shift ;;
    --pytest-args) need_arg "$1" "$#"; PYTEST_ARGS="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

if [[ -z "$WORKERS" ]]; then WORKERS="$(($(nproc) + 1))"
elif [[ ! "$WORKERS" =~ ^(0|[1-9][0-9]{0,2})$ ]]; then
  usage_error "$WORKERS_FROM must be a whole number of workers (0 = no workers), got '$WORKERS'"
fi

# scratch_base: where this run's scratch folder goes. TEST_TMPDIR when set; else /dev/shm when it is
# a memory file system with room for the pytest stage (it peaked at 320 MB, sampled every 2 s:
# the unzipped layers, the AWS CLI's archives, copies of the tree); else TMPDIR or /tmp. The tests
# create and delete tens of thousands of files, which costs the kernel far more on a disk file
# system (the packaging, deploy and README-command modules: 25-31 s -> 15.5 s of system time).
SCRATCH_MIN_KB=$((2 * 1024 * 1024))
scratch_base() {
  if [[ -n "${TEST_TMPDIR:-}" ]]; then
    [[ -d "$TEST_TMPDIR" && -w "$TEST_TMPDIR" ]] || usage_error "TEST_TMPDIR '$TEST_TMPDIR' is not a writable folder"
    echo "$TEST_TMPDIR"
  elif [[ -d /dev/shm && -w /dev/shm && "$(stat -f -c %T /dev/shm 2>/dev/null)" == tmpfs ]] &&
    (( $(df -Pk /dev/shm | awk 'NR == 2 { print $4 }') >= SCRATCH_MIN_KB )); then
    echo /dev/shm
  else
    echo "${TMPDIR:-/tmp}"
  fi
}

SCRATCH_BASE="$(scratch_base)"  # a bad TEST_TMPDIR stops the command before any stage

selected() {
  local stage="$1"
  if [[ ${#ONLY[@]} -gt 0 ]] && ! contains "$stage" "${ONLY[@]}"; then return 1; fi
  if [[ ${#SKIP[@]} -gt 0 ]] && contains "$stage" "${SKIP[@]}"; then return 1; fi
  return 0
}

"$ROOT/scripts/setup.sh" --quiet

export PATH="$ROOT/.tools/bin:$ROOT/.venv/bin:$PATH"
PY="$ROOT/.venv/bin/python"

# Templates of the stacks users deploy; fixtures under tests/ are test data, not stacks.
mapfile -t TEMPLATES < <(git ls-files --cached --others --exclude-standard '*template*.yaml' '*template*.yml' ':!:tests/**')
mapfile -t SHELL_SCRIPTS < <(git ls-files --cached --others --exclude-standard '*.sh' '.ci/run')
mapfile -t FUNCTION_DIRS < <(git ls-files --cached --others --exclude-standard '*/functions/*/handler.py' | xargs -r -n1 dirname | sort -u)
mapfile -t PY_PACKAGES < <(for d in shared local tests benchmarks; do
  [[ -n "$(git ls-files --cached --others --exclude-standard "$d/*.py")" ]] && echo "$d"; done)
# Every top-level folder holding Python: what the pytest stage compiles before the tests start.
mapfile -t PY_DIRS < <(git ls-files --cached --others --exclude-standard '*/*.py' | cut -d/ -f1 | sort -u)

stage_ruff() { ruff check --no-cache .; }

stage_mypy() {
  mypy "${PY_PACKAGES[@]}"
  # Each function folder is its own top-level module set (every one has a handler.py).
  local dir
  for dir in "${FUNCTION_DIRS[@]}"; do
    echo "mypy $dir"
    MYPYPATH="$ROOT" mypy "$dir"
  done
}

stage_shellcheck() {
  [[ ${#SHELL_SCRIPTS[@]} -gt 0 ]] || { log "no shell scripts found"; return 1; }
  shellcheck --severity=style --external-sources "${SHELL_SCRIPTS[@]}"
  echo "shellcheck: ${#SHELL_SCRIPTS[@]} scripts clean"
}

stage_cfn_lint() {
  if [[ ${#TEMPLATES[@]} -eq 0 ]]; then echo "no templates yet"; return 0; fi
  local rc=0
  cfn-lint --format parseable -- "${TEMPLATES[@]}" || rc=$?
  # cfn-lint exit code bits: 2 errors, 4 warnings, 8 informational; 1 = could not run.
  if (( rc & 7 )); then log "cfn-lint: errors or warnings (exit $rc)"; return 1; fi
  echo "cfn-lint: ${#TEMPLATES[@]} templates, zero errors and zero warnings"
}

stage_asl() {
  local out="$ROOT/.build/asl"
  rm -rf "$out"
  mkdir -p "$out"
  "$PY" -m tests.support.extract_asl "$out"
  local files=("$out"/*.json) file count=0
  [[ -e "${files[0]}" ]] || { echo "no state machines yet"; return 0; }
  for file in "${files[@]}"; do
    asl-validator --silent --json-path "$file" || { log "asl-validator: $file is invalid"; return 1; }
    count=$((count + 1))
  done
  echo "asl-validator: $count definitions valid"
}

stage_guard() { "$ROOT/scripts/guard-check.sh"; }

stage_peer() {
  "$PY" -m local.peer_check check
  "$PY" -m local.peer_check suppressions --check "$ROOT/README.md"
}

stage_pytest() {
  local rc=0 args=()
  if [[ -n "$PYTEST_ARGS" ]]; then read -r -a args <<<"$PYTEST_ARGS"; fi
  # --dist loadscope: all tests of a module (of a class, for methods) run on one worker, so a
  # module-scoped fixture (the manifest memory measurement, a decoded template) is built once,
  # not once per worker that happens to receive one of its tests. -n 0: no workers, one process.
  # The project's modules compiled once, up front and on every core, beside their sources
  # (__pycache__, as Python itself writes them): the tests start hundreds of Python processes at
  # once, which would otherwise each compile what they import until one had written it, and never
  # write it at all where PYTHONDONTWRITEBYTECODE reaches them (35 s of CPU with it set).
  if [[ ${#PY_DIRS[@]} -gt 0 ]]; then "$PY" -m compileall -q -j 0 "${PY_DIRS[@]}"; fi
  local parallel=(-n "$WORKERS")
  # --no-loadscope-reorder: modules go to the workers in collection order, which tests/conftest.py
  # sets (the longest layers first), not sorted by their number of tests (xdist's default, which
  # handed the minute-long AWS CLI packaging module, 6 tests, out last: 25 s with one worker left).
  if [[ "$WORKERS" != 0 ]]; then parallel+=(--dist loadscope --no-loadscope-reorder); fi
  # --durations: the ten slowest tests end every run, so a test that turns slow is seen.
  # Without PYTHONDONTWRITEBYTECODE, pytest keeps each test module's assertion-rewritten bytecode
  # in __pycache__ too: with it set, every worker parses and rewrites all the test modules again
  # (collection 7.3 s -> 3.6 s a worker, measured with --collect-only).
  # Every temporary file of the tests and of the processes they start (tmp_path, mktemp, the AWS
  # CLI's archives) goes to this run's scratch folder, removed when the command ends.
  mkdir -p "$WORK/tmp"
  env -u PYTHONDONTWRITEBYTECODE TMPDIR="$WORK/tmp" \
    pytest -m "not sam and not criu" -p no:cacheprovider --durations=10 --basetemp "$WORK/pytest" \
    "${parallel[@]}" "${args[@]}" || rc=$?
  # pytest exit 5 = no tests collected: that is a failure, never a pass.
  if [[ $rc -eq 5 ]]; then log "pytest collected no tests"; return 1; fi
  return "$rc"
}

declare -a RESULTS=()
FAILED=0
# record_result NAME SECONDS RC: one summary line; a non-zero RC fails the command.
record_result() {
  if [[ $3 -eq 0 ]]; then RESULTS+=("$(printf '%-12s PASS %4ss' "$1" "$2")")
  else RESULTS+=("$(printf '%-12s FAIL %4ss (exit %s)' "$1" "$2" "$3")"); FAILED=1; fi
}

# timed_stage FN RESULT_FILE: runs FN with errexit really in effect (a subshell outside any ||
# list) and writes "SECONDS RC" to RESULT_FILE; its own exit status is always 0.
timed_stage() {
  local fn="$1" result="$2" start rc=0
  start=$(date +%s)
  set +e
  (set -e; "$fn")
  rc=$?
  set -e
  echo "$(($(date +%s) - start)) $rc" >"$result"
}

run_stage() {
  local name="$1" fn="$2" seconds rc
  echo
  echo "=== $name ==="
  timed_stage "$fn" "$WORK/$name.result"
  read -r seconds rc <"$WORK/$name.result"
  record_result "$name" "$seconds" "$rc"
}

# start_side_by_side STAGE...: the stages as background jobs, at most one per core at a time,
# each one's output kept in WORK; finish_side_by_side prints each one's output and records its
# result, in the order given, once they have all ended.
SIDE_BY_SIDE=()
SIDE_BY_SIDE_PID=""
start_side_by_side() {
  SIDE_BY_SIDE=("$@")
  (
    for name in "$@"; do
      while [[ $(jobs -rp | wc -l) -ge $(nproc) ]]; do wait -n; done
      timed_stage "stage_${name//-/_}" "$WORK/$name.result" >"$WORK/$name.out" 2>&1 &
    done
    wait
  ) &
  SIDE_BY_SIDE_PID=$!
}

finish_side_by_side() {
  local name seconds rc
  wait "$SIDE_BY_SIDE_PID"
  for name in "${SIDE_BY_SIDE[@]}"; do
    echo
    echo "=== $name ==="
    cat "$WORK/$name.out"
    read -r seconds rc <"$WORK/$name.result"
    record_result "$name" "$seconds" "$rc"
  done
}

WORK="$(mktemp -d "$SCRATCH_BASE/test-sh.XXXXXX")"
# The scratch folder goes when the command ends, except the tmp_path folders of failed tests
# (pytest removes a passing test's own: tmp_path_retention_policy), kept to look at.
cleanup() {
  if [[ -n "$(ls -A "$WORK/pytest" 2>/dev/null)" && "$(cat "$WORK/pytest.result" 2>/dev/null)" != *" 0" ]]; then
    rm -rf "$WORK/tmp"
    log "the failed tests' tmp_path folders are kept in $WORK/pytest"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
STATIC=()
for stage in "${ALL_STAGES[@]}"; do
  if [[ "$stage" != pytest ]] && selected "$stage"; then STATIC+=("$stage"); fi
done
# The static stages run beside pytest, not before it: pytest's workers leave part of the two
# cores idle while they wait on the processes their tests start, and the static stages fill it
# (measured: 188 s beside, 200 s one after the other). pytest's output comes as it runs, theirs
# once pytest has ended; the summary lists the stages in launch order.
if [[ ${#STATIC[@]} -gt 0 ]]; then
  echo
  echo "=== ${STATIC[*]} (side by side, $(nproc) at a time$(selected pytest && echo ", beside pytest")) ==="
  start_side_by_side "${STATIC[@]}"
fi
if selected pytest; then
  echo
  echo "=== pytest ==="
  timed_stage stage_pytest "$WORK/pytest.result"
fi
if [[ ${#STATIC[@]} -gt 0 ]]; then finish_side_by_side; fi
if selected pytest; then
  read -r seconds rc <"$WORK/pytest.result"
  record_result pytest "$seconds" "$rc"
fi
if [[ $WITH_SAM -eq 1 ]]; then run_stage "sam-tier" "$ROOT/scripts/test-sam.sh"; fi
if [[ $WITH_SNAPSTART -eq 1 ]]; then run_stage "criu-tier" "$ROOT/scripts/test-snapstart.sh"; fi

echo
echo "=== summary ==="
printf '%s\n' "${RESULTS[@]}"
if [[ $FAILED -ne 0 ]]; then echo "RESULT: FAILED"; exit 1; fi
echo "RESULT: PASSED"
