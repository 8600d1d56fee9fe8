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
STACKSET_TEMPLATE="$ROOT/guard-rules/hook-stackset-template.yaml"
RULES_DIR="$ROOT/guard-rules"
BUILD_DIR="${DEPLOY_HOOKS_BUILD_DIR:-$ROOT/.build/guard-hook}"
GUARD_CHECK="${GUARD_CHECK:-$ROOT/scripts/guard-check.sh}"

FAILURE_MODE="WARN"
REGION=""
STACK_NAME="fsxn-guard-hook"
ALIAS="FsxnPipelines::Governance::GuardHook"
RULES_KEY="guard-rules/rules.tar.gz"
TEMPLATE_KEY="guard-rules/hook-template.yaml"
STACK_SET=0
REGIONS=""
ORG_UNITS=""
CALL_AS="SELF"

usage() {
  cat <<EOF
Usage: scripts/deploy-hooks.sh [--failure-mode WARN|FAIL] [--region REGION] [--stack-name NAME]
                               [--alias A::B::C] [--dry-run] [--help]
       scripts/deploy-hooks.sh --stack-set --region REGION --regions R1,R2 --org-units OU,...
                               [--call-as SELF|DELEGATED_ADMIN] [other options as above]

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
With --stack-set (run in the management account or a delegated administrator), steps 3-6 deploy
the central hook stack in --region, its rules bucket readable by the organization's accounts, then:
  7. upload guard-rules/hook-template.yaml next to the archive (skipped when unchanged)
  8. aws cloudformation deploy of guard-rules/hook-stackset-template.yaml (stack NAME-stackset):
     a service-managed StackSet that creates the hook stack, enabled and pinned to the same
     archive version in the central bucket, in every account of --org-units in every --regions
  9. verify: every stack instance of the StackSet is SUCCEEDED; a failure exits 1

  --failure-mode MODE  WARN (default: findings are reported, operations go on) or FAIL (non-compliant
                       operations are stopped). FAIL is used only when given here, on every run.
  --region REGION      AWS Region (default: the AWS CLI's configured Region)
  --stack-name NAME    hook stack name (default: $STACK_NAME)
  --alias ALIAS        hook type alias, Part::Part::Part, not starting with AWS (default: $ALIAS)
  --stack-set          also roll the hook out to the organization (steps 7-9); needs --region,
                       --regions and --org-units
  --regions LIST       target Regions of the StackSet, comma-separated (e.g. eu-west-1,us-east-1)
  --org-units LIST     target organizational units, comma-separated (ou-... ids, or the root r-...)
  --call-as WHO        SELF (management account, default) or DELEGATED_ADMIN
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
    --stack-set) STACK_SET=1 ;;
    --regions) need_value "$1" "$#" "${2-}"; REGIONS="$2"; shift ;;
    --org-units) need_value "$1" "$#" "${2-}"; ORG_UNITS="$2"; shift ;;
    --call-as) need_value "$1" "$#" "${2-}"; CALL_AS="$2"; shift ;;
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

if [[ $STACK_SET -eq 1 ]]; then
  [[ -n "$REGION" ]] || usage_error "--stack-set needs --region (the Region of the central rules bucket)"
  [[ -n "$REGIONS" ]] || usage_error "--stack-set needs --regions"
  [[ -n "$ORG_UNITS" ]] || usage_error "--stack-set needs --org-units"
  IFS=',' read -r -a REGION_LIST <<<"$REGIONS"
  for item in "${REGION_LIST[@]}"; do check_arg aws_region --regions "$item"; done
  IFS=',' read -r -a OU_LIST <<<"$ORG_UNITS"
  for item in "${OU_LIST[@]}"; do
    [[ "$item" =~ ^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$ ]] \
      || usage_error "--org-units '$item' is not an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)"
  done
  [[ "$CALL_AS" == "SELF" || "$CALL_AS" == "DELEGATED_ADMIN" ]] \
    || usage_error "--call-as must be SELF or DELEGATED_ADMIN, not '$CALL_AS'"
else
  [[ -z "$REGIONS" && -z "$ORG_UNITS" ]] || usage_error "--regions and --org-units need --stack-set"
