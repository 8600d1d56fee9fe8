#!/usr/bin/env bash
# Deploys the Guard Hook that enforces guard-rules/*.guard server-side (guard-rules/hook-template.yaml).
# Order: validate the rules locally -> build the rules archive -> on a first creation only, deploy
# the stack (rules bucket and role; no hook yet) -> upload the archive -> point the hook at the
# uploaded object version, enabled -> verify the hook's role can read that version.
# A rerun never disables an existing hook: it uploads the new archive next to the pinned one and
# swaps the version in one update with HookStatus=ENABLED, so enforcement stays on even when a step
# fails or the run is interrupted. Reruns are idempotent: an unchanged archive is not uploaded again
# (sha256 kept in the object's metadata) and `aws cloudformation deploy` makes no change when
# nothing changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
TEMPLATE="$ROOT/guard-rules/hook-template.yaml"
RULES_DIR="$ROOT/guard-rules"
BUILD_DIR="${DEPLOY_HOOKS_BUILD_DIR:-$ROOT/.build/guard-hook}"
GUARD_CHECK="${GUARD_CHECK:-$ROOT/scripts/guard-check.sh}"

FAILURE_MODE="WARN"
REGION=""
STACK_NAME="fsxn-guard-hook"
ALIAS="FsxnPipelines::Governance::GuardHook"
RULES_KEY="guard-rules/rules.tar.gz"
DRY_RUN=0

