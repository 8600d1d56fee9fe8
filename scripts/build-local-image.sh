#!/usr/bin/env bash
# Builds a Lambda-compatible python3.13 container image without any image registry, for
# `sam local invoke --invoke-image IMAGE --skip-pull-image` on machines that cannot pull the
# official Lambda base image (see docs/sam-local.md, "offline route").
#
#   Debian trixie rootfs (debootstrap --variant=minbase, python3.13 from Debian, fetched from the
#                  machine's configured Debian mirror or --mirror)
#   /var/runtime   awslambdaric (the Python runtime interface client) + the project's Lambda runtime
#                  dependencies (requirements-runtime.txt) + snapshot-restore-py, as the managed
#                  runtime has them; installed from PyPI wheels for the image's platform
#   /var/runtime/bootstrap   starts awslambdaric with the handler, the way the managed runtime does
#   /var/lang/bin/python3.13 the interpreter at the path the managed runtime uses
#
# SAM CLI adds its bundled Runtime Interface Emulator (/var/rapid/aws-lambda-rie) on top, which
# runs /var/runtime/bootstrap. The image is imported with `docker import` (no Dockerfile build, no
# base image). A rebuild is skipped when an image with the same inputs stamp exists.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

# Pinned runtime-interface packages (what the managed python3.13 image ships besides boto3).
RIC_PINS=(awslambdaric==4.2.2 simplejson==4.3.0 snapshot-restore-py==1.0.0)
DEFAULT_TAG="fsxn-s3ap/lambda-python:3.13-local"
SUITE="trixie"

usage() {
  cat <<EOF
Usage: scripts/build-local-image.sh [--tag TAG] [--mirror URL] [--work-dir DIR] [--force]
                                    [--dry-run] [--help]

Builds the offline Lambda python3.13 image (default tag $DEFAULT_TAG) from a Debian $SUITE
rootfs, awslambdaric and requirements-runtime.txt, and imports it into the container engine
(docker, or finch when docker is absent; DOCKER_HOST is honoured). Needs root, debootstrap,
the project venv (scripts/setup.sh) and access to the machine's configured Debian mirror and
Python package index; no image registry.

  --tag TAG       image tag to create (default $DEFAULT_TAG)
  --mirror URL    Debian mirror for debootstrap (default: \$DEBIAN_MIRROR, else the machine's
                  configured Debian mirror, the first enabled Debian source in its apt sources)
  --work-dir DIR  where the rootfs is assembled (default .build/local-image)
  --force         rebuild even when an image with the same inputs already exists
  --dry-run       print what would be done; change nothing
  --help          show this help

Prints the image tag on the last line of stdout.

Environment: DEBIAN_MIRROR    Debian mirror when --mirror is not given
             APT_SOURCES_DIR  where the apt sources are read (default /etc/apt)
EOF
}

TAG="$DEFAULT_TAG"
MIRROR=""
WORK="$ROOT/.build/local-image"
FORCE=0
DRY_RUN=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) need_value "$1" "$#" "${2-}"; TAG="$2"; shift ;;
    --mirror) need_value "$1" "$#" "${2-}" "a URL"; MIRROR="$2"; shift ;;
    --work-dir) need_value "$1" "$#" "${2-}" "a directory"; WORK="$2"; shift ;;
    --force) FORCE=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

[[ "$TAG" =~ ^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$ ]] \
  || usage_error "--tag '$TAG' is not a valid image reference (lowercase repository[:tag])"
