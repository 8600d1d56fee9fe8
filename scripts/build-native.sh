#!/usr/bin/env bash
# Compiles the C extension of UC6's layout decoders (native/uc06_layoutscan.c: plain CPython C API,
# no third-party build dependency) into one folder:
#   .build/native/uc06_layoutscan<EXT_SUFFIX>   for the tests and the local runner (default)
#   <DIR>/uc06_layoutscan<EXT_SUFFIX>           with --out DIR (scripts/build-layer.sh: the layer)
# for the Python given (default .venv/bin/python, else python3.13). The pure-Python decoders stay
# the reference and the fallback: without the extension they run unchanged, only slower.
#
# Lambda's python3.13 runtime is Amazon Linux 2023 on x86_64 with glibc 2.34. The build fails
# unless the interpreter is CPython 3.13 on x86_64 Linux and every GLIBC symbol version the
# library requires (objdump -T) is at most 2.34. Idempotent: a stamp of the source, the compiler
# and the interpreter is kept beside the library, and a rerun with unchanged inputs builds nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
SOURCE="$ROOT/native/uc06_layoutscan.c"
MODULE="uc06_layoutscan"
MAX_GLIBC="2.34"

usage() {
  cat <<EOF
Usage: scripts/build-native.sh [--out DIR] [--force] [--dry-run] [--quiet] [--help]

Compiles native/uc06_layoutscan.c into DIR (default .build/native) as the CPython 3.13 x86_64
extension module $MODULE, and fails if it needs a GLIBC symbol version newer than $MAX_GLIBC
(Lambda's python3.13 runtime, Amazon Linux 2023).

  --out DIR  where to put the library (created if missing)
  --force    rebuild even when the inputs have not changed
  --dry-run  print the compiler command; change nothing
  --quiet    print only errors and the final line
  --help     show this help

Environment: BUILD_NATIVE_PYTHON  the interpreter to build for (default: .venv/bin/python, else python3.13)
             CC                   the C compiler (default: gcc)
EOF
}

OUT="$ROOT/.build/native"
FORCE=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) need_value "$1" "$#" "${2-}" "a folder"; OUT="$2"; shift ;;
    --force) FORCE=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --quiet) QUIET=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

[[ -f "$SOURCE" ]] || die "native/uc06_layoutscan.c not found in $ROOT"
PYTHON="$(build_python "${BUILD_NATIVE_PYTHON:-}" BUILD_NATIVE_PYTHON)" || exit 1
CC="${CC:-gcc}"
command -v "$CC" >/dev/null 2>&1 || die "C compiler '$CC' not found (install gcc, or set CC)"
command -v objdump >/dev/null 2>&1 || die "objdump not found (binutils): the GLIBC check needs it"

# include dir, extension suffix, implementation, version, machine
read -r INCLUDE SUFFIX IMPL VERSION MACHINE < <("$PYTHON" -c '
import platform, sys, sysconfig
print(sysconfig.get_paths()["include"], sysconfig.get_config_var("EXT_SUFFIX"),
      sys.implementation.name, "%d.%d" % sys.version_info[:2], platform.machine())') ||
  die "$PYTHON could not report its build configuration"
[[ "$IMPL" == cpython && "$VERSION" == 3.13 && "$MACHINE" == x86_64 ]] ||
  die "$PYTHON is $IMPL $VERSION on $MACHINE; the extension is built for CPython 3.13 on x86_64 (Lambda's python3.13)"
[[ -f "$INCLUDE/Python.h" ]] || die "Python.h not found in $INCLUDE (the interpreter's development headers)"

TARGET="$OUT/$MODULE$SUFFIX"
STAMP="$TARGET.stamp"
cc_cmd=("$CC" -O2 -std=c11 -Wall -Wextra -Werror -fPIC -shared -fno-strict-aliasing
  -I "$INCLUDE" "$SOURCE" -o "$TARGET.new.$$")

stamp="$({
  sha256sum "$SOURCE" "$0" | cut -d' ' -f1
  "$CC" --version | head -1
  echo "$INCLUDE $SUFFIX"
} | sha256sum | cut -d' ' -f1)"
if [[ $FORCE -eq 0 && -f "$TARGET" && -f "$STAMP" && "$(cat "$STAMP")" == "$stamp" ]]; then
  log "extension up to date ($TARGET)"
  exit 0
fi
if [[ $DRY_RUN -eq 1 ]]; then
  echo "$SCRIPT_NAME: [dry-run] would run: $(quote_cmd "${cc_cmd[@]}")"
  exit 0
fi

mkdir -p "$OUT"
# a private temporary name: parallel test workers may build at the same time; mv is atomic
trap 'rm -f "$TARGET.new.$$"' EXIT
log "compiling $MODULE for CPython $VERSION $MACHINE"
"${cc_cmd[@]}" || die "compiling native/uc06_layoutscan.c failed"

# The newest GLIBC_x.y symbol version the library needs must exist on Lambda (glibc 2.34).
symbols="$(objdump -T "$TARGET.new.$$")" || die "objdump -T could not read the built library"
# grep exits 1 when the library needs no GLIBC symbol at all (only the interpreter's C API)
versions="$(grep -o 'GLIBC_[0-9][0-9.]*' <<<"$symbols" || [[ $? -eq 1 ]])"
newest="$(sort -V <<<"${versions//GLIBC_/}" | tail -1)"
if [[ -n "$newest" && "$(printf '%s\n%s\n' "$newest" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]]; then
  die "$MODULE$SUFFIX requires GLIBC_$newest, newer than Lambda's $MAX_GLIBC"
fi
# It must import and expose what the decoders call.
"$PYTHON" - "$TARGET.new.$$" <<'EOF' || die "the built extension does not import"
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.ExtensionFileLoader("uc06_layoutscan", sys.argv[1])
spec = importlib.util.spec_from_file_location("uc06_layoutscan", sys.argv[1], loader=loader)
module = importlib.util.module_from_spec(spec)
loader.exec_module(module)
missing = {"gdsii_fast", "oasis_fast", "byte_sum"} - set(dir(module))
sys.exit(f"missing functions: {sorted(missing)}" if missing else 0)
EOF
mv -f "$TARGET.new.$$" "$TARGET"
trap - EXIT
echo "$stamp" >"$STAMP.$$" && mv -f "$STAMP.$$" "$STAMP"
echo "$SCRIPT_NAME: built $TARGET (needs GLIBC ${newest:-none} <= $MAX_GLIBC)"
