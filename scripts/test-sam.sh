#!/usr/bin/env bash
# The sam tier (scripts/test.sh --with-sam): every function of every use case invoked in a
# python3.13 Lambda container by `sam local invoke`, against emulated AWS.
#
#   1. SAM CLI into its own venv .tools/sam-venv (requirements-sam.txt; SAM pins its own boto3)
#   2. a container engine: the one DOCKER_HOST or Docker's default socket answers on; otherwise
#      Debian's docker.io is installed if needed and a private dockerd is started (data root
#      .tools/docker/data) without any bridge, NAT or iptables rules (--bridge=none
#      --iptables=false --ip-masq=false: the tier is loopback-only, Lambda containers use the host
#      network through local/sam/host_network_relay.py), then stopped by PID when this script exits
#   3. the offline Lambda image (scripts/build-local-image.sh), unless --official-image
#   4. scripts/local-test.sh --engine sam for all use cases, then the container tests (pytest -m sam)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
cd "$ROOT"
SAM_VENV="$ROOT/.tools/sam-venv"
DOCKER_DATA="$ROOT/.tools/docker/data"
# exec-root and socket paths must stay short (unix socket paths are limited to 108 bytes).
RUN_DIR="/tmp/fsxn-sam-docker-$(printf '%s' "$ROOT" | sha256sum | cut -c1-8)"
DOCKERD_START_TIMEOUT_S=90
# No default bridge, no NAT, no iptables rules: nothing but loopback is used (see --help).
DOCKERD_NET_ARGS=(--bridge=none --iptables=false --ip-masq=false)

usage() {
  cat <<EOF
Usage: scripts/test-sam.sh [--official-image] [--mirror URL] [--uc NAME]... [--keep DIR]
                           [--skip-pytest] [--setup-only] [--dry-run] [--help]

Runs the sam tier: installs SAM CLI (.tools/sam-venv), makes sure a container engine runs
(starting a private dockerd if none answers), builds the offline python3.13 Lambda image, then
runs scripts/local-test.sh --engine sam and the container tests (pytest -m sam).

Test traffic stays on loopback: the private dockerd has no bridge (no docker0, no 172.x address,
no iptables/NAT rules), SAM's Lambda containers run in the host network with their emulator on
127.0.0.1, and the emulated AWS listens on 127.0.0.1 (docs/sam-local.md, "Networking").

  --official-image  invoke in the official Lambda python3.13 image (pulled by sam) instead
                    of building the offline image with scripts/build-local-image.sh
  --mirror URL      Debian mirror for the offline image (default: the machine's configured
                    Debian mirror, from its apt sources)
  --uc NAME         only this use case (repeatable; default all)
  --keep DIR        keep responses, sam logs and the emulation request log in DIR
  --skip-pytest     run only local-test.sh, not the container tests
  --setup-only      install SAM CLI and the engine packages, start nothing else, run nothing
  --dry-run         print the steps; install, start and run nothing
  --help            show this help
EOF
}

OFFICIAL=0
UCS=()
KEEP=""
IMAGE_ARGS=()
SKIP_PYTEST=0
SETUP_ONLY=0
DRY_RUN=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --official-image) OFFICIAL=1 ;;
    --mirror) need_value "$1" "$#" "${2-}" "a URL"; check_arg http_url "$1" "$2"; IMAGE_ARGS=(--mirror "$2"); shift ;;
    --uc) need_value "$1" "$#" "${2-}"; UCS+=(--uc "$2"); shift ;;
    --keep) need_value "$1" "$#" "${2-}" "a directory"; KEEP="$2"; shift ;;
    --skip-pytest) SKIP_PYTEST=1 ;;
    --setup-only) SETUP_ONLY=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

if [[ $DRY_RUN -eq 1 ]]; then
  cat <<EOF
