"""scripts/lib/common.sh, the library every script sources: each helper's exit code and message,
each AWS argument pattern against good and bad values, and the Debian mirror discovery against
sample apt sources in both formats (fake files, no network beyond loopback)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.scripts.conftest import closed_port
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.scripts

LIBRARY = REPO_ROOT / "scripts" / "lib" / "common.sh"
NAME = "my-tool.sh"


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    """A script named my-tool.sh that sources the library, then evaluates its first argument
    (the remaining arguments are its positional parameters)."""
    script = tmp_path / NAME
    script.write_text(
        f'#!/usr/bin/env bash\nset -euo pipefail\nsource {shlex.quote(str(LIBRARY))}\ncode="$1"; shift\neval "$code"\n'
    )
    script.chmod(0o755)
    return script


def run(tool: Path, code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool), code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
        cwd=tool.parent,
    )


# --- messages ------------------------------------------------------------------------------------
def test_log_writes_one_prefixed_line_to_stderr_only(tool):
    result = run(tool, 'log "step 1/3:" building')
    assert (result.returncode, result.stdout, result.stderr) == (0, "", f"{NAME}: step 1/3: building\n")


def test_quiet_silences_log_but_not_errors(tool):
    result = run(tool, 'QUIET=1; log hidden; die "shown"')
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"{NAME}: ERROR: shown\n")


def test_die_exits_1_with_an_error_line(tool):
    result = run(tool, 'die "cannot read stack" x; echo not reached')
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"{NAME}: ERROR: cannot read stack x\n")


def test_usage_error_exits_2_and_points_at_help(tool):
    result = run(tool, "usage_error \"unknown option '--bogus'\"; echo not reached")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"{NAME}: unknown option '--bogus' (see --help)\n"


def test_the_environment_cannot_switch_on_dry_run_or_quiet(tool):
    env = {"PATH": "/usr/bin:/bin", "DRY_RUN": "1", "QUIET": "1"}
    result = run(tool, "log visible; run_cmd touch made", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"{NAME}: visible\n"
    assert (tool.parent / "made").exists()


# --- option values -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "ok"),
    [
        (["--tag", "v1"], True),
        (["--tag", "-x"], True),  # a single dash is a value (e.g. a negative number), not an option
        (["--tag"], False),
        (["--tag", ""], False),
        (["--tag", "--dry-run"], False),
    ],
)
def test_need_value(tool, argv, ok):
    result = run(tool, 'need_value "$1" "$#" "${2-}"; echo accepted', *argv)
    if ok:
        assert (result.returncode, result.stdout, result.stderr) == (0, "accepted\n", "")
    else:
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"{NAME}: --tag needs a value (see --help)\n"


def test_need_value_names_what_is_expected(tool):
    result = run(tool, 'need_value "$1" "$#" "${2-}" "a directory"', "--keep")
    assert (result.returncode, result.stderr) == (2, f"{NAME}: --keep needs a directory (see --help)\n")


@pytest.mark.parametrize(
    ("argv", "ok"), [(["--pytest-args", "--lf -x"], True), (["--pytest-args", ""], True), (["--pytest-args"], False)]
)
def test_need_arg_takes_any_argument_but_requires_one(tool, argv, ok):
    result = run(tool, 'need_arg "$1" "$#"; echo "accepted [${2}]"', *argv)
    if ok:
        assert (result.returncode, result.stdout) == (0, f"accepted [{argv[1]}]\n")
    else:
        assert (result.returncode, result.stderr) == (2, f"{NAME}: --pytest-args needs a value (see --help)\n")


# --- AWS argument patterns -----------------------------------------------------------------------
PATTERNS: dict[str, tuple[list[str], list[str]]] = {
    "aws_region": (
        ["us-east-1", "eu-west-3", "ap-southeast-5", "us-gov-west-1", "cn-north-1", "il-central-1"],
        ["", "Ireland", "us-east", "US-EAST-1", "us-east-1a", "us_east_1", "useast-1", "us-east-123", " us-east-1"],
    ),
    "stack_name": (
        ["a", "uc6-eda", "Stack-1", "S" + "x" * 127],
        ["", "1-stack", "-stack", "my_stack", "stack.name", "S" + "x" * 128, "stack name"],
    ),
    "stack_ref": (
        [
            "uc6-eda",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/uc6-eda/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
            "arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/s/id",
        ],
        [
            "bad_name!",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/uc6-eda",
            "arn:aws:cloudformation:us-east-1:12345:stack/uc6-eda/id",
            "arn:aws:s3:us-east-1:123456789012:stack/a/b",
            "arn:aws:cloudformation:cn-north-1:123456789012:stack/a/b",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/1a/b",
            "arn:aws:cloudformation:us-east-1:123456789012:stackset/a/b",
        ],
    ),
    "s3_bucket_name": (
        ["my-artifacts", "abc", "a.b-c.d", "x" * 63, "1bucket"],
        [
            "",
            "ab",
            "x" * 64,
            "My-Bucket",
            "-bucket",
            "bucket-",
            "a..b",
            "bucket_name",
            "192.168.0.1",
            "xn--bucket",
            "sthree-bucket",
            "amzn-s3-demo-bucket",
            "eda-abc123-ext-s3alias",
            "bucket--ol-s3",
            "bucket.mrap",
            "bucket--x-s3",
            "bucket.",
            ".bucket",
        ],
    ),
    "kms_key_id": (
        [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/my-key",
            "alias/aws/s3",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:alias/my-key",
            "arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/k",
        ],
        [
            "",
            "my-key",
            "alias/",
            "alias/my key",
            "1234ABCD-12AB-34CD-56EF-1234567890AB",
            "1234abcd-12ab-34cd-56ef-1234567890a",
            "arn:aws:kms:us-east-1:111122223333:key/not-a-uuid",
            "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:s3:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:grant/abc",
        ],
    ),
    "access_point_arn": (
        [
            "arn:aws:s3:us-east-1:111122223333:accesspoint/eda",
            "arn:aws:s3:eu-west-1:111122223333:accesspoint/fsx-vol-1",
            "arn:aws-cn:s3:cn-north-1:111122223333:accesspoint/ap1",
            "arn:aws-us-gov:s3:us-gov-east-1:111122223333:accesspoint/ap1",
        ],
        [
            "",
            "eda-abc123-ext-s3alias",
            "arn:aws:s3:::my-bucket",
            "arn:aws:s3:us-east-1:111122223333:accesspoint/ab",
            "arn:aws:s3:us-east-1:111122223333:accesspoint/EDA",
            "arn:aws:s3:us-east-1:111122223333:accesspoint/eda-",
            "arn:aws:s3:us-east-1:111122223333:accesspoint/" + "a" * 51,
            "arn:aws:s3:us-east-1:1111:accesspoint/eda",
            "arn:aws:s3:cn-north-1:111122223333:accesspoint/eda",
            "arn:aws-cn:s3:us-east-1:111122223333:accesspoint/eda",
            "arn:aws:s3:us-east-1:111122223333:accesspoint/eda/object/*",
            "arn:aws:s3:us-east-1:111122223333:bucket/eda",
            "arn:aws:s3:us-east-1:111122223333:accesspoint/x-s3alias",
            "arn:aws:s3-object-lambda:us-east-1:111122223333:accesspoint/eda",
        ],
    ),
    "http_url": (
        ["http://127.0.0.1:3142/debian", "https://mirror.example.net/debian/", "http://mirror"],
        [
            "",
            "ftp://mirror.example/debian",
            "mirror.example/debian",
            "http://",
            "http://a b/debian",
            "http://user:secret@mirror.example/debian",
            "file:///srv/mirror",
        ],
    ),
}
CASES = [(kind, value, True) for kind, (good, _) in PATTERNS.items() for value in good] + [
    (kind, value, False) for kind, (_, bad) in PATTERNS.items() for value in bad
]


@pytest.mark.parametrize(("kind", "value", "ok"), CASES)
def test_pattern(tool, kind, value, ok):
    result = run(tool, f'if is_{kind} "$1"; then echo yes; else echo no; fi', value)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("yes\n" if ok else "no\n")


def test_patterns_agree_with_shared_access_point_parsing():
    """The bash access point check and shared.s3ap.AccessPoint.parse accept the same values."""
    from shared.errors import InvalidInputError
    from shared.s3ap import AccessPoint

    good, bad = PATTERNS["access_point_arn"]
    for value in good:
        AccessPoint.parse(value)
    for value in bad:
        with pytest.raises(InvalidInputError):
            AccessPoint.parse(value)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("aws_region", "mars", "is not an AWS Region name (e.g. us-east-1)"),
        ("stack_name", "1-stack", "is not a valid stack name"),
        (
            "stack_ref",
            "bad_name!",
            "is not a stack name (letters, digits, hyphens; starting with a letter) or stack ARN",
        ),
        ("s3_bucket_name", "My_Bucket", "is not a valid S3 bucket name"),
        ("kms_key_id", "my-key", "is not a KMS key id, key ARN, alias name (alias/NAME) or alias ARN"),
        ("access_point_arn", "eda-abc-ext-s3alias", "is not an S3 access point ARN"),
        ("http_url", "ftp://x", "is not an http(s) URL"),
    ],
)
def test_check_arg_turns_a_mismatch_into_a_usage_error(tool, kind, value, expected):
    result = run(tool, f'check_arg {kind} --opt "$1"; echo accepted', value)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"{NAME}: --opt '{value}' {expected}")
    assert result.stderr.endswith(" (see --help)\n")


def test_check_arg_accepts_a_good_value_silently(tool):
    result = run(tool, "check_arg aws_region --region eu-west-1; echo accepted")
    assert (result.returncode, result.stdout, result.stderr) == (0, "accepted\n", "")


def test_check_arg_with_an_unknown_kind_is_a_bug_not_a_usage_error(tool):
    result = run(tool, "check_arg colour --opt red")
    assert (result.returncode, result.stderr) == (1, f"{NAME}: ERROR: check_arg: unknown kind 'colour'\n")


# --- dry run -------------------------------------------------------------------------------------
TRICKY = [
    "aws",
    "s3api",
    "--query",
    "Stacks[0].Outputs[?OutputKey=='X'] | [0]",
    "a b",
    "",
    "it's",
    "$HOME",
    "ParameterKey=EnableSnapStart,ParameterValue=true",
    "*",
    "line\nbreak",
]


def test_quote_cmd_round_trips_through_a_shell_and_leaves_plain_words_alone(tool):
    result = run(tool, 'quote_cmd "$@"', *TRICKY)
    assert result.returncode == 0, result.stderr
    line = result.stdout.removesuffix("\n")
    assert shlex.split(line) == TRICKY
    assert line.startswith("aws s3api --query ")
    assert " ParameterKey=EnableSnapStart,ParameterValue=true " in line


def test_run_cmd_in_dry_run_prints_the_command_on_stdout_and_runs_nothing(tool):
    result = run(tool, 'DRY_RUN=1; run_cmd touch "new file"; echo "rc=$?"')
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{NAME}: [dry-run] would run: touch 'new file'\nrc=0\n"
    assert not (tool.parent / "new file").exists()


def test_run_cmd_runs_the_command_and_keeps_its_exit_code(tool):
    ok = run(tool, 'run_cmd touch "new file"')
    assert (ok.returncode, ok.stdout) == (0, "")
    assert (tool.parent / "new file").exists()
    failed = run(tool, "run_cmd false; echo not reached")
    assert (failed.returncode, failed.stdout) == (1, "")


# --- the build interpreter -----------------------------------------------------------------------
def _bin_dir(tmp_path: Path, *names: str) -> Path:
    """A PATH directory holding the given executables (empty scripts)."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    return directory


