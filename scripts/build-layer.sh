#!/usr/bin/env bash
# Builds the shared Lambda layer folder every use-case template points at (Content: ../.build/layer):
#   .build/layer/python/shared/            the project's shared/ package
#   .build/layer/python/<dependencies>     requirements-runtime.txt, installed for python3.13 on
#                                          manylinux x86_64 (the Lambda runtime), pinned by
#                                          requirements-lock.txt
#   .build/layer/python/uc06_layoutscan*.so UC6's compiled decoder loops (scripts/build-native.sh:
#                                          CPython 3.13 x86_64, GLIBC <= 2.34, built in .build/native)
# With --media it builds the UC9 media layer instead (.build/layer-media/python/: the pinned
# requirements-media.txt only - PyAV with its bundled FFmpeg, numpy, laspy, lazrs - and no shared/),
# which only UC9's media functions attach, so every other function stays small.
# Every module is shipped compiled (__pycache__/*.cpython-313.pyc, unchecked-hash, recorded under
# /opt/python/): Lambda extracts layers read-only, so without them every cold start would compile
# each module it imports and could not keep the result.
# Idempotent: a stamp of the inputs (requirements files and shared/ sources) is kept and a rerun
# with unchanged inputs builds nothing. The new layer is assembled beside the old one and swapped
# in only when complete, so a failed build never leaves a half-built layer behind.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
OUT="$ROOT/.build/layer"
STAMP="$ROOT/.build/layer.stamp"
PLATFORM="manylinux2014_x86_64"
EXTRA_PLATFORM=""
PY_VERSION="3.13"

usage() {
  cat <<EOF
Usage: scripts/build-layer.sh [--media] [--force] [--dry-run] [--quiet] [--help]

Builds .build/layer/python/ (shared/ + the pinned runtime dependencies for python${PY_VERSION},
${PLATFORM}, every module with its python${PY_VERSION} .pyc) for aws cloudformation package and
sam local invoke.

  --media    build the UC9 media layer (.build/layer-media/python/ from requirements-media.txt)
  --force    rebuild even when the inputs have not changed
  --dry-run  print what would be built and the pip command; change nothing
  --quiet    print only errors and the final line
  --help     show this help

Environment: BUILD_LAYER_PYTHON  Python whose pip installs the dependencies
             (default: .venv/bin/python, else python3.13)
             BUILD_NATIVE_PYTHON, CC  as for scripts/build-native.sh (the C extension of UC6's
             decoders, built into .build/native and copied into the layer); that CPython 3.13
             also compiles the layer's bytecode
EOF
}

MEDIA=0
FORCE=0
DRY_RUN=0
QUIET=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --media) MEDIA=1 ;;
    --force) FORCE=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --quiet) QUIET=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

REQUIREMENTS="$ROOT/requirements-runtime.txt"
if [[ $MEDIA -eq 1 ]]; then
  REQUIREMENTS="$ROOT/requirements-media.txt"
  # PyAV's wheels are manylinux_2_28 (glibc 2.28); Lambda's python3.13 runtime (Amazon Linux
  # 2023) has glibc 2.34, so those wheels run there.
  EXTRA_PLATFORM="manylinux_2_28_x86_64"
  OUT="$ROOT/.build/layer-media"
  STAMP="$ROOT/.build/layer-media.stamp"
fi
[[ -f "$REQUIREMENTS" ]] || die "$(basename "$REQUIREMENTS") not found in $ROOT"
[[ -f "$ROOT/shared/__init__.py" ]] || die "shared/__init__.py not found in $ROOT"

PYTHON="$(build_python "${BUILD_LAYER_PYTHON:-}" BUILD_LAYER_PYTHON)" || exit 1

# Every input that changes the layer: the requirement pins and every shared/ source file.
input_files() {
  [[ $MEDIA -eq 0 ]] || return 0  # the media layer holds no project code
  (cd "$ROOT" && find shared -type f -name '*.py' ! -path '*/__pycache__/*' -print | LC_ALL=C sort)
}
stamp_now() {
  {
    sha256sum "$REQUIREMENTS" "$ROOT/requirements-lock.txt" 2>/dev/null | cut -d' ' -f1
    [[ $MEDIA -eq 1 ]] || sha256sum "$ROOT/native/uc06_layoutscan.c" | cut -d' ' -f1
    echo "$PLATFORM $EXTRA_PLATFORM $PY_VERSION pyc:unchecked-hash:/opt/python"
    while IFS= read -r file; do
      printf '%s %s\n' "$file" "$(sha256sum "$ROOT/$file" | cut -d' ' -f1)"
    done < <(input_files)
  } | sha256sum | cut -d' ' -f1
}