fi
STACKSET_STACK_NAME="$STACK_NAME-stackset"
STEPS=6
[[ $STACK_SET -eq 0 ]] || STEPS=9
[[ ${#STACKSET_STACK_NAME} -le 128 ]] || usage_error "--stack-name is too long for the StackSet stack name"

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
    "RulesObjectKey=$RULES_KEY" "${ORG_PARAMS[@]}" "$@"
}

# The bucket name a dry run prints while the stack (and so its bucket) does not exist yet.
PLACEHOLDER_BUCKET="RULES-BUCKET-FROM-STACK-OUTPUT"

# upload_versioned FILE KEY WHAT: sets UPLOADED_VERSION to the version of s3://$BUCKET/KEY that
# holds FILE's bytes: the current version when its sha256 metadata matches (no upload), else a new
# version uploaded now. A head-object error other than "not found" stops the run.
upload_versioned() {
  local file="$1" key="$2" what="$3" sha current current_version current_sha err
  sha="$(sha256sum "$file" | cut -d' ' -f1)"
  UPLOADED_VERSION=""
  if [[ "$BUCKET" != "$PLACEHOLDER_BUCKET" ]]; then
    err="$(mktemp)"
    if current="$(aws_read s3api head-object --bucket "$BUCKET" --key "$key" \
      --query '[VersionId, Metadata.sha256]' --output text 2>"$err")"; then
      read -r current_version current_sha <<<"$current"
      [[ "$current_sha" != "$sha" ]] || UPLOADED_VERSION="$current_version"
    elif ! grep -qE '\(404\)|Not Found|NoSuchKey' "$err"; then
      cat "$err" >&2
      rm -f "$err"
      die "cannot read s3://$BUCKET/$key"
    fi
    rm -f "$err"
  fi
  if [[ -n "$UPLOADED_VERSION" ]]; then
    log "    unchanged: s3://$BUCKET/$key version $UPLOADED_VERSION already holds this $what"
    return 0
  fi
  if [[ $DRY_RUN -eq 1 ]]; then
    aws_write s3api put-object --bucket "$BUCKET" --key "$key" --body "$file" \
      --metadata "sha256=$sha" --query VersionId --output text
    UPLOADED_VERSION="VERSION-ID-FROM-PUT-OBJECT"
    return 0
  fi
  UPLOADED_VERSION="$(aws_write s3api put-object --bucket "$BUCKET" --key "$key" --body "$file" \
    --metadata "sha256=$sha" --query VersionId --output text)" || die "upload of the $what failed"
  [[ -n "$UPLOADED_VERSION" && "$UPLOADED_VERSION" != "None" && "$UPLOADED_VERSION" != "null" ]] \
    || die "the rules bucket returned no VersionId for the $what (is versioning enabled?)"
  log "    uploaded s3://$BUCKET/$key version $UPLOADED_VERSION"
}

# Steps 7-9 (--stack-set): the hook template next to the archive, the StackSet, its instances.
deploy_stack_set() {
  local bucket="$1" rules_version="$2" url
  log "7/9 uploading the hook stack template"
  upload_versioned "$TEMPLATE" "$TEMPLATE_KEY" "hook stack template"
  url="https://$bucket.s3.$REGION.amazonaws.com/$TEMPLATE_KEY?versionId=$UPLOADED_VERSION"

  log "8/9 deploying StackSet stack $STACKSET_STACK_NAME: OUs $ORG_UNITS, Regions $REGIONS"
  aws_write cloudformation deploy \
    --stack-name "$STACKSET_STACK_NAME" \
    --template-file "$STACKSET_TEMPLATE" \
    --no-fail-on-empty-changeset \
    --parameter-overrides "HookTemplateUrl=$url" "OrganizationalUnitIds=$ORG_UNITS" "Regions=$REGIONS" \
    "CallAs=$CALL_AS" "FailureMode=$FAILURE_MODE" "Alias=$ALIAS" "RulesBucketName=$bucket" \
    "RulesObjectKey=$RULES_KEY" "RulesObjectVersionId=$rules_version"
  [[ $DRY_RUN -eq 0 ]] || return 0

  log "9/9 verifying every stack instance of $STACKSET_STACK_NAME-guard-hook"
  local stack_set_name pending
  stack_set_name="$(aws_read cloudformation describe-stacks --stack-name "$STACKSET_STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='StackSetName'].OutputValue | [0]" --output text)" \
    || die "cannot read the outputs of stack $STACKSET_STACK_NAME"
  [[ -n "$stack_set_name" && "$stack_set_name" != "None" ]] || die "stack $STACKSET_STACK_NAME has no StackSetName output"
  pending="$(aws_read cloudformation list-stack-instances --stack-set-name "$stack_set_name" --call-as "$CALL_AS" \
    --query "Summaries[?StackInstanceStatus.DetailedStatus!='SUCCEEDED'].[Account, Region, StackInstanceStatus.DetailedStatus]" \
    --output text)" || die "cannot list the stack instances of $stack_set_name"
  [[ -z "$pending" || "$pending" == "None" ]] \
    || die "stack instances of $stack_set_name not SUCCEEDED (account, Region, status): $pending"
  echo "$SCRIPT_NAME: done: StackSet $stack_set_name rolled out the hook ($FAILURE_MODE, rules version $rules_version) to $ORG_UNITS in $REGIONS"
}

# --- 1. validate the rules locally ------------------------------------------------------------
log "1/${STEPS} validating guard rules and templates ($GUARD_CHECK)"
"$GUARD_CHECK" || die "guard rules or templates failed validation; nothing was deployed"

# --- 2. build the rules archive -----------------------------------------------------------------
log "2/${STEPS} building the rules archive"
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

# The StackSet mode lets the organization's accounts read the central archive.
ORG_PARAMS=()
if [[ $STACK_SET -eq 1 && $DRY_RUN -eq 1 ]]; then
  ORG_ID="$(aws_read organizations describe-organization --query Organization.Id --output text 2>/dev/null)" \
    || ORG_ID="ORGANIZATION-ID"
  ORG_PARAMS=("OrganizationId=$ORG_ID")
elif [[ $STACK_SET -eq 1 ]]; then
  ORG_ID="$(aws_read organizations describe-organization --query Organization.Id --output text)" \
    || die "cannot describe the organization (run in the management account or a delegated administrator)"
  [[ "$ORG_ID" =~ ^o-[a-z0-9]{10,32}$ ]] || die "describe-organization returned no organization id (got '$ORG_ID')"
  ORG_PARAMS=("OrganizationId=$ORG_ID")
fi

# --- 3. first creation only: the bucket and role, no hook yet -----------------------------------
# The hook exists once the stack has a GuardHookArn output. Then this step is skipped: deploying
# HookStatus=DISABLED here would switch enforcement off until step 5, and leave it off if a later
# step failed or the run were interrupted.
HOOK_STATE="$(hook_state)" || die "cannot describe stack $STACK_NAME"
case "$HOOK_STATE" in
  absent | no-hook)
    log "3/${STEPS} deploying stack $STACK_NAME (rules bucket and role; the hook is created in step 5)"
    deploy_stack DISABLED ;;
  hook)
    log "3/${STEPS} stack $STACK_NAME has an enabled hook: it stays enabled while the rules version is swapped" ;;
