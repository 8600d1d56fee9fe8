# shellcheck shell=bash
# The one implementation of a use case's build, shared by scripts/package.sh and scripts/deploy.sh
# (tested through both in tests/scripts/test_package.py and tests/scripts/test_deploy.py):
#
#   build_layer SKIP [UC]       runs scripts/build-layer.sh (with --dry-run when DRY_RUN=1), or with
#                               SKIP=1 checks that .build/layer is already built; also the media
#                               layer when UC's template attaches it
#   compute_code_hashes UC      sets CODE_HASHES to one "<Name>CodeHash=<hash>" per function of
#                               UC/template-deploy.yaml; a function's hash covers its folder, the
#                               built layer and its own resource block (docs/snapstart.md)
#   package_command UC BUCKET PREFIX OUTPUT [REGION [KMS_KEY]]
#                               sets PACKAGE_CMD to the `aws cloudformation package` call
#   run_package OUTPUT          runs PACKAGE_CMD (prints it when DRY_RUN=1), checks OUTPUT was written
#   template_declares UC NAME   does UC/template-deploy.yaml declare parameter NAME?
#   check_use_case OPTION UC    usage error unless UC is a folder with a template-deploy.yaml
#
# Source it after scripts/lib/common.sh, with ROOT set to the repository root.