def test_build_python_prefers_the_variable_then_the_venv_then_python313(tool, tmp_path):
    root = tmp_path / "repo"
    (root / ".venv" / "bin").mkdir(parents=True)
    venv = root / ".venv" / "bin" / "python"
    path = f"{_bin_dir(tmp_path, 'python3.13')}:/usr/bin:/bin"
    code = f'ROOT={shlex.quote(str(root))}; build_python "${{1-}}" MY_PYTHON'
    assert run(tool, code, "/opt/py", env={"PATH": path}).stdout == "/opt/py\n"
    venv.write_text("#!/bin/sh\n")
    venv.chmod(0o755)
    assert run(tool, code, "", env={"PATH": path}).stdout == f"{venv}\n"
    venv.unlink()
    assert run(tool, code, "", env={"PATH": path}).stdout == "python3.13\n"


def test_build_python_without_any_interpreter_dies_naming_the_variable(tool, tmp_path):
    code = f'ROOT={shlex.quote(str(tmp_path))}; PY="$(build_python "" MY_PYTHON)" || exit 1; echo "not reached $PY"'
    result = run(tool, code, env={"PATH": f"{_bin_dir(tmp_path)}:/bin"})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"{NAME}: ERROR: no Python found: run scripts/setup.sh or set MY_PYTHON\n"


