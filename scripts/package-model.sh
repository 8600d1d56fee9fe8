#!/usr/bin/env bash
# Builds UC9's model.tar.gz (the annotation model trained by autonomous-driving/model/train.py,
# plus code/inference.py in SageMaker's framework-container layout), uploads it to S3 under a key
# derived from its sha256 (a new model gets a new URL, so the stack replaces its SageMaker Model),
# and prints the ModelDataUrl parameter to deploy autonomous-driving/template-deploy.yaml with.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

usage() {
  cat <<'EOF'
Usage: scripts/package-model.sh --s3-bucket BUCKET [--s3-prefix PREFIX] [--region REGION]
                                [--output FILE] [--dry-run] [--help]

  --s3-bucket BUCKET   bucket that receives model.tar.gz (same region as the stack)
  --s3-prefix PREFIX   key prefix (default: autonomous-driving/model)
  --region REGION      AWS region (default: the AWS CLI's configured region)
  --output FILE        where to write the archive (default: .build/autonomous-driving/model.tar.gz)
  --dry-run            build the archive and print the upload it would make; call no AWS API
  --help               show this help

The archive is reproducible: the same source gives the same bytes and the same S3 key, so a
rerun uploads the same object again and prints the same ModelDataUrl.
Environment: PACKAGE_MODEL_PYTHON (default python3.13, else python3) runs train.py.
EOF
}

BUCKET=""
PREFIX="autonomous-driving/model"
REGION=""
OUTPUT=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --s3-bucket) need_value "$1" "$#" "${2-}"; BUCKET="$2"; shift ;;
    --s3-prefix) need_value "$1" "$#" "${2-}"; PREFIX="$2"; shift ;;
    --region) need_value "$1" "$#" "${2-}"; REGION="$2"; shift ;;
    --output) need_value "$1" "$#" "${2-}"; OUTPUT="$2"; shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done

[[ -n "$BUCKET" ]] || usage_error "--s3-bucket is required"
check_arg s3_bucket_name --s3-bucket "$BUCKET"
PREFIX="${PREFIX%/}"
[[ "$PREFIX" =~ ^[A-Za-z0-9!_.*()/-]{1,512}$ ]] || usage_error "--s3-prefix '$PREFIX' has characters outside A-Za-z0-9!_.*()/-"
[[ -z "$REGION" ]] || check_arg aws_region --region "$REGION"
OUTPUT="${OUTPUT:-$ROOT/.build/autonomous-driving/model.tar.gz}"

PYTHON="${PACKAGE_MODEL_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  if command -v python3.13 >/dev/null 2>&1; then PYTHON=python3.13; else PYTHON=python3; fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "no Python interpreter '$PYTHON' on PATH"

"$PYTHON" "$ROOT/autonomous-driving/model/train.py" --archive "$OUTPUT" || die "building the model archive failed"
[[ -s "$OUTPUT" ]] || die "the model archive $OUTPUT is missing or empty"

DIGEST="$(sha256sum "$OUTPUT" | cut -c1-16)"
KEY="$PREFIX/$DIGEST/model.tar.gz"
URL="s3://$BUCKET/$KEY"

upload=(aws s3 cp "$OUTPUT" "$URL" --only-show-errors)
[[ -n "$REGION" ]] && upload+=(--region "$REGION")

run_cmd "${upload[@]}" || die "upload of $OUTPUT to $URL failed"
echo "ModelDataUrl=$URL"
