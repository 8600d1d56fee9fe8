#!/usr/bin/env bash
# Client-side run of the Guard rules that the Guard Hook enforces server-side:
#   1. `cfn-guard test` of every guard-rules/*.guard file with guard-rules/tests/<name>_tests.yaml;
#      any expectation mismatch, parse error, empty test file, or rule without both a PASS and a
#      FAIL expectation fails.
#   2. `cfn-guard validate` of every CloudFormation template in the repository (git ls-files
#      '*template*.yaml' / '*.yml', tracked and untracked) against every rule file; any finding
#      fails. Suppress a justified finding in the template (guard-rules/README.md), never here.
# Zero rule files, zero tests or zero templates is an error, never a pass.
set -euo pipefail

SCRIPT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$SCRIPT_ROOT/scripts/lib/common.sh"
ROOT="$SCRIPT_ROOT"
CFN_GUARD="${CFN_GUARD:-}"
PYTHON="${PYTHON:-}"
declare -a EXPLICIT_TEMPLATES=()

usage() {
  cat <<EOF
Usage: scripts/guard-check.sh [--root DIR] [--template FILE]... [--help]

Runs the cfn-guard unit tests of every rule file in DIR/guard-rules and validates every
CloudFormation template of the git checkout DIR against all rule files.

  --root DIR       repository to check (default: this repository)
  --template FILE  validate only this template (repeatable) instead of discovering them
  --help           show this help

Environment:
  CFN_GUARD  cfn-guard 3.x binary (default: <this repository>/.tools/bin/cfn-guard)
  PYTHON     Python 3 used to read cfn-guard's JSON output (default: <this repository>/.venv/bin/python)

Exit status: 0 all tests pass and every template is compliant, 1 otherwise, 2 usage error.
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --root)
      need_value "$1" "$#" "${2-}" "a directory"
      [[ -d "$2" ]] || usage_error "--root: no such directory: $2"
      ROOT="$(cd "$2" && pwd)"
      shift ;;
    --template)
      need_value "$1" "$#" "${2-}" "a file"
      [[ -f "$2" ]] || usage_error "--template: no such file: $2"
      EXPLICIT_TEMPLATES+=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")")
      shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

CFN_GUARD="${CFN_GUARD:-$SCRIPT_ROOT/.tools/bin/cfn-guard}"
PYTHON="${PYTHON:-$SCRIPT_ROOT/.venv/bin/python}"
[[ -x "$CFN_GUARD" ]] || die "cfn-guard not found at $CFN_GUARD (run scripts/setup.sh or set CFN_GUARD)"
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (run scripts/setup.sh or set PYTHON)"
"$CFN_GUARD" --version | grep -q '^cfn-guard 3\.' || die "$CFN_GUARD is not cfn-guard 3.x"

