"""scripts/build-criu.sh and scripts/build-local-image.sh: the Debian mirror they build from.

The mirror comes from --mirror or from the machine's apt sources (APT_SOURCES_DIR points the
scripts at sample files here). A mirror that refuses connections (a closed port on 127.0.0.1)
must stop the build with a clear message before anything is changed; a loopback stand-in that
serves trixie's InRelease shows which mirror the trixie source entry is written for. The
discovery itself is tested in test_common_sh.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts.conftest import closed_port
from tests.support.fake_cli import FakeCli
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.scripts

BUILD_CRIU = REPO_ROOT / "scripts" / "build-criu.sh"
BUILD_IMAGE = REPO_ROOT / "scripts" / "build-local-image.sh"
TRIXIE_SOURCES = Path("/etc/apt/sources.list.d/trixie-src.sources")
# Every program that would change the machine or fetch packages: none may run.
BUILD_TOOLS = ("apt-get", "apt-cache", "debootstrap", "make", "patch")


@pytest.fixture
def tools(fake_cli: FakeCli) -> FakeCli:
    """Fake build tools first on PATH: a call to any of them fails loudly (exit 99)."""
    fake_cli.install(*BUILD_TOOLS, "docker")
    for program in BUILD_TOOLS:
        fake_cli.default(program, stderr=f"unexpected {program} call", exit_code=99)
    # an engine that answers and holds no image yet, so the build would start
    fake_cli.reply("docker", ["info"], stdout="ok\n")
    fake_cli.default("docker", stderr="Error: No such image", exit_code=1)
    return fake_cli


def sample_sources(tmp_path: Path, uri: str) -> Path:
    """An apt configuration directory whose only Debian source is URI (deb822)."""
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(
        f"Types: deb\nURIs: {uri}\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    return etc


def trixie_sources_state() -> bytes | None:
    return TRIXIE_SOURCES.read_bytes() if TRIXIE_SOURCES.exists() else None


@pytest.mark.parametrize(
    ("script", "args"),
    [(BUILD_CRIU, ["--force"]), (BUILD_IMAGE, ["--force", "--work-dir", "{work}"])],
    ids=["build-criu", "build-local-image"],
)
def test_a_mirror_that_refuses_stops_the_build_before_any_change(tools, tmp_path, script, args):
    mirror = f"http://127.0.0.1:{closed_port()}/debian"
    before = trixie_sources_state()
    env = tools.env() | {"APT_SOURCES_DIR": str(sample_sources(tmp_path, "http://unused.invalid/debian"))}

    argv = [arg.format(work=tmp_path / "work") for arg in args]

    result = tools.run([script, *argv, "--mirror", mirror], env=env, timeout=60)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"ERROR: the Debian mirror {mirror} does not serve trixie" in result.stderr
    assert "Failed to connect to 127.0.0.1" in result.stderr  # curl's reason is passed on
    assert result.stderr.startswith(f"{script.name}: ")
    assert [call.program for call in tools.invocations() if call.program != "docker"] == []
    assert trixie_sources_state() == before
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("script", [BUILD_CRIU, BUILD_IMAGE], ids=["build-criu", "build-local-image"])
def test_no_configured_mirror_and_no_option_is_a_clear_failure(tools, tmp_path, script):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("deb-src http://src.example/debian bookworm main\n")
    (etc / "sources.list.d" / "vendor.list").write_text("deb http://vendor.example/apt stable-vendor main\n")
    before = trixie_sources_state()

    result = tools.run([script, "--force"], env=tools.env() | {"APT_SOURCES_DIR": str(etc)}, timeout=60)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "no Debian mirror configured" in result.stderr
    assert str(etc / "sources.list") in result.stderr
    assert "pass --mirror URL" in result.stderr
    assert [call.program for call in tools.invocations() if call.program != "docker"] == []
    assert trixie_sources_state() == before


def test_build_criu_writes_the_trixie_source_entry_for_the_configured_mirror(tools, tmp_path, stand_in_mirror):
    """Dry run: the mirror comes from the apt sources and the trixie entry names it."""
    tools.reply("apt-cache", ["showsrc", "criu"], stdout="")  # trixie not indexed yet
    env = tools.env() | {"APT_SOURCES_DIR": str(sample_sources(tmp_path, stand_in_mirror + "/"))}

    result = tools.run([BUILD_CRIU, "--force", "--dry-run"], env=env, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Debian mirror: {stand_in_mirror}\n" in result.stderr
    entry = result.stdout.split(f"would write {TRIXIE_SOURCES}:\n", 1)[1].splitlines()[:6]
    assert [line.strip() for line in entry[1:5]] == [
        "Types: deb-src",
        f"URIs: {stand_in_mirror}",
        "Suites: trixie",
        "Components: main",
    ]
    assert f"would download {stand_in_mirror}/pool/main/c/criu/criu_4.1.1.orig.tar.xz" in result.stdout
    assert "would run: apt-get update -q" in result.stdout
    # a dry run may read the apt index, and changes nothing
    assert all(call.argv[0] == "showsrc" for call in tools.invocations("apt-cache"))
    assert tools.invocations("apt-get") == []


def test_build_criu_mirror_option_overrides_the_apt_sources(tools, tmp_path, stand_in_mirror):
    tools.reply("apt-cache", ["showsrc", "criu"], stdout="")
    env = tools.env() | {"APT_SOURCES_DIR": str(sample_sources(tmp_path, f"http://127.0.0.1:{closed_port()}/x"))}

    result = tools.run([BUILD_CRIU, "--force", "--dry-run", "--mirror", stand_in_mirror], env=env, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"URIs: {stand_in_mirror}\n" in result.stdout


def test_build_local_image_dry_run_bootstraps_from_the_configured_mirror(tools, tmp_path):
    env = tools.env() | {"APT_SOURCES_DIR": str(sample_sources(tmp_path, "https://mirror.example.net/debian"))}

    result = tools.run([BUILD_IMAGE, "--dry-run"], env=env, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    (debootstrap,) = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("debootstrap ")]
    assert debootstrap[-3:] == [
        "trixie",
        str(REPO_ROOT / ".build/local-image/rootfs"),
        "https://mirror.example.net/debian",
    ]
    assert result.stdout.splitlines()[-1] == "fsxn-s3ap/lambda-python:3.13-local"


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        (BUILD_CRIU, ["--mirror"], "--mirror needs a URL (see --help)"),
        (BUILD_CRIU, ["--mirror", "ftp://mirror.example/debian"], "is not an http(s) URL"),
        (BUILD_IMAGE, ["--mirror", "mirror.example/debian"], "is not an http(s) URL"),
        (BUILD_IMAGE, ["--mirror", "--force"], "--mirror needs a URL"),
    ],
)
def test_a_bad_mirror_option_is_a_usage_error(tools, script, args, message):
    result = tools.run([script, *args], timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert [call.program for call in tools.invocations() if call.program != "docker"] == []
