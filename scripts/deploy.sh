#!/usr/bin/env bash
# Deploys a use case with one command: builds the shared layer and the function code, computes one
# code hash per function (scripts/lib/build.sh, the same build as scripts/package.sh), packages the
# template with `aws cloudformation package`, deploys it with `aws cloudformation deploy
# --s3-bucket` (packaged templates exceed the 51,200-byte inline limit) passing the hashes, waits,
# and prints the stack outputs. On failure it prints the stack's failed events of this operation,
# Guard Hook results included, and exits 1. With --delete it deletes the stack instead and says what
# the buckets left behind still hold; it empties nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/build.sh
source "$ROOT/scripts/lib/build.sh"

usage() {
  cat <<'EOF'
Usage: scripts/deploy.sh USE_CASE --stack-name NAME --artifact-bucket BUCKET [--region R]
                         [--parameter-overrides K=V ...] [--enable-snapstart] [--dry-run] [--delete]
                         [--help]

  USE_CASE                    use-case folder holding template-deploy.yaml (e.g. semiconductor-eda)
  --stack-name NAME           the stack to create or update (or delete)
  --artifact-bucket BUCKET    existing bucket for the code artifacts and the packaged template,
                              in the stack's Region; they go under the prefix NAME/
  --region R                  AWS Region (default: the AWS CLI's configured Region)
  --parameter-overrides K=V   template parameters, as many K=V words as needed (until the next
                              option); a parameter not given keeps its previous value on an
                              update and its Default on a create. <Name>CodeHash values are
                              computed here and cannot be given.
  --enable-snapstart          EnableSnapStart=true: publish a version per function, the state
                              machine invokes the alias (docs/snapstart.md)
  --dry-run                   print every AWS call it would make, with the computed code hashes;
                              call nothing, upload nothing
  --delete                    delete the stack instead (waits); the retained buckets (the output
                              bucket, the artifacts under NAME/) are not emptied: it prints what
                              they still hold
  --help                      show this help

Steps of a deploy: scripts/build-layer.sh; the code hashes; aws cloudformation package; aws
cloudformation deploy --s3-bucket BUCKET --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset
(a rerun with nothing changed succeeds and changes nothing); aws cloudformation describe-stacks
for the outputs. Needs the AWS CLI and jq.
EOF
}

UC=""
STACK=""
BUCKET=""
REGION=""
SNAPSTART=0
DELETE=0
overrides=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --stack-name) need_value "$1" "$#" "${2-}"; check_arg stack_name "$1" "$2"; STACK="$2"; shift ;;
    --artifact-bucket) need_value "$1" "$#" "${2-}"; check_arg s3_bucket_name "$1" "$2"; BUCKET="$2"; shift ;;
    --region) need_value "$1" "$#" "${2-}"; check_arg aws_region "$1" "$2"; REGION="$2"; shift ;;
    --parameter-overrides)
      need_value "$1" "$#" "${2-}" "at least one KEY=VALUE"
      while [[ $# -ge 2 && "$2" != --* ]]; do overrides+=("$2"); shift; done ;;
    --enable-snapstart) SNAPSTART=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --delete) DELETE=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
      [[ -z "$UC" ]] || usage_error "only one USE_CASE may be given (got '$UC' and '$1')"
      UC="${1%/}" ;;
  esac
  shift
done

