#!/usr/bin/env bash
# Turns Lambda SnapStart on (or off) for a deployed use-case stack and proves it took effect.
#
# SnapStart applies only to published versions, so "on" means more than a flag: the stack update
# (EnableSnapStart=true, every other parameter unchanged) publishes a version per function and
# points the alias at it, and the state machine must invoke the alias. After the update this
# script checks, for every function of the stack:
#   - the alias points at a published version (not $LATEST);
#   - that version has SnapStart ApplyOn=PublishedVersions and OptimizationStatus=On;
#   - the state machine definitions invoke the alias ARN (never the function itself or $LATEST).
# With --disable it checks the reverse: no aliases, SnapStart off, the functions invoked directly.
# It prints a table and exits 1 on any mismatch.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'EOF'
Usage: scripts/enable-snapstart.sh STACK [--region R] [--disable] [--dry-run] [--wait-timeout S] [--help]

Updates STACK with EnableSnapStart=true (or false with --disable), keeping the previous template
and every other parameter's previous value, waits for the update, then verifies every function
of the stack and prints a table. Exits 1 if anything does not match.

  STACK             name or ARN of a stack created from a <use-case>/template-deploy.yaml
  --region R        AWS region of the stack (default: the AWS CLI's configured region)
  --disable         turn SnapStart off instead (EnableSnapStart=false)
  --dry-run         print the update it would make; make no change and skip the verification
  --wait-timeout S  seconds to wait for the stack update (default 1800)
  --help            show this help

Needs the AWS CLI v2 and jq. Permissions: cloudformation:DescribeStacks, UpdateStack,
ListStackResources, DescribeStackEvents; lambda:GetAlias, GetFunctionConfiguration;
states:DescribeStateMachine (plus whatever the stack update itself needs).
EOF
}

STACK=""
REGION=""
TARGET="true"
DRY_RUN=0
WAIT_TIMEOUT=1800
# Seconds between status polls while waiting (the tests set 0).
POLL_SECONDS="${ENABLE_SNAPSTART_POLL_SECONDS:-10}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --region) need_value "$1" "$#" "${2-}"; check_arg aws_region "$1" "$2"; REGION="$2"; shift ;;
    --disable) TARGET="false" ;;
    --dry-run) DRY_RUN=1 ;;
    --wait-timeout)
      need_value "$1" "$#" "${2-}"
      [[ "$2" =~ ^[1-9][0-9]{0,5}$ ]] || usage_error "--wait-timeout '$2' must be a positive number of seconds"
      WAIT_TIMEOUT="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
      [[ -z "$STACK" ]] || usage_error "only one STACK may be given (got '$STACK' and '$1')"
      STACK="$1" ;;
  esac
  shift
done

[[ -n "$STACK" ]] || usage_error "STACK is required"
check_arg stack_ref STACK "$STACK"
[[ "$POLL_SECONDS" =~ ^[0-9]+$ ]] || usage_error "ENABLE_SNAPSTART_POLL_SECONDS must be a whole number"
command -v aws >/dev/null || die "the AWS CLI (aws) is not on PATH"
command -v jq >/dev/null || die "jq is not on PATH"

AWS=(aws --output json)
[[ -z "$REGION" ]] || AWS+=(--region "$REGION")

# --- the stack as it is ------------------------------------------------------------------------
describe_stack() { "${AWS[@]}" cloudformation describe-stacks --stack-name "$STACK"; }

stack_json="$(describe_stack)" || die "cannot describe stack '$STACK'"
status="$(jq -r '.Stacks[0].StackStatus // empty' <<<"$stack_json")"
[[ -n "$status" ]] || die "stack '$STACK' not found in the describe-stacks reply"
case "$status" in
  CREATE_COMPLETE | UPDATE_COMPLETE | UPDATE_ROLLBACK_COMPLETE | IMPORT_COMPLETE | IMPORT_ROLLBACK_COMPLETE) ;;
  *) die "stack '$STACK' is $status; it must be in a *_COMPLETE state to be updated" ;;
esac
jq -e '.Stacks[0].Parameters // [] | any(.ParameterKey == "EnableSnapStart")' <<<"$stack_json" >/dev/null \
  || die "stack '$STACK' has no EnableSnapStart parameter: it was not created from a template of this project"
current="$(jq -r '.Stacks[0].Parameters[] | select(.ParameterKey == "EnableSnapStart") | .ParameterValue' <<<"$stack_json")"