RULES_DIR="$ROOT/guard-rules"
TESTS_DIR="$RULES_DIR/tests"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --- what to check --------------------------------------------------------------------------
mapfile -t RULE_FILES < <(find "$RULES_DIR" -maxdepth 1 -type f -name '*.guard' 2>/dev/null | LC_ALL=C sort)
[[ ${#RULE_FILES[@]} -gt 0 ]] || die "no rule files (*.guard) in $RULES_DIR"

if [[ ${#EXPLICIT_TEMPLATES[@]} -gt 0 ]]; then
  TEMPLATES=("${EXPLICIT_TEMPLATES[@]}")
else
  git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$ROOT is not a git checkout (templates are found with git ls-files)"
  TEMPLATES=()
  while IFS= read -r relative; do
    [[ -f "$ROOT/$relative" ]] && TEMPLATES+=("$ROOT/$relative")
  done < <(git -C "$ROOT" ls-files --cached --others --exclude-standard -- '*template*.yaml' '*template*.yml' ':!:tests/**' | LC_ALL=C sort -u)
fi
[[ ${#TEMPLATES[@]} -gt 0 ]] || die "no CloudFormation templates (*template*.yaml) found in $ROOT"

relpath() { local path="$1"; echo "${path#"$ROOT"/}"; }

# Summarizes `cfn-guard test -o json` output: prints mismatches, checks that the file has test
# cases and that every rule declared in the rule file has a PASS and a FAIL expectation.
summarize_tests() {
  "$PYTHON" - "$1" "$2" <<'PY'
import json, re, sys
result_path, rule_path = sys.argv[1], sys.argv[2]
declared = re.findall(r"^\s*rule\s+([A-Za-z0-9_]+)", open(rule_path, encoding="utf-8").read(), re.M)
result = json.load(open(result_path, encoding="utf-8"))
if "error" in result:  # cfn-guard 3.1.1 reports a rule parse error here and still exits 0
    print("      " + " ".join(str(result["error"]).split()))
    print("cfn-guard error", file=sys.stderr)
    sys.exit(1)
cases = result["test_cases"]
problems, seen = [], {name: set() for name in declared}
for case in cases:
    for rule in case["failed_rules"]:
        evaluated = rule["evaluated"] if isinstance(rule["evaluated"], str) else "/".join(rule["evaluated"])
        problems.append(f'case "{case["name"]}": {rule["name"]} expected {rule["expected"]}, evaluated {evaluated}')
    for rule in case["passed_rules"]:
        seen.setdefault(rule["name"], set()).add(rule["evaluated"])
if not cases:
    problems.append("the tests file has no test cases")
if not declared:
    problems.append("the rule file declares no rule")
for name in declared:
    missing = {"PASS", "FAIL"} - seen[name]
    if missing:
        problems.append(f"rule {name} has no test case expecting {' or '.join(sorted(missing))}")
for line in problems:
    print(f"      {line}")
print(f"{len(cases)} cases, {len(declared)} rules", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

# Summarizes `cfn-guard validate -z --output-format json` output: one line per failing check with
# the resource path and the rule's Violation/Fix message (filter internals are left out).
summarize_findings() {
  "$PYTHON" - "$1" <<'PY'
import json, sys

def path_of(check):
    for kind in ("Resolved", "InResolved", "UnResolved"):
        if kind in check:
            node = check[kind]
            node = node.get("value", node.get("from", node))
            node = node.get("traversed_to", node)
            return node.get("path", "?")
    return "?"

def clauses(checks):
    for item in checks:
        if "Clause" in item:
            yield from item["Clause"].values()
        for nested in ("Rule", "Disjunctions", "Block"):
            if nested in item:
                yield from clauses(item[nested].get("checks", []))

for document in json.load(open(sys.argv[1], encoding="utf-8")):
    for entry in document["not_compliant"]:
        rule = entry["Rule"]
        explained = [c for c in clauses(rule["checks"]) if (c.get("messages") or {}).get("custom_message")]
        if explained:
            for clause in explained:
                message = " ".join(clause["messages"]["custom_message"].split())
                print(f"      {rule['name']}  {path_of(clause.get('check', {}))}\n        {message}")
        else:  # never hide a failure that carries no custom message
            errors = [c["messages"]["error_message"] for c in clauses(rule["checks"]) if (c.get("messages") or {}).get("error_message")]
            print(f"      {rule['name']}  " + ("; ".join(errors[:3]) or "failed (no detail from cfn-guard)"))
PY
}

# --- 1. rule unit tests -----------------------------------------------------------------------
echo "guard-check: rule unit tests (cfn-guard test)"
tests_failed=0
declare -A HAS_RULE_FILE=()
for rule_file in "${RULE_FILES[@]}"; do
  name="$(basename "$rule_file" .guard)"
  HAS_RULE_FILE["$name"]=1
  tests_file="$TESTS_DIR/${name}_tests.yaml"
  if [[ ! -f "$tests_file" ]]; then
    echo "  FAIL $(relpath "$rule_file"): no tests file $(relpath "$tests_file")"
    tests_failed=$((tests_failed + 1))
    continue
  fi
  rc=0
  "$CFN_GUARD" test --rules-file "$rule_file" --test-data "$tests_file" --output-format json \
    >"$WORK/test.json" 2>"$WORK/test.err" || rc=$?
  if [[ $rc -ne 0 && $rc -ne 7 ]]; then
    # 1 = parse error in the tests file (a rule parse error comes back as JSON "error", exit 0);
    # anything else is a cfn-guard failure.
    echo "  FAIL $(relpath "$rule_file"): cfn-guard test exited $rc"
    sed 's/^/      /' "$WORK/test.err" "$WORK/test.json"
    tests_failed=$((tests_failed + 1))
    continue
  fi
  summary_rc=0
  summarize_tests "$WORK/test.json" "$rule_file" >"$WORK/test.txt" 2>"$WORK/test.count" || summary_rc=$?
  if [[ $rc -eq 0 && $summary_rc -eq 0 ]]; then
    echo "  PASS $(relpath "$rule_file") ($(cat "$WORK/test.count"))"
  else
    echo "  FAIL $(relpath "$rule_file") ($(cat "$WORK/test.count"))"
    cat "$WORK/test.txt"
    [[ $rc -eq 7 && ! -s "$WORK/test.txt" ]] && echo "      cfn-guard reported an expectation mismatch (exit 7)"
    tests_failed=$((tests_failed + 1))
  fi
done
shopt -s nullglob
for tests_file in "$TESTS_DIR"/*_tests.yaml; do
  name="$(basename "$tests_file" _tests.yaml)"
  if [[ -z "${HAS_RULE_FILE[$name]:-}" ]]; then
    echo "  FAIL $(relpath "$tests_file"): no rule file $name.guard for these tests"
    tests_failed=$((tests_failed + 1))
  fi
done
shopt -u nullglob

# --- 2. templates against all rules ----------------------------------------------------------
echo "guard-check: ${#TEMPLATES[@]} template(s) x ${#RULE_FILES[@]} rule file(s) (cfn-guard validate)"
rule_args=()
for rule_file in "${RULE_FILES[@]}"; do rule_args+=(--rules "$rule_file"); done
templates_failed=0
for template in "${TEMPLATES[@]}"; do
  rc=0
  "$CFN_GUARD" validate "${rule_args[@]}" --data "$template" --structured --show-summary none \
    --output-format json >"$WORK/validate.json" 2>"$WORK/validate.err" || rc=$?
  case $rc in
    0) echo "  PASS $(relpath "$template")" ;;
    19)
      echo "  FAIL $(relpath "$template")"
      summarize_findings "$WORK/validate.json" || sed 's/^/      /' "$WORK/validate.json"
      templates_failed=$((templates_failed + 1)) ;;
    *)
      # 5 = a rule file does not parse; anything else is a cfn-guard failure.
      echo "  FAIL $(relpath "$template"): cfn-guard validate exited $rc"
      sed 's/^/      /' "$WORK/validate.err"
      templates_failed=$((templates_failed + 1)) ;;
  esac
done

echo "guard-check: summary: rule files with failing tests: $tests_failed/${#RULE_FILES[@]}," \
  "non-compliant templates: $templates_failed/${#TEMPLATES[@]}"
if [[ $tests_failed -gt 0 || $templates_failed -gt 0 ]]; then
  echo "guard-check: FAILED"
  exit 1
fi
echo "guard-check: OK"