usage() {
  cat <<EOF
Usage: scripts/deploy-hooks.sh [--failure-mode WARN|FAIL] [--region REGION] [--stack-name NAME]
                               [--alias A::B::C] [--dry-run] [--help]

Deploys the CloudFormation Guard Hook that evaluates every stack operation of the account and
Region against guard-rules/*.guard (see guard-rules/README.md for the rollout):
  1. scripts/guard-check.sh: cfn-guard unit tests and the repository's templates
  2. build $RULES_KEY from guard-rules/*.guard
  3. first creation only (no hook in the stack yet): aws cloudformation deploy of the rules
     bucket and role; an existing hook is never disabled or redeployed without its rules
  4. upload the archive to the stack's versioned rules bucket (skipped when unchanged)
  5. aws cloudformation deploy with HookStatus=ENABLED, pinned to the archive's VersionId
  6. verify: the pinned version exists and the hook's execution role may list the bucket and
     read that version (iam simulate-principal-policy); a failure exits 1

  --failure-mode MODE  WARN (default: findings are reported, operations go on) or FAIL (non-compliant
                       operations are stopped). FAIL is used only when given here, on every run.
  --region REGION      AWS Region (default: the AWS CLI's configured Region)
  --stack-name NAME    hook stack name (default: $STACK_NAME)
  --alias ALIAS        hook type alias, Part::Part::Part, not starting with AWS (default: $ALIAS)
  --dry-run            validate and build locally, print the AWS calls, make no mutating call
  --help               show this help

Environment: GUARD_CHECK (validation command, default scripts/guard-check.sh),
DEPLOY_HOOKS_BUILD_DIR (where the archive is built, default .build/guard-hook).
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --failure-mode) need_value "$1" "$#" "${2-}"; FAILURE_MODE="$2"; shift ;;
    --region) need_value "$1" "$#" "${2-}"; REGION="$2"; shift ;;
    --stack-name) need_value "$1" "$#" "${2-}"; STACK_NAME="$2"; shift ;;
    --alias) need_value "$1" "$#" "${2-}"; ALIAS="$2"; shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

[[ "$FAILURE_MODE" == "WARN" || "$FAILURE_MODE" == "FAIL" ]] \
  || usage_error "--failure-mode must be WARN or FAIL, not '$FAILURE_MODE'"
[[ -z "$REGION" ]] || check_arg aws_region --region "$REGION"
check_arg stack_name --stack-name "$STACK_NAME"
# The AWS::CloudFormation::GuardHook Alias pattern (three alphanumeric parts, no AWS prefix).
[[ "$ALIAS" =~ ^[A-Za-z0-9]{2,64}::[A-Za-z0-9]{2,64}::[A-Za-z0-9]{2,64}$ && ! "$ALIAS" =~ ^[Aa][Ww][Ss] ]] \
  || usage_error "--alias '$ALIAS' must be Part::Part::Part (letters and digits, 2-64 each) and must not start with AWS"

AWS_ARGS=()
[[ -n "$REGION" ]] && AWS_ARGS+=(--region "$REGION")

# Runs a read-only AWS CLI call (also in dry-run).
aws_read() { aws "${AWS_ARGS[@]}" "$@"; }

# Runs a mutating AWS CLI call, or only prints it (stdout) in dry-run.
aws_write() { run_cmd aws "${AWS_ARGS[@]}" "$@"; }

stack_output() {
  local name="$1"
  aws_read cloudformation describe-stacks --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='$name'].OutputValue | [0]" --output text
}

# Prints "absent" (no stack), "no-hook" (stack without a hook) or "hook"; fails on other errors.
hook_state() {
  local out err rc=0
  err="$(mktemp)"
  out="$(aws_read cloudformation describe-stacks --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='GuardHookArn'].OutputValue | [0]" --output text 2>"$err")" || rc=$?
  if [[ $rc -ne 0 ]]; then
    if grep -q 'does not exist' "$err"; then rm -f "$err"; echo absent; return 0; fi
    cat "$err" >&2; rm -f "$err"; return 1
  fi
  rm -f "$err"
  if [[ -n "$out" && "$out" != "None" ]]; then echo hook; else echo no-hook; fi
}

deploy_stack() {
  local status="$1"; shift
  aws_write cloudformation deploy \
    --stack-name "$STACK_NAME" \
    --template-file "$TEMPLATE" \
    --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset \
    --parameter-overrides "HookStatus=$status" "FailureMode=$FAILURE_MODE" "Alias=$ALIAS" \
    "RulesObjectKey=$RULES_KEY" "$@"
}

# --- 1. validate the rules locally ------------------------------------------------------------
log "1/6 validating guard rules and templates ($GUARD_CHECK)"
"$GUARD_CHECK" || die "guard rules or templates failed validation; nothing was deployed"

# --- 2. build the rules archive -----------------------------------------------------------------
log "2/6 building the rules archive"
shopt -s nullglob
rule_files=("$RULES_DIR"/*.guard)
shopt -u nullglob
[[ ${#rule_files[@]} -gt 0 ]] || die "no *.guard files in $RULES_DIR"
mkdir -p "$BUILD_DIR"
ARCHIVE="$BUILD_DIR/$(basename "$RULES_KEY")"
rule_names=()
for rule_file in "${rule_files[@]}"; do rule_names+=("$(basename "$rule_file")"); done
# Deterministic bytes (sorted names, fixed owner and mtime, no gzip timestamp): an unchanged rule
# set gives the same sha256, so reruns do not upload a new version.
tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner --format=gnu \
  -C "$RULES_DIR" -cf - "${rule_names[@]}" | gzip -n -9 >"$ARCHIVE"
ARCHIVE_SHA256="$(sha256sum "$ARCHIVE" | cut -d' ' -f1)"
log "    $ARCHIVE (${#rule_names[@]} rule files: ${rule_names[*]}; sha256 $ARCHIVE_SHA256)"

if [[ $DRY_RUN -eq 0 ]]; then
  aws_read sts get-caller-identity --query Account --output text >/dev/null \
    || die "the AWS CLI has no working credentials"
fi

# --- 3. first creation only: the bucket and role, no hook yet -----------------------------------
# The hook exists once the stack has a GuardHookArn output. Then this step is skipped: deploying
# HookStatus=DISABLED here would switch enforcement off until step 5, and leave it off if a later
# step failed or the run were interrupted.
HOOK_STATE="$(hook_state)" || die "cannot describe stack $STACK_NAME"
case "$HOOK_STATE" in
  absent | no-hook)
    log "3/6 deploying stack $STACK_NAME (rules bucket and role; the hook is created in step 5)"
    deploy_stack DISABLED ;;
  hook)
    log "3/6 stack $STACK_NAME has an enabled hook: it stays enabled while the rules version is swapped" ;;
esac

# --- 4. upload the archive ----------------------------------------------------------------------
log "4/6 uploading the rules archive"
BUCKET=""
if [[ $DRY_RUN -eq 1 ]]; then
  # The stack may not exist yet: a dry run then names the output instead of the bucket.
  BUCKET="$(stack_output RulesBucketName 2>/dev/null)" || BUCKET=""
else
  BUCKET="$(stack_output RulesBucketName)" || die "cannot read the outputs of stack $STACK_NAME"
  [[ -n "$BUCKET" && "$BUCKET" != "None" ]] || die "stack $STACK_NAME has no RulesBucketName output"
fi

VERSION_ID=""
if [[ -n "$BUCKET" && "$BUCKET" != "None" ]]; then
  head_err="$(mktemp)"
  trap 'rm -f "$head_err"' EXIT
  if current="$(aws_read s3api head-object --bucket "$BUCKET" --key "$RULES_KEY" \
    --query '[VersionId, Metadata.sha256]' --output text 2>"$head_err")"; then
    read -r current_version current_sha <<<"$current"
    if [[ "$current_sha" == "$ARCHIVE_SHA256" ]]; then
      VERSION_ID="$current_version"
      log "    unchanged: s3://$BUCKET/$RULES_KEY version $VERSION_ID already holds these rules"
    fi
  elif ! grep -qE '\(404\)|Not Found|NoSuchKey' "$head_err"; then
    cat "$head_err" >&2
    die "cannot read s3://$BUCKET/$RULES_KEY"
  fi
else
  BUCKET="RULES-BUCKET-FROM-STACK-OUTPUT"
fi

if [[ -z "$VERSION_ID" ]]; then
  if [[ $DRY_RUN -eq 1 ]]; then
    aws_write s3api put-object --bucket "$BUCKET" --key "$RULES_KEY" --body "$ARCHIVE" \
      --metadata "sha256=$ARCHIVE_SHA256" --query VersionId --output text
    VERSION_ID="VERSION-ID-FROM-PUT-OBJECT"
  else
    VERSION_ID="$(aws_write s3api put-object --bucket "$BUCKET" --key "$RULES_KEY" --body "$ARCHIVE" \
      --metadata "sha256=$ARCHIVE_SHA256" --query VersionId --output text)" \
      || die "upload of the rules archive failed"
    [[ -n "$VERSION_ID" && "$VERSION_ID" != "None" && "$VERSION_ID" != "null" ]] \
      || die "the rules bucket returned no VersionId (is versioning enabled?)"
    log "    uploaded s3://$BUCKET/$RULES_KEY version $VERSION_ID"
  fi
fi

# --- 5. point the hook at the new version, enabled ------------------------------------------------
log "5/6 enabling the hook ($FAILURE_MODE) on s3://$BUCKET/$RULES_KEY version $VERSION_ID"
deploy_stack ENABLED "RulesObjectVersionId=$VERSION_ID"

if [[ $DRY_RUN -eq 1 ]]; then
  log "6/6 [dry-run] would verify that the hook's role can read version $VERSION_ID"
  log "dry run: no change was made"
  exit 0
fi
HOOK_ARN="$(stack_output GuardHookArn)" || die "cannot read the outputs of stack $STACK_NAME"
[[ -n "$HOOK_ARN" && "$HOOK_ARN" != "None" ]] || die "stack $STACK_NAME has no GuardHookArn output after enabling"

# --- 6. verify the hook can read the pinned rules version -----------------------------------------
# A hook in FAIL mode that cannot load its rules blocks every stack operation of the account and
# Region: check the object version exists and that the execution role's policy allows what the
# hook does with it (list the bucket, get the object version) before reporting success.
log "6/6 verifying that the hook can read s3://$BUCKET/$RULES_KEY version $VERSION_ID"
aws_read s3api head-object --bucket "$BUCKET" --key "$RULES_KEY" --version-id "$VERSION_ID" \
  --query VersionId --output text >/dev/null \
  || die "the pinned rules version $VERSION_ID is not readable in s3://$BUCKET/$RULES_KEY"
ROLE_ARN="$(stack_output HookExecutionRoleArn)" || die "cannot read the outputs of stack $STACK_NAME"
[[ "$ROLE_ARN" =~ ^arn:(aws[a-z-]*):iam::[0-9]{12}:role/ ]] \
  || die "stack $STACK_NAME has no HookExecutionRoleArn output (got '$ROLE_ARN')"
PARTITION="${BASH_REMATCH[1]}"
denied="$(aws_read iam simulate-principal-policy --policy-source-arn "$ROLE_ARN" \
  --action-names s3:GetObject s3:GetObjectVersion \
  --resource-arns "arn:$PARTITION:s3:::$BUCKET/$RULES_KEY" \
  --query "EvaluationResults[?EvalDecision!='allowed'].EvalActionName" --output text)" \
  || die "cannot simulate the policy of $ROLE_ARN"
denied_list="$(aws_read iam simulate-principal-policy --policy-source-arn "$ROLE_ARN" \
  --action-names s3:ListBucket --resource-arns "arn:$PARTITION:s3:::$BUCKET" \
  --query "EvaluationResults[?EvalDecision!='allowed'].EvalActionName" --output text)" \
  || die "cannot simulate the policy of $ROLE_ARN"
for result in "$denied" "$denied_list"; do
  [[ -z "$result" || "$result" == "None" ]] \
    || die "the hook's role $ROLE_ARN is not allowed: $result (the hook could not load its rules)"
done
# The result, on stdout.
echo "$SCRIPT_NAME: done: $HOOK_ARN enabled in $FAILURE_MODE mode with rules version $VERSION_ID (readable by its role)"