# --- the machine's configured Debian mirror ------------------------------------------------------
def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "apt"
    (root / "sources.list.d").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def mirror_of(tool: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return run(
        tool, 'rc=0; debian_mirror || rc=$?; echo "rc=$rc"', env={"PATH": "/usr/bin:/bin", "APT_SOURCES_DIR": str(root)}
    )


BOOKWORM_DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.corp.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.corp.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # this machine's layout: one deb822 file, the security archive in a second stanza
        ({"sources.list.d/debian.sources": BOOKWORM_DEB822}, "http://mirror.corp.example/debian"),
        # the security archive alone is not the main archive
        ({"sources.list.d/debian.sources": BOOKWORM_DEB822.split("\n\n")[1]}, None),
        # one-line format, options in brackets, trailing slash dropped
        (
            {
                "sources.list": "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                "https://mirror.example.net/debian/ bookworm main contrib\n"
            },
            "https://mirror.example.net/debian",
        ),
        # comments, deb-src only, other distributions and vendors are skipped; the first Debian line counts
        (
            {
                "sources.list": "# deb http://commented.example/debian bookworm main\n"
                "deb-src http://src.example/debian bookworm main\n"
                "deb http://ubuntu.example/ubuntu jammy main\n"
                "deb https://vendor.example/apt cloud-sdk-bookworm main\n"
                "deb https://nodes.example/node_20.x nodistro main\n"
                "deb http://apt-cacher.example:3142/debian trixie main # the cache\n"
                "deb http://later.example/debian bookworm main\n"
            },
            "http://apt-cacher.example:3142/debian",
        ),
        # deb822: Enabled: no, deb-src only and non-http(s) URIs are skipped; field names in any case
        (
            {
                "sources.list.d/a.sources": "Types: deb\nURIs: http://disabled.example/debian\n"
                "Suites: bookworm\nEnabled: no\n\n"
                "types: deb-src\nuris: http://src.example/debian\nsuites: bookworm\n\n"
                "Types: deb\nURIs: file:///srv/mirror cdrom:/media\nSuites: stable\n\n"
                "TYPES: deb-src deb\nURIS: http://second.example/debian\nSUITES: sid\n"
            },
            "http://second.example/debian",
        ),
        # several URIs and a continued field; the first http(s) URI counts; no newline at the end
        (
            {
                "sources.list.d/m.sources": "Types: deb\nURIs:\n file:///local\n http://multi.example/debian\n"
                " http://other.example/debian\nSuites: stable-updates"
            },
            "http://multi.example/debian",
        ),
        # a one-line source switched off with [enabled=no]
        (
            {
                "sources.list": "deb [signed-by=/k.gpg enabled=no] http://off.example/debian bookworm main\n"
                "deb [ arch=amd64 ] http://on.example/debian bookworm main\n"
            },
            "http://on.example/debian",
        ),
        # apt's order: sources.list first, then sources.list.d/ by name
        (
            {
                "sources.list": "deb http://first.example/debian bookworm main\n",
                "sources.list.d/00.sources": "Types: deb\nURIs: http://second.example/debian\nSuites: bookworm\n",
            },
            "http://first.example/debian",
        ),
        (
            {
                "sources.list.d/b.list": "deb http://b.example/debian bookworm main\n",
                "sources.list.d/a.sources": "Types: deb\nURIs: http://a.example/debian\nSuites: trixie-backports\n",
            },
            "http://a.example/debian",
        ),
        # files apt does not read (another ending, e.g. a disabled copy) are not read here either
        (
            {
                "sources.list.d/debian.list.disabled": "deb http://off.example/debian bookworm main\n",
                "sources.list.d/debian.sources.save": "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\n",
            },
            None,
        ),
        # a deb822 stanza with a Debian-like but foreign suite
        (
            {
                "sources.list.d/x.sources": "Types: deb\nURIs: http://x.example/debian\n"
                "Suites: bookworm-security stablex\n"
            },
            None,
        ),
        ({}, None),
    ],
    ids=[
        "machine-layout",
        "security-only",
        "one-line-options",
        "one-line-skips",
        "deb822-skips",
        "deb822-continuation",
        "one-line-enabled-no",
        "order-list-first",
        "order-by-name",
        "unread-endings",
        "foreign-suite",
        "empty",
    ],
)
def test_debian_mirror(tool, tmp_path, files, expected):
    result = mirror_of(tool, apt_dir(tmp_path, files))
    assert result.stderr == ""
    assert result.stdout == (f"{expected}\nrc=0\n" if expected else "rc=1\n")


