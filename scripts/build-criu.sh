#!/usr/bin/env bash
# Builds CRIU (checkpoint/restore in userspace) from Debian trixie's source package and installs
# the criu binary into .tools/criu/bin/criu. The SnapStart tier of the tests (scripts/test-snapstart.sh)
# and benchmarks/snapstart_bench.py use it to checkpoint and restore real Python processes.
#
# Why not the distribution's criu: bookworm ships 3.17.1, which fails on recent kernels (it does
# not handle the vvar area split into [vvar] and [vvar_vclock] that this kernel maps); 4.1 does.
#
# What it does, only when the installed binary is missing or not the pinned version:
#   1. adds a deb-src entry for trixie in its own file (/etc/apt/sources.list.d/trixie-src.sources;
#      source packages only, so no trixie binary can be installed by accident), on the machine's
#      configured Debian mirror (the first enabled Debian source of its apt configuration, see
#      debian_mirror in scripts/lib/common.sh) or the one given with --mirror;
#   2. installs the build dependencies of the criu binary from bookworm;
#   3. downloads the source package's upstream tarball, checked against a pinned sha256 that must
#      also be the one trixie's signed Sources index lists;
#   4. applies the local patch below (inet sockets on Linux >= 6.16), builds only the criu
#      binary, installs it, and runs `criu check`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
CRIU_DEB_VERSION="4.1.1-1"             # Debian trixie source package version
CRIU_VERSION="${CRIU_DEB_VERSION%-*}"  # upstream version, as `criu --version` prints it
PREFIX="$ROOT/.tools/criu"
BUILD_DIR="$ROOT/.build/criu"
SOURCES_FILE="/etc/apt/sources.list.d/trixie-src.sources"
SUITE="trixie"
# The upstream tarball of the source package, as listed in trixie's signed Sources index. Only it
# is used: the package's .dsc and debian.tar.xz are not needed to build the criu binary (and are
# not always served by the mirror this project is built against).
ORIG_TARBALL="criu_${CRIU_VERSION}.orig.tar.xz"
ORIG_SHA256="f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe"
# Build dependencies of criu/criu (not of the docs, crit or the plugins), all in bookworm.
BUILD_DEPS=(build-essential curl xz-utils patch pkgconf python3 libbsd-dev libcap-dev libgnutls28-dev
  libnet1-dev libnftables-dev libnl-3-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler
  protobuf-compiler uuid-dev)

usage() {
  cat <<EOF
Usage: scripts/build-criu.sh [--mirror URL] [--force] [--dry-run] [--check] [--help]

Builds CRIU $CRIU_VERSION from Debian $SUITE's source package ($CRIU_DEB_VERSION) and installs
the binary as .tools/criu/bin/criu. Needs root (apt-get) and network access to the machine's
configured Debian mirror. Does nothing when the pinned version is already installed. Takes
several minutes on 2 cores.

  --mirror URL  Debian mirror to fetch $SUITE's source package from (default: \$DEBIAN_MIRROR,
                else the machine's configured Debian mirror, the first enabled Debian source in
                its apt sources)
  --force       rebuild even when the pinned version is installed
  --dry-run     print what would be done and change nothing (still checks that the mirror answers)
  --check       exit 0 when the pinned version is installed and 'criu check' passes, 1
                otherwise; build nothing
  --help        show this help

Environment: DEBIAN_MIRROR    Debian mirror when --mirror is not given
             APT_SOURCES_DIR  where the apt sources are read (default /etc/apt)
EOF
}

FORCE=0
DRY_RUN=0
CHECK_ONLY=0
MIRROR_OPTION=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mirror) need_value "$1" "$#" "${2-}" "a URL"; check_arg http_url "$1" "$2"; MIRROR_OPTION="$2"; shift ;;
    --force) FORCE=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --check) CHECK_ONLY=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

CRIU="$PREFIX/bin/criu"
STAMP="$PREFIX/BUILD-STAMP"

# Local patch, applied to the upstream source. Since Linux 6.16 getsockopt(SO_PASSCRED /
# SO_PASSSEC) fails with EOPNOTSUPP on inet sockets, and CRIU 4.1.1 then refuses to dump any
# process holding one (an unconnected UDP socket is enough: the X-Ray SDK's emitter, which
# Powertools' Tracer creates at import, is one). The options mean nothing on such sockets, so the
# patch records them as absent. Upstream tracks the same kernel change as criu issue #2705.
# (`read -d ''` reads to the end of the here-document and always returns 1 there: not a failure.)
IFS= read -r -d '' SOCKOPT_PATCH <<'PATCH' || true
--- a/criu/sockets.c
+++ b/criu/sockets.c
@@ -637,6 +637,29 @@
 	return 0;
 }
 