# --- update ------------------------------------------------------------------------------------
# EnableSnapStart gets its new value; every other parameter keeps its previous one (NoEcho
# values included: UsePreviousValue never needs to know them).
mapfile -t parameters < <(jq -r --arg target "$TARGET" '.Stacks[0].Parameters[] |
  if .ParameterKey == "EnableSnapStart" then "ParameterKey=EnableSnapStart,ParameterValue=\($target)"
  else "ParameterKey=\(.ParameterKey),UsePreviousValue=true" end' <<<"$stack_json")
mapfile -t capabilities < <(jq -r '.Stacks[0].Capabilities // [] | .[]' <<<"$stack_json")
[[ ${#capabilities[@]} -gt 0 ]] || capabilities=(CAPABILITY_IAM)
update=("${AWS[@]}" cloudformation update-stack --stack-name "$STACK" --use-previous-template
  --parameters "${parameters[@]}" --capabilities "${capabilities[@]}")

if [[ $DRY_RUN -eq 1 ]]; then
  log "stack $STACK is $status with EnableSnapStart=$current"
  if [[ "$current" == "$TARGET" ]]; then
    log "dry run: EnableSnapStart is already $TARGET; no update would be made"
  else
    run_cmd "${update[@]}"
  fi
  log "dry run: would wait up to ${WAIT_TIMEOUT}s for the update, then verify every function"
  exit 0
fi

wait_for_update() {
  local deadline=$((SECONDS + WAIT_TIMEOUT)) state reasons
  while :; do
    state="$(describe_stack | jq -r '.Stacks[0].StackStatus')" || die "cannot describe stack '$STACK' while waiting"
    case "$state" in
      UPDATE_COMPLETE) log "stack update complete"; return 0 ;;
      UPDATE_ROLLBACK_COMPLETE | UPDATE_ROLLBACK_FAILED | UPDATE_FAILED | ROLLBACK_COMPLETE | ROLLBACK_FAILED)
        reasons="$("${AWS[@]}" cloudformation describe-stack-events --stack-name "$STACK" \
          | jq -r '[.StackEvents[] | select(.ResourceStatus | endswith("FAILED"))][:5][]
                   | "  \(.LogicalResourceId): \(.ResourceStatusReason // "no reason given")"')" || reasons="  (events unavailable)"
        die "stack update failed ($state):"$'\n'"$reasons" ;;
    esac
    ((SECONDS < deadline)) || die "stack still $state after ${WAIT_TIMEOUT}s (--wait-timeout)"
    sleep "$POLL_SECONDS"
  done
}

if [[ "$current" == "$TARGET" ]]; then
  log "EnableSnapStart is already $TARGET on $STACK; no update needed, verifying"
else
  log "updating $STACK: EnableSnapStart $current -> $TARGET"
  update_out=""
  if ! update_out="$("${update[@]}" 2>&1)"; then
    if grep -q "No updates are to be performed" <<<"$update_out"; then
      log "CloudFormation reports no changes; verifying"
    else
      echo "$update_out" >&2
      die "update-stack failed"
    fi
  else
    wait_for_update
  fi
fi

# --- verify ------------------------------------------------------------------------------------
resources="$("${AWS[@]}" cloudformation list-stack-resources --stack-name "$STACK")" \
  || die "cannot list the resources of '$STACK'"
mapfile -t functions < <(jq -r '.StackResourceSummaries[] | select(.ResourceType == "AWS::Lambda::Function")
  | .PhysicalResourceId' <<<"$resources" | sort)
mapfile -t aliases < <(jq -r '.StackResourceSummaries[] | select(.ResourceType == "AWS::Lambda::Alias")
  | .PhysicalResourceId' <<<"$resources")
mapfile -t machines < <(jq -r '.StackResourceSummaries[] | select(.ResourceType == "AWS::StepFunctions::StateMachine")
  | .PhysicalResourceId' <<<"$resources")
[[ ${#functions[@]} -gt 0 ]] || die "stack '$STACK' has no Lambda functions"
[[ ${#machines[@]} -gt 0 ]] || die "stack '$STACK' has no state machine"

# Every Lambda ARN the state machines invoke: lambda:invoke FunctionName values and direct
# Lambda Task resources, from every definition.
invoked=""
for machine in "${machines[@]}"; do
  definition="$("${AWS[@]}" stepfunctions describe-state-machine --state-machine-arn "$machine" | jq -r '.definition')" \
    || die "cannot describe state machine $machine"
  invoked+="$(jq -r '[.. | objects | (.FunctionName?, .Resource?) | strings
    | select(test("^arn:aws[a-z-]*:lambda:"))] | .[]' <<<"$definition")"$'\n'
done

# How the state machines invoke the function with ARN $1: function, $LATEST, qualifier:<alias or
# version>, several of these comma-separated, or none.
invocation_of() {
  local arn="$1" line kinds=()
  while IFS= read -r line; do
    [[ -n "$line" ]] || continue
    if [[ "$line" == "$arn" ]]; then kinds+=("function")
    elif [[ "$line" == "$arn:\$LATEST" ]]; then kinds+=("\$LATEST")
    elif [[ "$line" == "$arn:"* ]]; then kinds+=("qualifier:${line#"$arn:"}")
    fi
  done <<<"$invoked"
  if [[ ${#kinds[@]} -eq 0 ]]; then echo "none"; else printf '%s\n' "${kinds[@]}" | sort -u | paste -sd, -; fi
}

mismatches=0
rows=()
for function in "${functions[@]}"; do
  config="$("${AWS[@]}" lambda get-function-configuration --function-name "$function")" \
    || die "cannot read the configuration of $function"
  function_arn="$(jq -r '.FunctionArn' <<<"$config")"
  alias_arn=""
  for candidate in "${aliases[@]}"; do
    [[ "$candidate" == "$function_arn:"* ]] && alias_arn="$candidate"
  done
  how="$(invocation_of "$function_arn")"
  problems=()
  if [[ "$TARGET" == "true" ]]; then
    pointer="-" snap="-"
    if [[ -z "$alias_arn" ]]; then
      problems+=("no alias in the stack")
    else
      alias_name="${alias_arn##*:}"
      version="$("${AWS[@]}" lambda get-alias --function-name "$function" --name "$alias_name" \
        | jq -r '.FunctionVersion')" || die "cannot read alias $alias_arn"
      pointer="$alias_name -> $version"
      if [[ ! "$version" =~ ^[0-9]+$ ]]; then
        problems+=("alias points at $version, not a published version")
      else
        snap="$("${AWS[@]}" lambda get-function-configuration --function-name "$function" --qualifier "$version" \
          | jq -r '"\(.SnapStart.ApplyOn // "None")/\(.SnapStart.OptimizationStatus // "Off")"')" \
          || die "cannot read version $version of $function"
        [[ "$snap" == "PublishedVersions/On" ]] || problems+=("version $version SnapStart is $snap, not PublishedVersions/On")
      fi
      [[ "$how" == "qualifier:$alias_name" ]] || problems+=("state machine invokes it as '$how', not through alias $alias_name")
    fi
  else
    pointer="${alias_arn:+${alias_arn##*:} (left over)}"
    pointer="${pointer:--}"
    snap="$(jq -r '"\(.SnapStart.ApplyOn // "None")/\(.SnapStart.OptimizationStatus // "Off")"' <<<"$config")"
    [[ -z "$alias_arn" ]] || problems+=("alias $alias_arn still exists")
    [[ "$snap" == None/* ]] || problems+=("SnapStart is $snap on \$LATEST")
    [[ "$how" == "function" ]] || problems+=("state machine invokes it as '$how', not as the function")
  fi
  if [[ ${#problems[@]} -eq 0 ]]; then
    verdict="OK"
  else
    verdict="MISMATCH: $(IFS=';'; echo "${problems[*]}")"
    mismatches=$((mismatches + 1))
  fi
  rows+=("$function|$pointer|$snap|$how|$verdict")
done

# Aligned columns with awk (no dependency on column(1)).
{
  echo "FUNCTION|ALIAS -> VERSION|SNAPSTART (ApplyOn/Optimization)|STATE MACHINE INVOKES|RESULT"
  printf '%s\n' "${rows[@]}"
} | awk -F'|' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > width[i]) width[i] = length($i) }
                 if (NF > cols) cols = NF }
               END { for (r = 1; r <= NR; r++) { line = ""
                       for (i = 1; i < cols; i++) line = line sprintf("%-" width[i] + 2 "s", cell[r, i])
                       print line cell[r, cols] } }'

[[ $mismatches -eq 0 ]] || die "$mismatches of ${#functions[@]} functions do not match EnableSnapStart=$TARGET"
# The result, on stdout (the table above is too).
echo "$SCRIPT_NAME: all ${#functions[@]} functions match EnableSnapStart=$TARGET"
