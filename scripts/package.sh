#!/usr/bin/env bash
# Packages a use-case stack for deployment: builds the shared layer, uploads every local code path
# of <uc>/template-deploy.yaml (function folders, the layer) with `aws cloudformation package`, and
# prints one code hash per function (<Name>CodeHash for <Name>Function) and the deploy command that
# passes them. A function's hash covers its folder, the layer and its own resource block in the
# template, so with EnableSnapStart=true exactly the functions that changed get a new published
# version (docs/snapstart.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/build.sh
source "$ROOT/scripts/lib/build.sh"

usage() {
  cat <<'EOF'
Usage: scripts/package.sh --uc USE_CASE --s3-bucket BUCKET [--s3-prefix PREFIX] [--region REGION]
                          [--kms-key-id KEY] [--output-template FILE] [--stack-name NAME] [--skip-layer]
                          [--dry-run] [--help]

  --uc USE_CASE          use-case folder holding template-deploy.yaml (e.g. semiconductor-eda)
  --s3-bucket BUCKET     bucket that receives the code artifacts (same region as the stack)
  --s3-prefix PREFIX     key prefix for the artifacts (default: the use-case name)
  --region REGION        AWS region (default: the AWS CLI's configured region)
  --kms-key-id KEY       KMS key for the uploaded artifacts (default: the bucket's encryption)
  --stack-name NAME      stack name to put in the printed deploy command (default: STACK)
  --output-template FILE packaged template to write (default: .build/<use-case>/packaged.yaml)
  --skip-layer           do not run scripts/build-layer.sh (the layer must already be built)
  --dry-run              print the commands it would run and the code hashes; upload nothing
  --help                 show this help

It prints one <Name>CodeHash=<hash> line per function and the deploy command to run, for example:
  aws cloudformation deploy --template-file .build/semiconductor-eda/packaged.yaml \
    --s3-bucket my-artifacts --s3-prefix semiconductor-eda --stack-name STACK \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --parameter-overrides AccessPointArn=arn:aws:s3:... DiscoveryCodeHash=<hash> ...
--s3-bucket is required there too: the packaged template is larger than the 51,200 bytes that
aws cloudformation deploy sends inline.
EOF
}

UC=""
BUCKET=""
PREFIX=""
REGION=""
KMS_KEY=""
STACK=""
OUTPUT=""
SKIP_LAYER=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --uc) need_value "$1" "$#" "${2-}"; UC="$2"; shift ;;
    --s3-bucket) need_value "$1" "$#" "${2-}"; BUCKET="$2"; shift ;;
    --s3-prefix) need_value "$1" "$#" "${2-}"; PREFIX="$2"; shift ;;
    --region) need_value "$1" "$#" "${2-}"; REGION="$2"; shift ;;
    --kms-key-id) need_value "$1" "$#" "${2-}"; KMS_KEY="$2"; shift ;;
    --stack-name) need_value "$1" "$#" "${2-}"; STACK="$2"; shift ;;
    --output-template) need_value "$1" "$#" "${2-}"; OUTPUT="$2"; shift ;;
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
check_use_case --uc "$UC"
check_arg s3_bucket_name --s3-bucket "$BUCKET"
PREFIX="${PREFIX:-$UC}"
[[ "$PREFIX" =~ ^[A-Za-z0-9!_.*()/-]{1,512}$ ]] || usage_error "--s3-prefix '$PREFIX' has characters outside A-Za-z0-9!_.*()/-"
[[ -z "$REGION" ]] || check_arg aws_region --region "$REGION"
[[ -z "$KMS_KEY" ]] || check_arg kms_key_id --kms-key-id "$KMS_KEY"
[[ -z "$STACK" ]] || check_arg stack_name --stack-name "$STACK"
OUTPUT="${OUTPUT:-$ROOT/.build/$UC/packaged.yaml}"

build_layer "$SKIP_LAYER" "$UC"
compute_code_hashes "$UC"
package_command "$UC" "$BUCKET" "$PREFIX" "$OUTPUT" "$REGION" "$KMS_KEY"

print_result() {
  printf '%s\n' "${CODE_HASHES[@]}"
  local deploy=(aws cloudformation deploy --template-file "$OUTPUT" --s3-bucket "$BUCKET" --s3-prefix "$PREFIX")
  [[ -n "$REGION" ]] && deploy+=(--region "$REGION")
  [[ -n "$KMS_KEY" ]] && deploy+=(--kms-key-id "$KMS_KEY")
  echo "deploy with (add the stack's own parameters, e.g. AccessPointArn=...), or run scripts/deploy.sh:"
  quote_cmd "${deploy[@]}" --stack-name "${STACK:-STACK}" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --parameter-overrides "${CODE_HASHES[@]}"
}

run_package "$OUTPUT"
[[ "$DRY_RUN" -eq 1 ]] || echo "packaged template: $OUTPUT"
print_result
