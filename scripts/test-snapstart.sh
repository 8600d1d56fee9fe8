#!/usr/bin/env bash
# Opt-in test tier: SnapStart safety with a real checkpoint/restore of Python processes (CRIU).
# Builds CRIU into .tools/criu when it is missing (scripts/build-criu.sh, a few minutes the first
# time), then runs every test marked `criu`: each function host is initialized, checkpointed,
# and restored twice as two execution environments. Called by `scripts/test.sh --with-snapstart`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

usage() {
  cat <<EOF
Usage: scripts/test-snapstart.sh [--no-build] [--mirror URL] [--pytest-args "ARGS"] [--help]

Runs the CRIU tier of the tests (pytest -m criu). Needs root and Linux x86_64; the first run
builds CRIU from Debian trixie's source package (needs apt and network access to the machine's
configured Debian mirror; scripts/build-criu.sh).

  --no-build          do not build CRIU; fail if it is not installed
  --mirror URL        Debian mirror for the CRIU build (default: the machine's configured Debian
                      mirror, from its apt sources)
  --pytest-args ARGS  extra arguments for pytest (e.g. "-k good -x")
  --help              show this help
EOF
}

BUILD=1
PYTEST_ARGS=""
BUILD_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --mirror) need_value "$1" "$#" "${2-}" "a URL"; check_arg http_url "$1" "$2"; BUILD_ARGS=(--mirror "$2"); shift ;;
    --pytest-args) need_arg "$1" "$#"; PYTEST_ARGS="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

[[ "$(id -u)" -eq 0 ]] || die "checkpoint/restore needs root"
command -v unshare >/dev/null || die "unshare (util-linux) not found: each restore needs its own PID namespace"
[[ -x "$ROOT/.venv/bin/pytest" ]] || die "$ROOT/.venv is missing: run scripts/setup.sh first"

if [[ $BUILD -eq 1 ]]; then
  "$ROOT/scripts/build-criu.sh" "${BUILD_ARGS[@]}"
fi
"$ROOT/scripts/build-criu.sh" --check || die "CRIU is not usable here (run scripts/build-criu.sh)"

args=()
if [[ -n "$PYTEST_ARGS" ]]; then read -r -a args <<<"$PYTEST_ARGS"; fi
cd "$ROOT"
rc=0
"$ROOT/.venv/bin/pytest" -m criu -p no:cacheprovider "${args[@]}" || rc=$?
# pytest exit 5 = no tests collected: the tier proved nothing, which is a failure.
if [[ $rc -eq 5 ]]; then die "pytest collected no criu tests"; fi
exit "$rc"