stamp="$(stamp_now)"
if [[ $FORCE -eq 0 && -f "$STAMP" && "$(cat "$STAMP")" == "$stamp" && -d "$OUT/python" ]] &&
  [[ $MEDIA -eq 1 || -d "$OUT/python/shared" ]]; then
  log "layer up to date ($OUT)"
  exit 0
fi

constraints=()
[[ -f "$ROOT/requirements-lock.txt" ]] && constraints=(-c "$ROOT/requirements-lock.txt")
pip_cmd=("$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile
  --platform "$PLATFORM" ${EXTRA_PLATFORM:+--platform "$EXTRA_PLATFORM"} --implementation cp --python-version "$PY_VERSION" --only-binary=:all:
  -r "$REQUIREMENTS" "${constraints[@]}")

# The bytecode must be CPython 3.13's (Lambda's python3.13 ignores another version's .pyc files).
COMPILE_PYTHON="$(build_python "${BUILD_NATIVE_PYTHON:-}" BUILD_NATIVE_PYTHON)" || exit 1
compile_cmd=("$COMPILE_PYTHON" -m compileall -q -j 0 --invalidation-mode unchecked-hash)

if [[ $DRY_RUN -eq 1 ]]; then
  echo "would build $OUT/python from shared/ ($(input_files | wc -l) files) and $(basename "$REQUIREMENTS")"
  echo "$SCRIPT_NAME: [dry-run] would run: $(quote_cmd "${pip_cmd[@]}" --target "$OUT.new/python")"
  echo "$SCRIPT_NAME: [dry-run] would run: $(quote_cmd "${compile_cmd[@]}" -s "$OUT.new/python" -p /opt/python "$OUT.new/python")"
  [[ $MEDIA -eq 1 ]] || "$ROOT/scripts/build-native.sh" --dry-run --force
  exit 0
fi

# Checked before anything is built: CPython 3.13 (the tag its .pyc files carry is Lambda's).
"$COMPILE_PYTHON" -c 'import sys; sys.exit(sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 13))' 2>/dev/null ||
  die "$COMPILE_PYTHON is not CPython 3.13 (or not found); the layer's bytecode is compiled for Lambda's python3.13 (set BUILD_NATIVE_PYTHON)"

mkdir -p "$ROOT/.build"
work="$OUT.new"
rm -rf "$work"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/python"
log "installing runtime dependencies for python$PY_VERSION $PLATFORM"
"${pip_cmd[@]}" --target "$work/python" || die "pip install failed"
# Console scripts: pip writes the build interpreter's path into their first line, so they would
# make the layer differ from machine to machine, and nothing on a Lambda PATH runs them.
rm -rf "$work/python/bin"
log "copying shared/"
while IFS= read -r file; do
  mkdir -p "$work/python/$(dirname "$file")"
  cp "$ROOT/$file" "$work/python/$file"
done < <(input_files)
[[ $MEDIA -eq 1 || -f "$work/python/shared/__init__.py" ]] || die "shared/ was not copied into the layer"
if [[ $MEDIA -eq 0 ]]; then
  # UC6's decoder loops, compiled for python3.13 x86_64 (the build fails on a GLIBC newer than 2.34)
  native_args=()
  [[ $QUIET -eq 1 ]] && native_args+=(--quiet)
  "$ROOT/scripts/build-native.sh" "${native_args[@]}" >&2 || die "building the C extension failed"
  cp "$ROOT"/.build/native/uc06_layoutscan.*.so "$work/python/" || die "the C extension was not built"
fi
log "compiling the bytecode for python$PY_VERSION"
# -s/-p record /opt/python/... (where Lambda extracts the layer) as each module's file, so the
# .pyc files are the same on every machine and tracebacks name the path the function sees.
"${compile_cmd[@]}" -s "$work/python" -p /opt/python "$work/python" >/dev/null || die "compiling the layer's bytecode failed"

rm -rf "$OUT"
mv "$work" "$OUT"
trap - EXIT
echo "$stamp" >"$STAMP"
echo "$SCRIPT_NAME: built $OUT ($(du -sh "$OUT" | cut -f1))"