def test_debian_mirror_without_any_apt_directory(tool, tmp_path):
    assert mirror_of(tool, tmp_path / "missing").stdout == "rc=1\n"


def test_resolve_prefers_the_option_then_the_apt_sources(tool, tmp_path):
    root = apt_dir(tmp_path, {"sources.list": "deb http://apt.example/debian bookworm main\n"})
    env = {"PATH": "/usr/bin:/bin", "APT_SOURCES_DIR": str(root)}
    assert run(tool, 'resolve_debian_mirror "$1"', "https://given.example/debian/", env=env).stdout == (
        "https://given.example/debian\n"
    )
    assert run(tool, 'resolve_debian_mirror ""', env=env).stdout == "http://apt.example/debian\n"
    # DEBIAN_MIRROR comes between the option and the apt sources
    env["DEBIAN_MIRROR"] = "http://env.example/debian/"
    assert run(tool, 'resolve_debian_mirror ""', env=env).stdout == "http://env.example/debian\n"
    assert run(tool, 'resolve_debian_mirror "$1"', "https://given.example/d", env=env).stdout == (
        "https://given.example/d\n"
    )


def test_resolve_refuses_a_bad_debian_mirror_variable(tool):
    result = run(tool, 'resolve_debian_mirror ""', env={"PATH": "/usr/bin:/bin", "DEBIAN_MIRROR": "mirror.example"})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"{NAME}: ERROR: DEBIAN_MIRROR 'mirror.example' is not an http(s) URL\n"