would install SAM CLI from requirements-sam.txt into $SAM_VENV (if its stamp changed)
would use the container engine at \${DOCKER_HOST:-unix:///var/run/docker.sock}, or install docker.io
  and start: dockerd ${DOCKERD_NET_ARGS[*]} --data-root $DOCKER_DATA --exec-root $RUN_DIR/exec \
  -H unix://$RUN_DIR/docker.sock
EOF
  [[ $OFFICIAL -eq 1 ]] || echo "would run scripts/build-local-image.sh ${IMAGE_ARGS[*]}"
  echo "would run scripts/local-test.sh --engine sam ${UCS[*]}${KEEP:+ --keep $KEEP}"
  [[ $SKIP_PYTEST -eq 1 ]] || echo "would run pytest -m sam tests/sam"
  exit 0
fi

apt_install() {
  [[ $EUID -eq 0 ]] || die "$* missing and not root: install them (apt-get install -y $*)"
  command -v apt-get >/dev/null 2>&1 || die "$* missing and no apt-get: install them by hand"
  log "installing $* (Debian packages)"
  apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# --- 1. SAM CLI ---------------------------------------------------------------------------------
install_sam() {
  local stamp
  stamp="$(sha256sum "$ROOT/requirements-sam.txt" | cut -d' ' -f1)"
  if [[ -x "$SAM_VENV/bin/sam" && -f "$SAM_VENV/.setup-stamp" && "$(cat "$SAM_VENV/.setup-stamp")" == "$stamp" ]]; then
    return 0
  fi
  # The interpreter scripts/setup.sh found for .venv (Python 3.13), not the venv itself.
  local python
  python="$("$ROOT/.venv/bin/python" -c 'import sys; print(sys._base_executable)')"
  log "installing SAM CLI into $SAM_VENV"
  [[ -x "$SAM_VENV/bin/python" ]] || "$python" -m venv "$SAM_VENV"
  "$SAM_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-sam.txt" \
    || die "pip install -r requirements-sam.txt failed"
  "$SAM_VENV/bin/sam" --version >/dev/null || die "sam does not run after install"
  echo "$stamp" >"$SAM_VENV/.setup-stamp"
}

"$ROOT/scripts/setup.sh" --quiet
install_sam
# An engine that already answers needs no local dockerd.
engine_answers() { "$ROOT/.venv/bin/python" -m local.sam_engine --probe; }
need=()
if ! command -v dockerd >/dev/null 2>&1 && ! engine_answers; then need+=(docker.io); fi
if [[ $OFFICIAL -eq 0 ]] && ! command -v debootstrap >/dev/null 2>&1; then need+=(debootstrap); fi
[[ ${#need[@]} -eq 0 ]] || apt_install "${need[@]}"
if [[ $SETUP_ONLY -eq 1 ]]; then log "setup done: $("$SAM_VENV/bin/sam" --version)"; exit 0; fi

# --- 2. container engine --------------------------------------------------------------------------
DOCKERD_PID=""
# shellcheck disable=SC2329 # invoked by the EXIT trap
stop_dockerd() {
  if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    log "stopping dockerd (pid $DOCKERD_PID)"
    kill -TERM "$DOCKERD_PID"
    local waited=0
    while kill -0 "$DOCKERD_PID" 2>/dev/null && [[ $waited -lt 30 ]]; do sleep 1; waited=$((waited + 1)); done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then kill -KILL "$DOCKERD_PID"; fi
    # dockerd bind-mounts the host network namespace here and leaves it mounted on exit.
    if mountpoint -q "$RUN_DIR/exec/netns/default"; then umount "$RUN_DIR/exec/netns/default" || log "could not unmount $RUN_DIR/exec/netns/default"; fi
  fi
}
trap stop_dockerd EXIT

if engine_answers; then
  log "using the running container engine (${DOCKER_HOST:-default socket})"
else
  [[ $EUID -eq 0 ]] || die "no container engine answers and starting dockerd needs root"
  mkdir -p "$DOCKER_DATA" "$RUN_DIR"
  log "starting dockerd (data root $DOCKER_DATA)"
  dockerd "${DOCKERD_NET_ARGS[@]}" --data-root "$DOCKER_DATA" --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/dockerd.pid" \
    -H "unix://$RUN_DIR/docker.sock" >"$RUN_DIR/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST="unix://$RUN_DIR/docker.sock"
  waited=0
  until engine_answers; do
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$RUN_DIR/dockerd.log" >&2; die "dockerd exited"; }
    [[ $waited -lt $DOCKERD_START_TIMEOUT_S ]] || { tail -20 "$RUN_DIR/dockerd.log" >&2; die "dockerd did not answer in ${DOCKERD_START_TIMEOUT_S}s"; }
    sleep 1
    waited=$((waited + 1))
  done
  log "dockerd answers after ${waited}s"
fi

# --- 3. image ---------------------------------------------------------------------------------------
image_args=()
if [[ $OFFICIAL -eq 0 ]]; then
  image="$("$ROOT/scripts/build-local-image.sh" "${IMAGE_ARGS[@]}" | tail -n 1)"
  image_args=(--invoke-image "$image")
  export FSXN_SAM_INVOKE_IMAGE="$image"
fi

# --- 4. run -------------------------------------------------------------------------------------------
keep_args=()
[[ -z "$KEEP" ]] || keep_args=(--keep "$KEEP")
rc=0
if [[ -x "$ROOT/scripts/local-test.sh" ]]; then
  "$ROOT/scripts/local-test.sh" --engine sam "${UCS[@]}" "${image_args[@]}" "${keep_args[@]}" || rc=$?
else
  log "scripts/local-test.sh not present yet: running the sam engine module directly"
  "$ROOT/.venv/bin/python" -m local.sam_engine "${UCS[@]}" "${image_args[@]}" "${keep_args[@]}" || rc=$?
fi
if [[ $SKIP_PYTEST -eq 0 ]]; then
  prc=0
  "$ROOT/.venv/bin/python" -m pytest -m sam -p no:cacheprovider "$ROOT/tests/sam" || prc=$?
  # pytest exit 5 = no test collected: the tier proved nothing.
  [[ $prc -ne 5 ]] || { log "pytest collected no sam test"; prc=1; }
  [[ $rc -ne 0 ]] || rc=$prc
fi
exit "$rc"