esac

# --- 4. upload the archive ----------------------------------------------------------------------
log "4/${STEPS} uploading the rules archive"
BUCKET=""
if [[ $DRY_RUN -eq 1 ]]; then
  # The stack may not exist yet: a dry run then names the output instead of the bucket.
  BUCKET="$(stack_output RulesBucketName 2>/dev/null)" || BUCKET=""
else
  BUCKET="$(stack_output RulesBucketName)" || die "cannot read the outputs of stack $STACK_NAME"
  [[ -n "$BUCKET" && "$BUCKET" != "None" ]] || die "stack $STACK_NAME has no RulesBucketName output"
fi

[[ -n "$BUCKET" && "$BUCKET" != "None" ]] || BUCKET="$PLACEHOLDER_BUCKET"
upload_versioned "$ARCHIVE" "$RULES_KEY" "rules archive"
VERSION_ID="$UPLOADED_VERSION"

# --- 5. point the hook at the new version, enabled ------------------------------------------------
log "5/${STEPS} enabling the hook ($FAILURE_MODE) on s3://$BUCKET/$RULES_KEY version $VERSION_ID"
deploy_stack ENABLED "RulesObjectVersionId=$VERSION_ID"

if [[ $DRY_RUN -eq 1 ]]; then
  log "6/${STEPS} [dry-run] would verify that the hook's role can read version $VERSION_ID"
  [[ $STACK_SET -eq 0 ]] || deploy_stack_set "$BUCKET" "$VERSION_ID"
  log "dry run: no change was made"
  exit 0
fi
HOOK_ARN="$(stack_output GuardHookArn)" || die "cannot read the outputs of stack $STACK_NAME"
[[ -n "$HOOK_ARN" && "$HOOK_ARN" != "None" ]] || die "stack $STACK_NAME has no GuardHookArn output after enabling"

# --- 6. verify the hook can read the pinned rules version -----------------------------------------
# A hook in FAIL mode that cannot load its rules blocks every stack operation of the account and
# Region: check the object version exists and that the execution role's policy allows what the
# hook does with it (list the bucket, get the object version) before reporting success.
log "6/${STEPS} verifying that the hook can read s3://$BUCKET/$RULES_KEY version $VERSION_ID"
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
if [[ $STACK_SET -eq 0 ]]; then
  # The result, on stdout.
  echo "$SCRIPT_NAME: done: $HOOK_ARN enabled in $FAILURE_MODE mode with rules version $VERSION_ID (readable by its role)"
  exit 0
fi
log "central hook $HOOK_ARN enabled with rules version $VERSION_ID"
deploy_stack_set "$BUCKET" "$VERSION_ID"

