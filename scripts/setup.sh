#!/usr/bin/env bash
# Installs everything the project needs for local runs and tests, pinned:
#   .venv/          Python 3.13 virtual environment (requirements-dev.txt, constrained by requirements-lock.txt)
#   .tools/npm/     cfn-guard 3.x (official static binary from @cdklabs/cdk-validator-cfnguard) and asl-validator
#   .tools/bin/     cfn-guard, asl-validator and shellcheck on one PATH entry
#   .tools/awscli-venv/  the AWS CLI the build tests run (requirements-awscli.txt; its own venv: awscli v1
#                   vendors its own botocore, and AWS CLI v2 is not on PyPI)
#   .tools/checkov-venv/  checkov for the peer stage (requirements-checkov.txt; its own venv because
#                   checkov pins a boto3 that clashes with ours)
# Idempotent: a stamp of the pinned inputs is kept per component and a rerun with unchanged
# pins installs nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools"

# Pinned cfn-guard binary inside the npm package (version in tools/package.json).
CFN_GUARD_VERSION="3.1.1"
CFN_GUARD_SHA256_X86_64="9c7a820318676dc7372f6756ddfc7ca5f0c019299fb5505fda6dfd54718c58bd"

usage() {
  cat <<EOF
Usage: scripts/setup.sh [--force] [--quiet] [--help]

Creates .venv (Python 3.13) and installs pinned Python dependencies and tools into .tools/.
Safe to run repeatedly: it only installs what changed since the last run.

  --force   reinstall everything even when the stamps say it is up to date
  --quiet   print only errors
  --help    show this help
EOF
}

FORCE=0
QUIET=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) FORCE=1 ;;
    --quiet) QUIET=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

find_python() {
  local candidate
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.13.*/bin/python3.13; do
      [[ -x "$candidate" ]] && { echo "$candidate"; return 0; }
    done
  fi
  if command -v python3.13 >/dev/null 2>&1; then
    command -v python3.13
    return 0
  fi
  return 1
}

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# --- Python virtual environment -------------------------------------------------------------
PY_STAMP_FILE="$VENV/.setup-stamp"
py_stamp="$(stamp_of "$ROOT/requirements-runtime.txt" "$ROOT/requirements-media.txt" "$ROOT/requirements-dev.txt" "$ROOT/requirements-lock.txt")"
if [[ $FORCE -eq 0 && -f "$PY_STAMP_FILE" && "$(cat "$PY_STAMP_FILE")" == "$py_stamp" && -x "$VENV/bin/python" ]]; then
  log "python venv up to date"
else
  PYTHON="$(find_python)" || die "Python 3.13 not found: install it with pyenv (pyenv install 3.13) or put python3.13 on PATH"
  log "creating venv with $PYTHON"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 13), sys.version' \
    || die "$VENV is not a Python 3.13 venv; remove it and rerun"
  log "installing pinned Python dependencies"
  pip_quiet=(-q)
  "$VENV/bin/python" -m pip install "${pip_quiet[@]}" --disable-pip-version-check \
    -r "$ROOT/requirements-dev.txt" -c "$ROOT/requirements-lock.txt" \
    || die "pip install failed"
  echo "$py_stamp" >"$PY_STAMP_FILE"
fi

# --- npm tools: cfn-guard and asl-validator ---------------------------------------------------
command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 20+ (apt-get install nodejs npm)"
NPM_DIR="$TOOLS/npm"
NPM_STAMP_FILE="$NPM_DIR/.setup-stamp"
npm_stamp="$(stamp_of "$ROOT/tools/package.json" "$ROOT/tools/package-lock.json")"
if [[ $FORCE -eq 0 && -f "$NPM_STAMP_FILE" && "$(cat "$NPM_STAMP_FILE")" == "$npm_stamp" ]]; then
  log "npm tools up to date"
else
  log "installing pinned npm tools"
  mkdir -p "$NPM_DIR"
  cp "$ROOT/tools/package.json" "$ROOT/tools/package-lock.json" "$NPM_DIR/"
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null) \
    || die "npm ci failed in $NPM_DIR"
  echo "$npm_stamp" >"$NPM_STAMP_FILE"
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) guard_bin="$NPM_DIR/node_modules/@cdklabs/cdk-validator-cfnguard/bin/ubuntu/x86_64/cfn-guard"
    guard_sha="$CFN_GUARD_SHA256_X86_64" ;;
  *) die "no pinned cfn-guard binary for $(uname -s)-$(uname -m)" ;;
esac
[[ -x "$guard_bin" ]] || die "cfn-guard binary missing at $guard_bin"
actual_sha="$(sha256sum "$guard_bin" | cut -d' ' -f1)"
[[ "$actual_sha" == "$guard_sha" ]] || die "cfn-guard sha256 mismatch: expected $guard_sha, got $actual_sha"
guard_version="$("$guard_bin" --version | awk '{print $2}')"
[[ "$guard_version" == "$CFN_GUARD_VERSION" ]] || die "cfn-guard version $guard_version, expected $CFN_GUARD_VERSION"

# Relative links, so the tree keeps working when it is moved or reached through a symlink.
mkdir -p "$TOOLS/bin"
ln -sfn "../npm/${guard_bin#"$NPM_DIR/"}" "$TOOLS/bin/cfn-guard"
ln -sfn ../npm/node_modules/.bin/asl-validator "$TOOLS/bin/asl-validator"
ln -sfn ../../.venv/bin/shellcheck "$TOOLS/bin/shellcheck"
"$TOOLS/bin/shellcheck" --version >/dev/null || die "shellcheck does not run"
"$TOOLS/bin/asl-validator" --version >/dev/null || die "asl-validator does not run"

# --- tools with dependencies of their own, each in its own venv -----------------------------------
# tool_venv DIR REQUIREMENTS BINARY: DIR is a venv holding REQUIREMENTS, and DIR/bin/BINARY runs;
# sets TOOL_VERSION to what BINARY --version printed. The version is asked once, when the venv is
# (re)installed, and kept next to the stamp: checkov takes about 4 s to print it, and test.sh runs
# this script every time.
tool_venv() {
  local dir="$1" requirements="$2" binary="$3" stamp
  stamp="$(stamp_of "$requirements")"
  if [[ $FORCE -eq 0 && -f "$dir/.setup-stamp" && "$(cat "$dir/.setup-stamp")" == "$stamp" \
        && -x "$dir/bin/$binary" && -s "$dir/.setup-version" ]]; then
    log "$binary up to date"
  else
    log "installing pinned $binary into $dir"
    local base_python
    base_python="$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')"
    [[ -x "$dir/bin/python" ]] || "$base_python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" \
      || die "pip install -r ${requirements#"$ROOT/"} failed"
    "$dir/bin/$binary" --version >"$dir/.setup-version" 2>&1 || die "$binary in $dir does not run"
    echo "$stamp" >"$dir/.setup-stamp"
  fi
  TOOL_VERSION="$(head -n1 "$dir/.setup-version")"
}
tool_venv "$TOOLS/awscli-venv" "$ROOT/requirements-awscli.txt" aws
awscli_version="${TOOL_VERSION%% *}"
tool_venv "$TOOLS/checkov-venv" "$ROOT/requirements-checkov.txt" checkov
checkov_version="$TOOL_VERSION"

log "ready: $("$VENV/bin/python" --version), cfn-guard $guard_version, asl-validator $("$TOOLS/bin/asl-validator" --version), $awscli_version, checkov $checkov_version"