# "<logical id> <code path>" for every AWS::Lambda::Function whose Code is a local folder (the
# layout every use-case template follows: resources at two spaces, Type at four, Code at six).
_template_functions() {
  awk '
    function flush() { if (type == "AWS::Lambda::Function") print id, code }
    /^Resources:[[:space:]]*$/ { inres = 1; next }
    inres && /^[^[:space:]#]/ { flush(); inres = 0; id = ""; type = ""; code = "" }
    inres && /^  [A-Za-z0-9]+:[[:space:]]*$/ { flush(); id = $1; sub(/:$/, "", id); type = ""; code = "" }
    inres && /^    Type:/ { type = $2 }
    inres && /^      Code:/ { code = $2 }
    END { if (inres) flush() }
  ' "$1"
}

# The text of one resource block of a template (from "  <id>:" to the next resource).
_resource_block() {
  awk -v id="$2" '
    /^Resources:[[:space:]]*$/ { inres = 1; next }
    inres && /^[^[:space:]#]/ { inres = 0 }
    inres && /^  [A-Za-z0-9]+:[[:space:]]*$/ { on = ($1 == id ":") }
    inres && on { print }
  ' "$1"
}

# "<sha256>  <path>" for every file under a folder (paths relative to the repository), sorted
# bytewise: the same tree always gives the same listing, whatever the file times. A wheel's RECORD
# is left out: it only lists the other files' hashes (which are in the listing themselves) plus the
# console scripts' hashes, which depend on the build interpreter's path (build-layer.sh drops them).
_tree_digest() {
  [[ -d "$ROOT/$1" ]] || return 0
  (cd "$ROOT" && find "$1" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.dist-info/RECORD' -print0 \
    | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

# template_declares UC NAME: 0 when the Parameters section of UC/template-deploy.yaml has NAME.
template_declares() {
  awk -v name="$2" '
    /^Parameters:[[:space:]]*$/ { inpar = 1; next }
    inpar && /^[^[:space:]#]/ { inpar = 0 }
    inpar && $0 == "  " name ":" { found = 1 }
    END { exit found ? 0 : 1 }
  ' "$ROOT/$1/template-deploy.yaml"
}

# build_layer SKIP [UC]: the shared layer every template points at (Content: ../.build/layer), and
# the UC9 media layer (../.build/layer-media) when UC's template points at it too.
build_layer() {
  local skip="$1" uc="${2-}" args=(--quiet) flavour flavours=("")
  [[ "$DRY_RUN" -eq 1 ]] && args+=(--dry-run)
  [[ -n "$uc" ]] && _uses_media_layer "$uc" && flavours+=(--media)
  for flavour in "${flavours[@]}"; do
    local out=".build/layer${flavour:+-media}"
    if [[ "$skip" -eq 0 && "$DRY_RUN" -eq 1 ]]; then
      "$ROOT/scripts/build-layer.sh" "${args[@]}" ${flavour:+"$flavour"} || die "building $out failed"
    elif [[ "$skip" -eq 0 ]]; then
      # its result line is progress here: stdout carries the script's own result
      "$ROOT/scripts/build-layer.sh" "${args[@]}" ${flavour:+"$flavour"} >&2 || die "building $out failed"
    elif [[ ! -d "$ROOT/$out/python" ]]; then
      die "--skip-layer given but $out/python does not exist (run scripts/build-layer.sh${flavour:+ $flavour})"
    fi
  done
}

# _uses_media_layer UC: does UC's template attach the media layer?
_uses_media_layer() { grep -q '\.build/layer-media' "$ROOT/$1/template-deploy.yaml"; }

# compute_code_hashes UC: CODE_HASHES=("<Name>CodeHash=<16 hex>" ...), in template order. Dies when
# a function breaks the layout the hash relies on (Code: functions/<name> with a handler.py, a
# logical id ending in Function, a declared <Name>CodeHash parameter).
CODE_HASHES=()
compute_code_hashes() {
  local uc="$1" template="$ROOT/$1/template-deploy.yaml" entry logical code param hash layer_digest media_digest block functions=()
  mapfile -t functions < <(_template_functions "$template")
  [[ ${#functions[@]} -gt 0 ]] || die "$uc/template-deploy.yaml declares no AWS::Lambda::Function"
  if [[ ! -d "$ROOT/.build/layer" ]]; then
    log "note: .build/layer is not built (dry run): the hashes cover no layer files"
  fi
  layer_digest="$(_tree_digest .build/layer | sha256sum | cut -d' ' -f1)"
  # Only a template that attaches the media layer follows it (200 MB to read: 0.66 s a run).
  media_digest=""
  if _uses_media_layer "$uc"; then media_digest="$(_tree_digest .build/layer-media | sha256sum | cut -d' ' -f1)"; fi
  CODE_HASHES=()
  for entry in "${functions[@]}"; do
    logical="${entry%% *}"
    code="${entry#* }"
    [[ "$logical" == *Function ]] || die "function $logical: logical ids of functions end in 'Function'"
    [[ "$code" =~ ^functions/[a-z0-9_]+$ ]] || die "function $logical: Code must be a local folder functions/<name> (found '$code')"
    [[ -f "$ROOT/$uc/$code/handler.py" ]] || die "function $logical: $uc/$code/handler.py not found"
    param="${logical%Function}CodeHash"
    template_declares "$uc" "$param" || die "function $logical: the template declares no parameter $param"
    block="$(_resource_block "$template" "$logical")"
    hash="$({
      echo "layer $layer_digest"
      # a function that attaches the media layer (Layers: !Ref MediaLayer) follows it too
      [[ "$block" != *MediaLayer* ]] || echo "media layer $media_digest"
      echo "definition $(sha256sum <<<"$block" | cut -d' ' -f1)"
      _tree_digest "$uc/$code"
    } | sha256sum | cut -c1-16)"
    CODE_HASHES+=("$param=$hash")
  done
}

# package_command UC BUCKET PREFIX OUTPUT [REGION [KMS_KEY]]: PACKAGE_CMD=(aws cloudformation package ...).
PACKAGE_CMD=()
package_command() {
  local uc="$1" bucket="$2" prefix="$3" output="$4" region="${5-}" kms="${6-}"
  PACKAGE_CMD=(aws cloudformation package --template-file "$ROOT/$uc/template-deploy.yaml" --s3-bucket "$bucket"
    --s3-prefix "$prefix" --output-template-file "$output")
  [[ -z "$region" ]] || PACKAGE_CMD+=(--region "$region")
  [[ -z "$kms" ]] || PACKAGE_CMD+=(--kms-key-id "$kms")
}

# run_package: runs PACKAGE_CMD (or prints it when DRY_RUN=1) and checks the packaged template.
run_package() {
  local output="$1"
  if [[ "$DRY_RUN" -eq 1 ]]; then
    run_cmd "${PACKAGE_CMD[@]}"
    return 0
  fi
  command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not on PATH"
  mkdir -p "$(dirname "$output")"
  "${PACKAGE_CMD[@]}" || die "aws cloudformation package failed"
  [[ -s "$output" ]] || die "aws cloudformation package did not write $output"
}

# check_use_case UC: usage error unless UC names a use-case folder with a template-deploy.yaml.
check_use_case() {
  local option="$1" uc="$2"
  [[ "$uc" =~ ^[a-z0-9][a-z0-9-]*$ ]] || usage_error "$option '$uc' must be a use-case folder name such as semiconductor-eda"
  [[ -f "$ROOT/$uc/template-deploy.yaml" ]] || usage_error "$option '$uc': $uc/template-deploy.yaml not found"
}
