#!/usr/bin/env bash
# Packages a use-case stack for deployment: builds the shared layer, uploads every local code path
# of <uc>/template-deploy.yaml (function folders, the layer) with `aws cloudformation package`, and
# prints one code hash per function (<Name>CodeHash for <Name>Function) and the deploy command that
# passes them. A function's hash covers its folder, the layer and its own resource block in the
# template, so with EnableSnapStart=true exactly the functions that changed get a new published
# version (docs/snapstart.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

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
    --capabilities CAPABILITY_IAM --parameter-overrides AccessPointArn=arn:aws:s3:... \
    DiscoveryCodeHash=<hash> MetadataExtractionCodeHash=<hash> ...
--s3-bucket is required there too: the packaged template is larger than the 51,200 bytes that
aws cloudformation deploy sends inline.
EOF
}

die() { echo "package.sh: ERROR: $*" >&2; exit 1; }
usage_error() { echo "package.sh: $* (see --help)" >&2; exit 2; }

UC=""
BUCKET=""
PREFIX=""
REGION=""
KMS_KEY=""
STACK=""
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
    --stack-name) need_value "$@"; STACK="$2"; shift ;;
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
if [[ -n "$STACK" ]]; then
  [[ "$STACK" =~ ^[A-Za-z][A-Za-z0-9-]{0,127}$ ]] || usage_error "--stack-name '$STACK' is not a stack name (a letter, then letters, digits, hyphens; at most 128)"
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

# --- code hashes: one per function --------------------------------------------------------------
# The functions of the template: "<logical id> <code path>" for every AWS::Lambda::Function whose
# Code is a local folder (the layout every use-case template follows: resources at two spaces,
# Type at four, Code at six).
template_functions() {
  awk '
    function flush() { if (type == "AWS::Lambda::Function") print id, code }
    /^Resources:[[:space:]]*$/ { inres = 1; next }
    inres && /^[^[:space:]#]/ { flush(); inres = 0; id = ""; type = ""; code = "" }
    inres && /^  [A-Za-z0-9]+:[[:space:]]*$/ { flush(); id = $1; sub(/:$/, "", id); type = ""; code = "" }
    inres && /^    Type:/ { type = $2 }
    inres && /^      Code:/ { code = $2 }
    END { if (inres) flush() }
  ' "$TEMPLATE"
}
# The text of one resource block of the template (from "  <id>:" to the next resource).
resource_block() {
  awk -v id="$1" '
    /^Resources:[[:space:]]*$/ { inres = 1; next }
    inres && /^[^[:space:]#]/ { inres = 0 }
    inres && /^  [A-Za-z0-9]+:[[:space:]]*$/ { on = ($1 == id ":") }
    inres && on { print }
  ' "$TEMPLATE"
}
# "<sha256>  <path>" for every file under a folder (paths relative to the repository), sorted
# bytewise: the same tree always gives the same listing, whatever the file times. A wheel's RECORD
# is left out: it only lists the other files' hashes (which are in the listing themselves) plus the
# console scripts' hashes, which depend on the build interpreter's path (build-layer.sh drops them).
tree_digest() {
  [[ -d "$ROOT/$1" ]] || return 0
  (cd "$ROOT" && find "$1" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.dist-info/RECORD' -print0 \
    | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
declared_parameter() {
  awk -v name="$1" '
    /^Parameters:[[:space:]]*$/ { inpar = 1; next }
    inpar && /^[^[:space:]#]/ { inpar = 0 }
    inpar && $0 == "  " name ":" { found = 1 }
    END { exit found ? 0 : 1 }
  ' "$TEMPLATE"
}

mapfile -t functions < <(template_functions)
[[ ${#functions[@]} -gt 0 ]] || die "$UC/template-deploy.yaml declares no AWS::Lambda::Function"
if [[ ! -d "$ROOT/.build/layer" ]]; then
  echo "package.sh: note: .build/layer is not built (dry run): the hashes cover no layer files" >&2
fi
LAYER_DIGEST="$(tree_digest .build/layer | sha256sum | cut -d' ' -f1)"
overrides=()
for entry in "${functions[@]}"; do
  logical="${entry%% *}"
  code="${entry#* }"
  [[ "$logical" == *Function ]] || die "function $logical: logical ids of functions end in 'Function'"
  [[ "$code" =~ ^functions/[a-z0-9_]+$ ]] || die "function $logical: Code must be a local folder functions/<name> (found '$code')"
  [[ -f "$ROOT/$UC/$code/handler.py" ]] || die "function $logical: $UC/$code/handler.py not found"
  param="${logical%Function}CodeHash"
  declared_parameter "$param" || die "function $logical: the template declares no parameter $param"
  hash="$({
    echo "layer $LAYER_DIGEST"
    echo "definition $(resource_block "$logical" | sha256sum | cut -d' ' -f1)"
    tree_digest "$UC/$code"
  } | sha256sum | cut -c1-16)"
  overrides+=("$param=$hash")
done

cmd=(aws cloudformation package --template-file "$TEMPLATE" --s3-bucket "$BUCKET" --s3-prefix "$PREFIX"
  --output-template-file "$OUTPUT")
[[ -n "$REGION" ]] && cmd+=(--region "$REGION")
[[ -n "$KMS_KEY" ]] && cmd+=(--kms-key-id "$KMS_KEY")

print_result() {
  printf '%s\n' "${overrides[@]}"
  local deploy=(aws cloudformation deploy --template-file "$OUTPUT" --s3-bucket "$BUCKET" --s3-prefix "$PREFIX")
  [[ -n "$REGION" ]] && deploy+=(--region "$REGION")
  [[ -n "$KMS_KEY" ]] && deploy+=(--kms-key-id "$KMS_KEY")
  echo "deploy with (add the stack's own parameters, e.g. AccessPointArn=...):"
  printf ' %q' "${deploy[@]}" --stack-name "${STACK:-STACK}" --capabilities CAPABILITY_IAM --parameter-overrides "${overrides[@]}"
  echo
}

if [[ $DRY_RUN -eq 1 ]]; then
  printf 'would run:'; printf ' %q' "${cmd[@]}"; echo
  print_result
  exit 0
fi

command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not on PATH"
mkdir -p "$(dirname "$OUTPUT")"
"${cmd[@]}" || die "aws cloudformation package failed"
[[ -s "$OUTPUT" ]] || die "aws cloudformation package did not write $OUTPUT"
echo "packaged template: $OUTPUT"
print_result
