# shellcheck shell=bash
# The one library every script in scripts/ sources (tested by tests/scripts/test_common_sh.py):
#
#   messages    log (stderr), die (exit 1), usage_error (exit 2, "(see --help)"), all prefixed
#               with the script's name
#   arguments   need_value / need_arg for options that take a value; check_arg KIND OPTION VALUE
#               against the AWS argument patterns (is_aws_region, is_stack_name, is_stack_ref,
#               is_s3_bucket_name, is_kms_key_id, is_access_point_arn, is_http_url)
#   dry run     quote_cmd (shell-quoted words), run_cmd (runs, or prints "would run: ..." on
#               stdout when DRY_RUN=1)
#   python      build_python (the interpreter a build runs: an override, the project's .venv,
#               python3.13)
#   mirrors     debian_mirror (the machine's configured Debian mirror, from its apt sources),
#               resolve_debian_mirror (--mirror, else DEBIAN_MIRROR, else debian_mirror),
#               check_debian_mirror (does it serve a suite?)
#
# QUIET=1 silences log (not die or usage_error).
#
# Conventions: stdout carries what a script produces (tables, tags, the dry-run plan, help);
# stderr carries progress and errors. Source it with
#   # shellcheck source=SCRIPTDIR/lib/common.sh
#   source "$ROOT/scripts/lib/common.sh"
# after `set -euo pipefail`. Sourcing only defines functions and patterns and sets SCRIPT_NAME and
# DRY_RUN=0 and QUIET=0 (never inherited from the environment).

# The name messages start with: the file name of the script that sourced this library.
SCRIPT_NAME="$(basename -- "${BASH_SOURCE[-1]}")"
DRY_RUN=0
QUIET=0

# --- messages ------------------------------------------------------------------------------------
# log MESSAGE...: one progress line on stderr, unless QUIET=1.
log() {
  [[ "$QUIET" -eq 1 ]] || printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
}

# die MESSAGE...: a failure of the work itself; exit 1.
die() {
  printf '%s: ERROR: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

# usage_error MESSAGE...: the command line is wrong; exit 2.
usage_error() {
  printf '%s: %s (see --help)\n' "$SCRIPT_NAME" "$*" >&2
  exit 2
}

# --- the build interpreter -------------------------------------------------------------------
# build_python VALUE VARIABLE: prints VALUE when it is set, else $ROOT/.venv/bin/python when it
# exists, else python3.13 when it is on PATH; otherwise dies naming VARIABLE, the environment
# variable that sets VALUE. Call as PYTHON="$(build_python "${VAR:-}" VAR)" || exit 1.
build_python() {
  if [[ -n "${1-}" ]]; then printf '%s\n' "$1"
  elif [[ -x "$ROOT/.venv/bin/python" ]]; then printf '%s\n' "$ROOT/.venv/bin/python"
  elif command -v python3.13 >/dev/null 2>&1; then printf '%s\n' python3.13
  else die "no Python found: run scripts/setup.sh or set $2"; fi
}

# --- option values -------------------------------------------------------------------------------
# need_value OPTION ARGC [VALUE [WHAT]]: OPTION must be followed by a non-empty VALUE that is not
# itself an option (--...). Call as `need_value "$1" "$#" "${2-}"` inside the argument loop.
# WHAT names the expected value in the message (default "a value").
need_value() {
  local option="$1" argc="$2" value="${3-}" what="${4:-a value}"
  [[ "$argc" -ge 2 && -n "$value" && "$value" != --* ]] || usage_error "$option needs $what"
}

# need_arg OPTION ARGC: OPTION must be followed by an argument, which may be empty or start with
# dashes (pass-through arguments such as --pytest-args "-k x").
need_arg() {
  local option="$1" argc="$2"
  [[ "$argc" -ge 2 ]] || usage_error "$option needs a value"
}

# --- AWS argument patterns -------------------------------------------------------------------------
# Each is_* returns 0 when its one argument is well-formed, 1 otherwise; check_arg turns a
# mismatch into a usage error that names the option and what was expected.
RE_AWS_REGION='^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
RE_AWS_PARTITION='^aws(-cn|-us-gov)?$'
RE_AWS_ACCOUNT='^[0-9]{12}$'
RE_STACK_NAME='^[A-Za-z][A-Za-z0-9-]{0,127}$'
RE_KMS_KEY_UUID='^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$'
RE_KMS_ALIAS='^alias/[A-Za-z0-9/_-]{1,250}$'
RE_ACCESS_POINT_NAME='^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$'
RE_HTTP_URL='^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^[:space:]]*)?$'

is_aws_region() { [[ "${1-}" =~ $RE_AWS_REGION ]]; }

# A Region belongs to exactly one partition: cn-* to aws-cn, us-gov-* to aws-us-gov, the rest to aws.
region_in_partition() {
  local partition="$1" region="$2"
  case "$partition" in
    aws-cn) [[ "$region" == cn-* ]] ;;
    aws-us-gov) [[ "$region" == us-gov-* ]] ;;
    aws) [[ "$region" != cn-* && "$region" != us-gov-* ]] ;;
    *) return 1 ;;
  esac
}

# arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE with a known partition, a Region of that
# partition and a 12-digit account; prints RESOURCE.
arn_resource() {
  local value="$1" service="$2" prefix partition arn_service region account resource
  IFS=: read -r prefix partition arn_service region account resource <<<"$value" || return 1
  [[ "$prefix" == arn && "$arn_service" == "$service" ]] || return 1
  [[ "$partition" =~ $RE_AWS_PARTITION && "$account" =~ $RE_AWS_ACCOUNT ]] || return 1
  is_aws_region "$region" && region_in_partition "$partition" "$region" || return 1
  [[ -n "$resource" ]] || return 1
  printf '%s\n' "$resource"
}

is_stack_name() { [[ "${1-}" =~ $RE_STACK_NAME ]]; }

# A stack name, or a stack ARN (arn:...:cloudformation:REGION:ACCOUNT:stack/NAME/ID).
is_stack_ref() {
  local value="${1-}" resource name id
  is_stack_name "$value" && return 0
  resource="$(arn_resource "$value" cloudformation)" || return 1
  [[ "$resource" == stack/*/* ]] || return 1
  name="${resource#stack/}"; id="${name#*/}"; name="${name%%/*}"
  is_stack_name "$name" && [[ -n "$id" && "$id" != */* ]]
}

# S3 general purpose bucket naming rules: 3-63 characters of lowercase letters, digits, dots and
# hyphens, a letter or digit at both ends, no "..", not an IPv4 address, none of the reserved
# prefixes (xn--, sthree-, amzn-s3-demo-) and suffixes (-s3alias, --ol-s3, .mrap, --x-s3).
is_s3_bucket_name() {
  local value="${1-}"
  [[ "$value" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || return 1
  [[ "$value" != *..* ]] || return 1
  [[ ! "$value" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
  case "$value" in
    xn--* | sthree-* | amzn-s3-demo-* | *-s3alias | *--ol-s3 | *.mrap | *--x-s3) return 1 ;;
  esac
}

# A KMS key as the AWS CLI's --kms-key-id takes it: key id (also a multi-Region mrk- id), key
# ARN, alias name (alias/NAME) or alias ARN.
is_kms_key_id() {
  local value="${1-}" resource
  [[ "$value" =~ $RE_KMS_KEY_UUID || "$value" =~ $RE_KMS_ALIAS ]] && return 0
  resource="$(arn_resource "$value" kms)" || return 1
  if [[ "$resource" == key/* ]]; then [[ "${resource#key/}" =~ $RE_KMS_KEY_UUID ]]
  else [[ "$resource" =~ $RE_KMS_ALIAS ]]; fi
}

# An S3 access point ARN (arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME), the rules of
# shared/s3ap.py's AccessPoint.parse: an alias is not an ARN and is refused.
is_access_point_arn() {
  local resource name
  resource="$(arn_resource "${1-}" s3)" || return 1
  [[ "$resource" == accesspoint/* ]] || return 1
  name="${resource#accesspoint/}"
  [[ "$name" =~ $RE_ACCESS_POINT_NAME && "$name" != *-s3alias ]]
}

is_http_url() { [[ "${1-}" =~ $RE_HTTP_URL ]]; }

# check_arg KIND OPTION VALUE: usage error unless is_KIND VALUE.
check_arg() {
  local kind="$1" option="$2" value="$3" expected
  case "$kind" in
    aws_region) expected="an AWS Region name (e.g. us-east-1)" ;;
    stack_name) expected="a valid stack name (letters, digits, hyphens; starts with a letter; at most 128)" ;;
    stack_ref) expected="a stack name (letters, digits, hyphens; starting with a letter) or stack ARN" ;;
    s3_bucket_name) expected="a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)" ;;
    kms_key_id) expected="a KMS key id, key ARN, alias name (alias/NAME) or alias ARN" ;;
    access_point_arn) expected="an S3 access point ARN (arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME)" ;;
    http_url) expected="an http(s) URL" ;;
    *) die "check_arg: unknown kind '$kind'" ;;
  esac
  "is_$kind" "$value" || usage_error "$option '$value' is not $expected"
}

# --- dry run -------------------------------------------------------------------------------------
# quote_cmd WORD...: the words as one shell command line (each word quoted only when needed,
# so the line pastes back into a shell as the same words).
quote_cmd() {
  local word quoted=() safe='^[A-Za-z0-9_@%+=:,./-]+$'
  for word in "$@"; do
    if [[ "$word" =~ $safe ]]; then quoted+=("$word")
    else quoted+=("'${word//\'/\'\\\'\'}'"); fi
  done
  printf '%s\n' "${quoted[*]}"
}

# run_cmd CMD...: runs CMD; with DRY_RUN=1 prints "NAME: [dry-run] would run: CMD" on stdout
# instead and returns 0.
run_cmd() {
  if [[ "$DRY_RUN" -eq 1 ]]; then
    printf '%s: [dry-run] would run: %s\n' "$SCRIPT_NAME" "$(quote_cmd "$@")"
    return 0
  fi
  "$@"
}

# --- the machine's configured Debian mirror --------------------------------------------------------
# APT_SOURCES_DIR: the directory holding sources.list and sources.list.d/ (default /etc/apt; the
# tests point it at sample files). DEBIAN_MIRROR, when set, is used instead of the discovery.
#
# debian_mirror: prints the URI of the first enabled Debian archive source, in apt's reading order
# (sources.list, then sources.list.d/*.list and *.sources by name), in both formats:
#   one-line  deb [options] URI SUITE COMPONENT...        (.list; "#" starts a comment,
#                                                           [enabled=no] switches a line off)
#   deb822    Types: / URIs: / Suites: / Enabled: stanzas  (.sources)
# A source counts when it is enabled (deb822 Enabled: no is skipped; files with other endings,
# such as *.list.disabled, are not read, as by apt), has the type deb (deb-src alone is skipped),
# an http(s) URI and a suite of Debian's main archive (a release codename or class such as
# bookworm, trixie, stable, sid, optionally -updates/-backports/-proposed-updates). The security
# archive (-security suites) and other origins (other distributions, vendor repositories) never
# count. The URI is printed without a trailing slash. Returns 1, printing nothing, when no
# source qualifies.
RE_DEBIAN_SUITE='^(jessie|stretch|buster|bullseye|bookworm|trixie|forky|duke|sid|oldoldstable|oldstable|stable|testing|unstable|experimental)(-updates|-backports|-backports-sloppy|-proposed-updates)?$'

debian_mirror() {
  local dir="${APT_SOURCES_DIR:-/etc/apt}" file files=() uri
  [[ -f "$dir/sources.list" ]] && files+=("$dir/sources.list")
  if [[ -d "$dir/sources.list.d" ]]; then
    while IFS= read -r file; do files+=("$file"); done < <(
      find "$dir/sources.list.d" -maxdepth 1 -type f \( -name '*.list' -o -name '*.sources' \) -print | LC_ALL=C sort)
  fi
  for file in "${files[@]}"; do
    if [[ "$file" == *.sources ]]; then uri="$(_debian_uri_deb822 < <(cat -- "$file"; printf '\n\n'))" || continue
    else uri="$(_debian_uri_one_line < <(cat -- "$file"; printf '\n'))" || continue; fi
    printf '%s\n' "${uri%/}"
    return 0
  done
  return 1
}

# One stanza's or line's verdict: TYPES URI... -- SUITE... qualifies?
_debian_source_uri() {
  local types="$1" uris="$2" suites="$3" word suite_ok=0
  [[ " $types " == *" deb "* ]] || return 1
  for word in $suites; do [[ "$word" =~ $RE_DEBIAN_SUITE ]] && suite_ok=1; done
  [[ $suite_ok -eq 1 ]] || return 1
  for word in $uris; do
    if is_http_url "$word"; then printf '%s\n' "$word"; return 0; fi
  done
  return 1
}

_debian_uri_one_line() {
  local line type rest uri suite options
  while IFS= read -r line; do
    line="${line%%#*}"
    read -r type rest <<<"$line"  # a here-string ends in a newline: read returns 0
    [[ -n "${type:-}" ]] || continue
    # [option=value ...] between the type and the URI; enabled=no switches the line off
    if [[ "$rest" == \[* ]]; then
      [[ "$rest" == *\]* ]] || continue
      options="${rest%%]*}"
      rest="${rest#*]}"
      [[ " ${options#[} " != *" enabled=no "* ]] || continue
    fi
    read -r uri suite _ <<<"$rest"
    _debian_source_uri "$type" "${uri:-}" "${suite:-}" && return 0
  done
  return 1
}

# Reads one deb822 file followed by a blank line (debian_mirror appends it), so that every stanza,
# the last one included, ends at a blank line. A line starting with white space continues the
# previous field; field names are case-insensitive; "#" lines are comments.
_debian_uri_deb822() {
  local line key value field="" types="" uris="" suites="" enabled="yes"
  while IFS= read -r line; do
    [[ "$line" == \#* ]] && continue
    if [[ -z "${line//[[:space:]]/}" ]]; then
      if [[ "${enabled,,}" != "no" ]] && _debian_source_uri "$types" "$uris" "$suites"; then return 0; fi
      types="" uris="" suites="" enabled="yes" field=""
      continue
    fi
    if [[ "$line" == [[:space:]]* ]]; then
      value="$line"
    elif [[ "$line" == *:* ]]; then
      key="${line%%:*}"; field="${key,,}"; value="${line#*:}"
    else
      field=""; value=""
    fi
    case "$field" in
      types) types+=" $value" ;;
      uris) uris+=" $value" ;;
      suites) suites+=" $value" ;;
      enabled) enabled="${value//[[:space:]]/}" ;;
    esac
  done
  return 1
}

# resolve_debian_mirror [OVERRIDE]: the mirror a build uses, printed without a trailing slash:
# OVERRIDE (the script's --mirror) when given, else $DEBIAN_MIRROR when set, else the machine's
# configured Debian mirror (debian_mirror). An override that is not an http(s) URL is a usage
# error; a bad DEBIAN_MIRROR or no mirror at all exits 1 with a clear message.
resolve_debian_mirror() {
  local override="${1-}" mirror
  if [[ -n "$override" ]]; then
    is_http_url "$override" || usage_error "--mirror '$override' is not an http(s) URL"
    printf '%s\n' "${override%/}"
    return 0
  fi
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
    is_http_url "$DEBIAN_MIRROR" || die "DEBIAN_MIRROR '$DEBIAN_MIRROR' is not an http(s) URL"
    printf '%s\n' "${DEBIAN_MIRROR%/}"
    return 0
  fi
  local dir="${APT_SOURCES_DIR:-/etc/apt}"
  mirror="$(debian_mirror)" || die "no Debian mirror configured: no enabled deb source of Debian's archive" \
    "in $dir/sources.list or $dir/sources.list.d/*.list, *.sources; pass --mirror URL"
  printf '%s\n' "$mirror"
}

# check_debian_mirror MIRROR SUITE: the mirror must serve dists/SUITE/InRelease; exits 1 naming the
# mirror and curl's error otherwise (a refused connection fails at once, a silent one in 30 s).
check_debian_mirror() {
  local mirror="$1" suite="$2" err
  command -v curl >/dev/null 2>&1 || die "curl not found: it checks the Debian mirror $mirror"
  if ! err="$(curl -fsS --connect-timeout 10 --max-time 30 -o /dev/null "$mirror/dists/$suite/InRelease" 2>&1)"; then
    die "the Debian mirror $mirror does not serve $suite (GET dists/$suite/InRelease: ${err:-no reply});" \
      "check the machine's apt sources or pass --mirror URL"
  fi
}