+/*
+ * SO_PASSCRED and SO_PASSSEC: since Linux 6.16 the kernel answers EOPNOTSUPP for them on
+ * sockets other than unix and netlink ones, where they carry no meaning. Such a socket has
+ * nothing to dump (and so nothing to restore) for them; any other error fails the dump.
+ */
+static int dump_pass_opt(int sk, int name, protobuf_c_boolean *has, protobuf_c_boolean *value)
+{
+	int val;
+	socklen_t len = sizeof(val);
+
+	if (getsockopt(sk, SOL_SOCKET, name, &val, &len) == 0) {
+		*has = true;
+		*value = val ? true : false;
+		return 0;
+	}
+	if (errno == EOPNOTSUPP) {
+		*has = false;
+		return 0;
+	}
+	pr_perror("Can't get %d:%d opt", SOL_SOCKET, name);
+	return -1;
+}
+
 int dump_socket_opts(int sk, SkOptsEntry *soe)
 {
 	int ret = 0, val;
@@ -676,13 +699,8 @@
 	soe->so_reuseport = val ? true : false;
 	soe->has_so_reuseport = true;
 
-	ret |= dump_opt(sk, SOL_SOCKET, SO_PASSCRED, &val);
-	soe->has_so_passcred = true;
-	soe->so_passcred = val ? true : false;
-
-	ret |= dump_opt(sk, SOL_SOCKET, SO_PASSSEC, &val);
-	soe->has_so_passsec = true;
-	soe->so_passsec = val ? true : false;
+	ret |= dump_pass_opt(sk, SO_PASSCRED, &soe->has_so_passcred, &soe->so_passcred);
+	ret |= dump_pass_opt(sk, SO_PASSSEC, &soe->has_so_passsec, &soe->so_passsec);
 
 	ret |= dump_opt(sk, SOL_SOCKET, SO_DONTROUTE, &val);
 	soe->has_so_dontroute = true;
PATCH

# What the installed binary was built from: version and patch.
build_stamp() { printf 'criu %s\n%s\n' "$CRIU_DEB_VERSION" "$SOCKOPT_PATCH" | sha256sum | cut -d' ' -f1; }

installed_version_ok() {
  [[ -x "$CRIU" && -f "$STAMP" ]] || return 1
  local version
  version="$("$CRIU" --version 2>/dev/null | awk '/^Version:/ {print $2}')"
  [[ "$version" == "$CRIU_VERSION" && "$(cat "$STAMP")" == "$(build_stamp)" ]]
}

criu_check() {
  # 'criu check' needs root; it probes the kernel features a dump and restore use.
  local output
  if ! output="$("$CRIU" check 2>&1)"; then
    echo "$output" >&2
    return 1
  fi
  grep -q "Looks good" <<<"$output"
}

if [[ $CHECK_ONLY -eq 1 ]]; then
  installed_version_ok || { log "CRIU $CRIU_VERSION (with the local patch) is not installed at $CRIU"; exit 1; }
  criu_check || { log "'criu check' failed"; exit 1; }
  log "CRIU $CRIU_VERSION at $CRIU: criu check passed"
  exit 0
fi

if [[ $FORCE -eq 0 ]] && installed_version_ok; then
  log "CRIU $CRIU_VERSION already installed at $CRIU"
  exit 0
fi

[[ "$(uname -m)" == "x86_64" ]] || die "only x86_64 is supported (this is $(uname -m))"
command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian-based system"
MIRROR="$(resolve_debian_mirror "$MIRROR_OPTION")"
log "Debian mirror: $MIRROR"
# Before anything is changed: a mirror that does not answer fails here, not half-way.
check_debian_mirror "$MIRROR" "$SUITE"
[[ $DRY_RUN -eq 1 || "$(id -u)" -eq 0 ]] || die "must run as root (it installs build dependencies with apt-get)"

# The trixie source entry, on the same mirror; rewritten when the mirror changed.
SOURCES_ENTRY="# Source packages only (no binaries): scripts/build-criu.sh builds CRIU from $SUITE's source.
Types: deb-src
URIs: $MIRROR
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
SOURCES_CHANGED=0
if [[ ! -f "$SOURCES_FILE" || "$(cat "$SOURCES_FILE")" != "$SOURCES_ENTRY" ]]; then
  SOURCES_CHANGED=1
  log "adding $SUITE source packages from $MIRROR in $SOURCES_FILE"
  if [[ $DRY_RUN -eq 1 ]]; then
    echo "$SCRIPT_NAME: [dry-run] would write $SOURCES_FILE:"
    printf '%s\n' "$SOURCES_ENTRY" | sed 's/^/    /'
  else
    printf '%s\n' "$SOURCES_ENTRY" >"$SOURCES_FILE"
  fi
fi

if [[ $SOURCES_CHANGED -eq 1 ]] || ! apt-cache showsrc "criu" 2>/dev/null | grep -qx "Version: $CRIU_DEB_VERSION"; then
  log "updating apt indexes"
  run_cmd apt-get update -q || die "apt-get update failed"
  if [[ $DRY_RUN -eq 0 ]] && ! apt-cache showsrc criu | grep -qx "Version: $CRIU_DEB_VERSION"; then
    die "source package criu $CRIU_DEB_VERSION not found in $SUITE on $MIRROR (pinned version gone? see $SOURCES_FILE)"
  fi
fi

log "installing build dependencies: ${BUILD_DEPS[*]}"
run_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${BUILD_DEPS[@]}" \
  || die "installing build dependencies failed"

SRC_DIR="$BUILD_DIR/criu-$CRIU_VERSION"
ORIG_URL="$MIRROR/pool/main/c/criu/$ORIG_TARBALL"
if [[ $DRY_RUN -eq 1 ]]; then
  echo "$SCRIPT_NAME: [dry-run] would download $ORIG_URL, check its sha256 ($ORIG_SHA256) against the signed Sources index"
  echo "$SCRIPT_NAME: [dry-run] would apply the local sockopt patch and run: $(quote_cmd make -C "$SRC_DIR" -j"$(nproc)" criu)"
  echo "$SCRIPT_NAME: [dry-run] would install $SRC_DIR/criu/criu as $CRIU and run '$CRIU check'"
  exit 0
fi
# The checksum apt verified from trixie's signed Sources index must be the pinned one.
apt-cache showsrc criu | awk -v v="$CRIU_DEB_VERSION" '
  /^Package:/ {inblock=0} /^Version:/ {inblock=($2==v)}
  inblock && /^Checksums-Sha256:/ {sums=1; next} /^[^ ]/ {sums=0}
  inblock && sums {print $1, $3}' | grep -qx "$ORIG_SHA256 $ORIG_TARBALL" \
  || die "$SUITE's Sources index does not list $ORIG_TARBALL with sha256 $ORIG_SHA256"
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR"
log "downloading $ORIG_URL"
curl -fsSL --retry 3 -o "$BUILD_DIR/$ORIG_TARBALL" "$ORIG_URL" || die "download of $ORIG_URL failed"
echo "$ORIG_SHA256  $BUILD_DIR/$ORIG_TARBALL" | sha256sum -c --quiet - || die "sha256 mismatch for $ORIG_TARBALL"
tar -xJf "$BUILD_DIR/$ORIG_TARBALL" -C "$BUILD_DIR" || die "extracting $ORIG_TARBALL failed"
[[ -d "$SRC_DIR" ]] || die "expected $SRC_DIR after extracting $ORIG_TARBALL"
printf '%s' "$SOCKOPT_PATCH" | patch -d "$SRC_DIR" -p1 --forward --quiet || die "the local sockopt patch does not apply"

log "building criu (make criu, $(nproc) jobs)"
make -C "$SRC_DIR" -j"$(nproc)" criu >"$BUILD_DIR/make.log" 2>&1 \
  || { tail -40 "$BUILD_DIR/make.log" >&2; die "make criu failed (full log: $BUILD_DIR/make.log)"; }

install -D -m 0755 "$SRC_DIR/criu/criu" "$CRIU"
build_stamp >"$STAMP"
installed_version_ok || die "$CRIU does not report version $CRIU_VERSION: $("$CRIU" --version 2>&1 | head -2)"
criu_check || die "'$CRIU check' failed on this kernel; checkpoint/restore will not work here"
log "installed CRIU $CRIU_VERSION at $CRIU (criu check passed)"