def test_resolve_refuses_a_bad_option(tool, tmp_path):
    result = run(tool, 'resolve_debian_mirror "$1"', "ftp://given.example/debian")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"{NAME}: --mirror 'ftp://given.example/debian' is not an http(s) URL (see --help)\n"


def test_resolve_without_option_or_configured_mirror_fails_clearly(tool, tmp_path):
    root = apt_dir(tmp_path, {"sources.list": "deb-src http://src.example/debian bookworm main\n"})
    result = run(
        tool, 'resolve_debian_mirror ""; echo not reached', env={"PATH": "/usr/bin:/bin", "APT_SOURCES_DIR": str(root)}
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"{NAME}: ERROR: no Debian mirror configured: no enabled deb source of Debian's archive in "
        f"{root}/sources.list or {root}/sources.list.d/*.list, *.sources; pass --mirror URL\n"
    )


def test_check_debian_mirror_accepts_a_mirror_that_serves_the_suite(tool, stand_in_mirror):
    result = run(tool, 'check_debian_mirror "$1" trixie; echo ok', stand_in_mirror)
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_check_debian_mirror_fails_on_a_missing_suite(tool, stand_in_mirror):
    result = run(tool, 'check_debian_mirror "$1" forky', stand_in_mirror)
    assert result.returncode == 1
    assert f"ERROR: the Debian mirror {stand_in_mirror} does not serve forky" in result.stderr
    assert "404" in result.stderr


def test_check_debian_mirror_fails_on_a_refused_connection(tool):
    mirror = f"http://127.0.0.1:{closed_port()}/debian"
    result = run(tool, 'check_debian_mirror "$1" trixie', mirror)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{NAME}: ERROR: the Debian mirror {mirror} does not serve trixie")
    assert "Failed to connect to 127.0.0.1" in result.stderr
