#!/usr/bin/env bash
# Packages a use-case stack for deployment: builds the shared layer, uploads every local code path
# of <uc>/template-deploy.yaml (function folders, the layer) with `aws cloudformation package`, and
# prints the CodeVersion to deploy with: a hash of the function and layer code, so a code change
# publishes new Lambda versions when EnableSnapStart is true.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/package.sh --uc USE_CASE --s3-bucket BUCKET [--s3-prefix PREFIX] [--region REGION]
                          [--kms-key-id KEY] [--output-template FILE] [--skip-layer] [--dry-run] [--help]

  --uc USE_CASE          use-case folder holding template-deploy.yaml (e.g. semiconductor-eda)
  --s3-bucket BUCKET     bucket that receives the code artifacts (same region as the stack)
  --s3-prefix PREFIX     key prefix for the artifacts (default: the use-case name)
  --region REGION        AWS region (default: the AWS CLI's configured region)
  --kms-key-id KEY       KMS key for the uploaded artifacts (default: the bucket's encryption)
  --output-template FILE packaged template to write (default: .build/<use-case>/packaged.yaml)
  --skip-layer           do not run scripts/build-layer.sh (the layer must already be built)
  --dry-run              print the commands it would run and the CodeVersion; upload nothing
  --help                 show this help

Then deploy, for example:
  aws cloudformation deploy --template-file .build/semiconductor-eda/packaged.yaml \
    --stack-name uc6-eda --capabilities CAPABILITY_IAM \
    --parameter-overrides AccessPointArn=arn:aws:s3:... CodeVersion=<printed value>
EOF
}

die() { echo "package.sh: ERROR: $*" >&2; exit 1; }
usage_error() { echo "package.sh: $* (see --help)" >&2; exit 2; }

UC=""
BUCKET=""
PREFIX=""
REGION=""
KMS_KEY=""
OUTPUT=""
SKIP_LAYER=0
DRY_RUN=0

need_value() { [[ $# -ge 2 && -n "$2" ]] || usage_error "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --uc) need_value "$@"; UC="$2"; shift ;;
    --s3-bucket) need_value "$@"; BUCKET="$2"; shift ;;
    --s3-prefix) need_value "$@"; PREFIX="$2"; shift ;;
    --region) need_value "$@"; REGION="$2"; shift ;;
    --kms-key-id) need_value "$@"; KMS_KEY="$2"; shift ;;
    --output-template) need_value "$@"; OUTPUT="$2"; shift ;;
    --skip-layer) SKIP_LAYER=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done

[[ -n "$UC" ]] || usage_error "--uc is required"
[[ -n "$BUCKET" ]] || usage_error "--s3-bucket is required"
UC="${UC%/}"
[[ "$UC" =~ ^[a-z0-9][a-z0-9-]*$ ]] || usage_error "--uc '$UC' must be a use-case folder name such as semiconductor-eda"
TEMPLATE="$ROOT/$UC/template-deploy.yaml"
[[ -f "$TEMPLATE" ]] || usage_error "--uc '$UC': $UC/template-deploy.yaml not found"
[[ "$BUCKET" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || usage_error "--s3-bucket '$BUCKET' is not a valid bucket name"
PREFIX="${PREFIX:-$UC}"
[[ "$PREFIX" =~ ^[A-Za-z0-9!_.*()/-]{1,512}$ ]] || usage_error "--s3-prefix '$PREFIX' has characters outside A-Za-z0-9!_.*()/-"
if [[ -n "$REGION" ]]; then
  [[ "$REGION" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || usage_error "--region '$REGION' is not a region name (e.g. us-east-1)"
fi
if [[ -n "$KMS_KEY" ]]; then
  [[ "$KMS_KEY" =~ ^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+|alias/[A-Za-z0-9/_-]+|[0-9a-f-]{36})$ ]] \
    || usage_error "--kms-key-id '$KMS_KEY' is not a key id, key ARN or alias"
fi
OUTPUT="${OUTPUT:-$ROOT/.build/$UC/packaged.yaml}"

# --- the shared layer -------------------------------------------------------------------------
layer_args=(--quiet)
[[ $DRY_RUN -eq 1 ]] && layer_args+=(--dry-run)
if [[ $SKIP_LAYER -eq 0 ]]; then
  "$ROOT/scripts/build-layer.sh" "${layer_args[@]}" || die "building the layer failed"
elif [[ ! -d "$ROOT/.build/layer/python/shared" ]]; then
  die "--skip-layer given but .build/layer/python/shared does not exist (run scripts/build-layer.sh)"
fi

# --- CodeVersion: a hash of everything the functions run ----------------------------------------
code_files() {
  (cd "$ROOT" && find "$UC/functions" .build/layer -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print 2>/dev/null \
    | LC_ALL=C sort)
}
code_version() {
  local file
  while IFS= read -r file; do
    printf '%s %s\n' "$file" "$(sha256sum "$ROOT/$file" | cut -d' ' -f1)"
  done < <(code_files) | sha256sum | cut -c1-16
}
[[ -n "$(cd "$ROOT" && find "$UC/functions" -name handler.py -print -quit)" ]] || die "$UC/functions has no handler.py"
CODE_VERSION="$(code_version)"

cmd=(aws cloudformation package --template-file "$TEMPLATE" --s3-bucket "$BUCKET" --s3-prefix "$PREFIX"
  --output-template-file "$OUTPUT")
[[ -n "$REGION" ]] && cmd+=(--region "$REGION")
[[ -n "$KMS_KEY" ]] && cmd+=(--kms-key-id "$KMS_KEY")

if [[ $DRY_RUN -eq 1 ]]; then
  printf 'would run:'; printf ' %q' "${cmd[@]}"; echo
  echo "CodeVersion=$CODE_VERSION"
  exit 0
fi

command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not on PATH"
mkdir -p "$(dirname "$OUTPUT")"
"${cmd[@]}" || die "aws cloudformation package failed"
[[ -s "$OUTPUT" ]] || die "aws cloudformation package did not write $OUTPUT"
echo "packaged template: $OUTPUT"
echo "CodeVersion=$CODE_VERSION"