MIRROR="$(resolve_debian_mirror "$MIRROR")"
[[ "$WORK" == /* ]] || WORK="$PWD/$WORK"

case "$(uname -m)" in
  x86_64) PLATFORMS=(manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_28_x86_64 manylinux_2_34_x86_64) ;;
  aarch64) PLATFORMS=(manylinux2014_aarch64 manylinux_2_17_aarch64 manylinux_2_28_aarch64 manylinux_2_34_aarch64) ;;
  *) die "unsupported architecture $(uname -m) (Lambda runs x86_64 and arm64)" ;;
esac

if command -v docker >/dev/null 2>&1; then ENGINE=docker
elif command -v finch >/dev/null 2>&1; then ENGINE=finch
else die "neither docker nor finch is on PATH"; fi

PIP=("$ROOT/.venv/bin/python" -m pip)
[[ -x "$ROOT/.venv/bin/python" ]] || die ".venv missing: run scripts/setup.sh first"

# Everything that determines the image content; an image carrying the same stamp is reused.
# (Neither the mirror nor scripts/lib/common.sh changes what goes into the image.)
STAMP="$( { cat "${BASH_SOURCE[0]}" "$ROOT/requirements-runtime.txt"; echo "$SUITE ${PLATFORMS[*]} ${RIC_PINS[*]}"; } \
  | sha256sum | cut -c1-16)"

if [[ $DRY_RUN -eq 1 ]]; then
  cat <<EOF
would build image $TAG (inputs stamp $STAMP) with $ENGINE:
  debootstrap --variant=minbase --include=python3.13,ca-certificates $SUITE $WORK/rootfs $MIRROR
  pip install --target $WORK/rootfs/var/runtime --platform ${PLATFORMS[0]} --python-version 3.13 \\
      ${RIC_PINS[*]} -r requirements-runtime.txt
  write /var/runtime/bootstrap, /lambda-entrypoint.sh, /var/lang/bin/python3.13
  tar -C $WORK/rootfs . | $ENGINE import --change ... - $TAG
EOF
  echo "$TAG"
  exit 0
fi

"$ENGINE" info >/dev/null 2>&1 || die "$ENGINE does not answer (is the engine running? DOCKER_HOST=${DOCKER_HOST:-unset})"

existing=""
if "$ENGINE" image inspect "$TAG" >/dev/null 2>&1; then
  existing="$("$ENGINE" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$TAG" \
    | sed -n 's/^FSXN_LOCAL_IMAGE_STAMP=//p')"
fi
if [[ $FORCE -eq 0 && "$existing" == "$STAMP" ]]; then
  log "$TAG is up to date (stamp $STAMP)"
  echo "$TAG"
  exit 0
fi

# Only a build needs the mirror, root and debootstrap; a mirror that does not answer fails here.
log "Debian mirror: $MIRROR"
check_debian_mirror "$MIRROR" "$SUITE"
[[ $EUID -eq 0 ]] || die "debootstrap needs root"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found: apt-get install -y debootstrap"

ROOTFS="$WORK/rootfs"
log "assembling $SUITE rootfs in $ROOTFS"
rm -rf "$ROOTFS"
mkdir -p "$WORK"
debootstrap --variant=minbase --include=python3.13,ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" \
  >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
[[ -x "$ROOTFS/usr/bin/python3.13" ]] || die "the $SUITE rootfs has no /usr/bin/python3.13"

log "installing awslambdaric and the runtime dependencies into /var/runtime"
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
"${PIP[@]}" install --quiet --disable-pip-version-check --no-compile --target "$ROOTFS/var/runtime" \
  --only-binary=:all: --implementation cp --python-version 3.13 "${platform_args[@]}" \
  "${RIC_PINS[@]}" -r "$ROOT/requirements-runtime.txt" \
  || die "pip could not install the runtime packages for ${PLATFORMS[0]}"

mkdir -p "$ROOTFS/var/lang/bin" "$ROOTFS/var/task" "$ROOTFS/opt"
ln -sfn /usr/bin/python3.13 "$ROOTFS/var/lang/bin/python3.13"
ln -sfn python3.13 "$ROOTFS/var/lang/bin/python3"
ln -sfn python3.13 "$ROOTFS/var/lang/bin/python"

# The runtime's search order: function code, then layers, then the runtime's own packages.
cat >"$ROOTFS/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
# Starts the Python runtime interface client for the configured handler.
set -eu
handler="${_HANDLER:-${AWS_LAMBDA_FUNCTION_HANDLER:-}}"
if [ -z "$handler" ]; then
  echo "bootstrap: no handler configured (_HANDLER / AWS_LAMBDA_FUNCTION_HANDLER)" >&2
  exit 1
fi
export _HANDLER="$handler"
export AWS_EXECUTION_ENV="${AWS_EXECUTION_ENV:-AWS_Lambda_python3.13}"
export PYTHONPATH="${LAMBDA_TASK_ROOT:-/var/task}:/opt/python/lib/python3.13/site-packages:/opt/python:${LAMBDA_RUNTIME_DIR:-/var/runtime}"
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec /var/lang/bin/python3.13 -m awslambdaric "$handler"
EOF
chmod 0755 "$ROOTFS/var/runtime/bootstrap"

# Entry point for a plain `docker run IMAGE module.handler` under a Runtime API (as in Lambda).
cat >"$ROOTFS/lambda-entrypoint.sh" <<'EOF'
#!/bin/sh
set -eu
if [ $# -ne 1 ]; then
  echo "lambda-entrypoint: expects the handler (module.function) as its only argument" >&2
  exit 142
fi
export _HANDLER="$1"
exec /var/runtime/bootstrap
EOF
chmod 0755 "$ROOTFS/lambda-entrypoint.sh"

# Nothing the runtime needs: package caches, docs, man pages.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*

log "importing the rootfs as $TAG"
tar -C "$ROOTFS" --numeric-owner -c . | "$ENGINE" import \
  --change "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV TZ=:/etc/localtime" \
  --change "ENV LAMBDA_TASK_ROOT=/var/task" \
  --change "ENV LAMBDA_RUNTIME_DIR=/var/runtime" \
  --change "ENV FSXN_LOCAL_IMAGE_STAMP=$STAMP" \
  --change "WORKDIR /var/task" \
  --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
  - "$TAG" >/dev/null || die "$ENGINE import failed"

# The image must run the interpreter and import the runtime interface client and boto3.
"$ENGINE" run --rm --network none --entrypoint /var/lang/bin/python3.13 \
  -e PYTHONPATH=/var/runtime "$TAG" -c \
  'import sys, awslambdaric, boto3, snapshot_restore_py; assert sys.version_info[:2] == (3, 13), sys.version' \
  || die "$TAG does not run python3.13 with awslambdaric and boto3"
rm -rf "$ROOTFS"
log "built $TAG (stamp $STAMP)"
echo "$TAG"