[[ -n "$UC" ]] || usage_error "USE_CASE is required (e.g. semiconductor-eda)"
check_use_case USE_CASE "$UC"
[[ -n "$STACK" ]] || usage_error "--stack-name is required"
[[ -n "$BUCKET" ]] || usage_error "--artifact-bucket is required"
if [[ $DELETE -eq 1 ]]; then
  [[ ${#overrides[@]} -eq 0 && $SNAPSTART -eq 0 ]] || usage_error "--delete takes no --parameter-overrides or --enable-snapstart"
fi

declare -A given=()
for pair in "${overrides[@]}"; do
  [[ "$pair" == *=* ]] || usage_error "--parameter-overrides '$pair' is not KEY=VALUE"
  key="${pair%%=*}"
  [[ "$key" =~ ^[A-Za-z0-9]+$ ]] || usage_error "--parameter-overrides '$pair': '$key' is not a parameter name"
  template_declares "$UC" "$key" || usage_error "--parameter-overrides '$pair': $UC/template-deploy.yaml declares no parameter $key"
  [[ "$key" != *CodeHash ]] || usage_error "--parameter-overrides '$pair': the code hashes are computed by deploy.sh"
  [[ -z "${given[$key]+set}" ]] || usage_error "--parameter-overrides: $key given twice"
  [[ "$pair" != *$'\n'* ]] || usage_error "--parameter-overrides: the value of $key spans lines"
  given[$key]=1
done
if [[ $SNAPSTART -eq 1 ]]; then
  [[ -z "${given[EnableSnapStart]+set}" ]] || usage_error "give --enable-snapstart or EnableSnapStart=..., not both"
  overrides+=(EnableSnapStart=true)
fi

PREFIX="$STACK"
OUTPUT="$ROOT/.build/$UC/$STACK.packaged.yaml"
REGION_ARGS=()
[[ -z "$REGION" ]] || REGION_ARGS=(--region "$REGION")

# aws_read CMD...: a read-only AWS call whose JSON reply is printed.
aws_read() { aws "$@" "${REGION_ARGS[@]}" --output json; }

# The stack's status, "NONE" when it does not exist; dies on any other error.
stack_status() {
  local reply err
  if reply="$(aws_read cloudformation describe-stacks --stack-name "$STACK" 2>"$tmp/err")"; then
    jq -r '.Stacks[0].StackStatus // "NONE"' <<<"$reply"
  else
    err="$(cat "$tmp/err")"
    [[ "$err" == *"does not exist"* ]] || die "cannot describe stack $STACK: ${err:-no reply}"
    echo NONE
  fi
}

# The failed events of the stack's latest operation (newest first, back to the stack's own
# "User Initiated" event), Guard Hook results included, on stderr.
print_failed_events() {
  local events
  if ! events="$(aws_read cloudformation describe-stack-events --stack-name "$STACK")"; then
    log "the stack's events could not be read"
    return 0
  fi
  jq -r --arg stack "$STACK" '
    .StackEvents as $all
    | ([$all | to_entries[] | select(.value.LogicalResourceId == $stack
          and .value.ResourceStatusReason == "User Initiated") | .key] | first // ($all | length)) as $stop
    | $all[:$stop + 1][]
    | select((.ResourceStatus // "" | endswith("FAILED")) or (.HookStatus // "" | test("FAILED")))
    | if .HookType then
        "  \(.Timestamp) \(.LogicalResourceId) hook \(.HookType) (\(.HookInvocationPoint // "?"), \(.HookFailureMode // "?")) \(.HookStatus): \(.HookStatusReason // "no reason given")"
      else
        "  \(.Timestamp) \(.LogicalResourceId) \(.ResourceType) \(.ResourceStatus): \(.ResourceStatusReason // "no reason given")"
      end' <<<"$events" >"$tmp/failed" || { log "the stack's events could not be parsed"; return 0; }
  if [[ -s "$tmp/failed" ]]; then
    log "failed events of stack $STACK (newest first):"
    cat "$tmp/failed" >&2
  else
    log "stack $STACK has no failed events for this operation (the change set itself may have been refused)"
  fi
}

# "N objects, B bytes" under s3://BUCKET/PREFIX, or dies.
bucket_contents() {
  local bucket="$1" prefix="${2-}" reply args=(s3api list-objects-v2 --bucket "$1")
  [[ -z "$prefix" ]] || args+=(--prefix "$prefix")
  reply="$(aws_read "${args[@]}")" || die "cannot list s3://$bucket/$prefix"
  jq -r '[.Contents // [] | length, (map(.Size) | add // 0)] | "\(.[0]) objects, \(.[1]) bytes"' <<<"${reply:-{\}}"
}

deploy_cmd=(aws cloudformation deploy --template-file "$OUTPUT" --stack-name "$STACK" --s3-bucket "$BUCKET"
  --s3-prefix "$PREFIX" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset "${REGION_ARGS[@]}")
delete_cmd=(aws cloudformation delete-stack --stack-name "$STACK" "${REGION_ARGS[@]}")
wait_delete_cmd=(aws cloudformation wait stack-delete-complete --stack-name "$STACK" "${REGION_ARGS[@]}")

# --- dry run: the calls, in order; nothing is called ---------------------------------------------
if [[ $DRY_RUN -eq 1 ]]; then
  if [[ $DELETE -eq 1 ]]; then
    run_cmd aws cloudformation describe-stacks --stack-name "$STACK" "${REGION_ARGS[@]}" --output json
    run_cmd aws cloudformation list-stack-resources --stack-name "$STACK" "${REGION_ARGS[@]}" --output json
    run_cmd "${delete_cmd[@]}"
    run_cmd "${wait_delete_cmd[@]}"
    run_cmd aws s3api list-objects-v2 --bucket "$BUCKET" --prefix "$PREFIX/" "${REGION_ARGS[@]}" --output json
    exit 0
  fi
  run_cmd aws s3api head-bucket --bucket "$BUCKET" "${REGION_ARGS[@]}" --output json
  run_cmd aws cloudformation describe-stacks --stack-name "$STACK" "${REGION_ARGS[@]}" --output json
  build_layer 0 "$UC"
  compute_code_hashes "$UC"
  package_command "$UC" "$BUCKET" "$PREFIX" "$OUTPUT" "$REGION"
  run_package "$OUTPUT"
  run_cmd "${deploy_cmd[@]}" --parameter-overrides "${overrides[@]}" "${CODE_HASHES[@]}"
  run_cmd aws cloudformation describe-stacks --stack-name "$STACK" "${REGION_ARGS[@]}" --output json
  exit 0
fi

command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not on PATH"
command -v jq >/dev/null 2>&1 || die "jq is not on PATH"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# --- delete ------------------------------------------------------------------------------------
if [[ $DELETE -eq 1 ]]; then
  status="$(stack_status)"
  if [[ "$status" == NONE ]]; then
    log "stack $STACK does not exist: nothing to delete"
  else
    [[ "$status" != *_IN_PROGRESS ]] || die "stack $STACK is $status; wait for it to finish, then rerun"
    resources="$(aws_read cloudformation list-stack-resources --stack-name "$STACK")" \
      || die "cannot list the resources of stack $STACK"
    mapfile -t buckets < <(jq -r '.StackResourceSummaries[] | select(.ResourceType == "AWS::S3::Bucket")
      | .PhysicalResourceId // empty' <<<"$resources")
    log "deleting stack $STACK ($status)"
    "${delete_cmd[@]}" || die "delete-stack failed"
    if ! "${wait_delete_cmd[@]}"; then
      print_failed_events
      die "stack $STACK was not deleted"
    fi
    log "stack $STACK deleted"
    for bucket in "${buckets[@]}"; do
      if aws_read s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
        echo "retained bucket s3://$bucket still holds $(bucket_contents "$bucket") (not emptied;" \
          "remove it with: aws s3 rb s3://$bucket --force)"
      fi
    done
  fi
  echo "artifact bucket s3://$BUCKET/$PREFIX/ still holds $(bucket_contents "$BUCKET" "$PREFIX/") (not emptied;" \
    "remove them with: aws s3 rm s3://$BUCKET/$PREFIX/ --recursive)"
  exit 0
fi

# --- deploy ------------------------------------------------------------------------------------
aws_read s3api head-bucket --bucket "$BUCKET" >/dev/null 2>"$tmp/err" \
  || die "artifact bucket $BUCKET is not reachable (it must exist, in the stack's Region): $(cat "$tmp/err")"
status="$(stack_status)"
case "$status" in
  NONE) log "creating stack $STACK from $UC" ;;
  ROLLBACK_COMPLETE | ROLLBACK_FAILED | DELETE_FAILED)
    die "stack $STACK is $status and cannot be updated; delete it first (scripts/deploy.sh $UC --stack-name $STACK --artifact-bucket $BUCKET --delete)" ;;
  *_IN_PROGRESS) die "stack $STACK is $status; wait for it to finish, then rerun" ;;
  *) log "updating stack $STACK ($status) from $UC" ;;
esac

build_layer 0 "$UC"
compute_code_hashes "$UC"
package_command "$UC" "$BUCKET" "$PREFIX" "$OUTPUT" "$REGION"
run_package "$OUTPUT"
log "packaged template: $OUTPUT"

# aws cloudformation deploy waits for the change set to finish; its output goes to stderr (progress).
if ! "${deploy_cmd[@]}" --parameter-overrides "${overrides[@]}" "${CODE_HASHES[@]}" >"$tmp/deploy" 2>&1; then
  cat "$tmp/deploy" >&2
  print_failed_events
  die "aws cloudformation deploy of stack $STACK failed"
fi
cat "$tmp/deploy" >&2
unchanged=0
grep -q "No changes to deploy" "$tmp/deploy" && unchanged=1

stack="$(aws_read cloudformation describe-stacks --stack-name "$STACK")" || die "cannot describe stack $STACK"
status="$(jq -r '.Stacks[0].StackStatus' <<<"$stack")"
# Nothing changed: the stack keeps the stable state it had (after a rolled-back update too, it
# already runs what was asked).
case "$status" in
  CREATE_COMPLETE | UPDATE_COMPLETE) ok=1 ;;
  UPDATE_ROLLBACK_COMPLETE | IMPORT_COMPLETE | IMPORT_ROLLBACK_COMPLETE) ok=$unchanged ;;
  *) ok=0 ;;
esac
if [[ $ok -eq 0 ]]; then
  print_failed_events
  die "stack $STACK is $status after the deploy"
fi
log "stack $STACK is $status; outputs:"
jq -r '.Stacks[0].Outputs // [] | sort_by(.OutputKey)[] | "\(.OutputKey)\t\(.OutputValue)"' <<<"$stack"
