"""The build for real: scripts/package.sh runs the pinned AWS CLI's ``cloudformation package``
(requirements-awscli.txt, .tools/awscli-venv, installed by scripts/setup.sh) against a moto S3
server on loopback, for every use case of the repository.

For each use case the packaged template lints clean (cfn-lint: no error, no warning), every
function's ``Code`` and the layer's ``Content`` point at an object that was really uploaded, and
each function's artifact, unzipped beside the unzipped layer the way Lambda lays them out
(``/var/task`` and ``/opt/python``), imports its handler in a fresh python3.13 process that sees
nothing else (``-I -S``: no site-packages, no PYTHONPATH) but what the Lambda runtime itself
provides (``snapshot_restore_py``, copied from the venv) with the function's environment from
events/env.json. The layers ship their modules compiled (scripts/build-layer.sh): the import
writes no bytecode into /opt, so a cold start compiles nothing of the layers. Code and layers
together stay within Lambda's 250 MB unzipped limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import snapshot_restore_py
from moto.server import ThreadedMotoServer

from tests.support.templates import REPO_ROOT, load_template, use_case_templates

pytestmark = pytest.mark.scripts

AWS_CLI = REPO_ROOT / ".tools" / "awscli-venv" / "bin" / "aws"
BUCKET = "package-test-artifacts"
UNZIPPED_LIMIT = 262_144_000  # bytes: a function's code and all its layers, unzipped (250 MB)
REGION = "us-east-1"
USE_CASES = [path.parent.name for path in use_case_templates()]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto server on loopback, holding one empty artifact bucket."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def cli_env(endpoint: str) -> dict[str, str]:
    """The pinned AWS CLI first on PATH, pointed at the moto server with dummy credentials."""
    if not AWS_CLI.is_file():
        pytest.fail(f"{AWS_CLI} is missing: run scripts/setup.sh (it installs requirements-awscli.txt)")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({
        "PATH": f"{AWS_CLI.parent}{os.pathsep}{env.get('PATH', '')}",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })
    return env


@pytest.fixture(scope="module", params=USE_CASES)
def packaged(
    request: pytest.FixtureRequest, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """(use case, packaged template) after a real scripts/package.sh run."""
    uc: str = request.param
    output = tmp_path_factory.mktemp(uc) / "packaged.yaml"
    result = subprocess.run(
        [str(REPO_ROOT / "scripts/package.sh"), "--uc", uc, "--s3-bucket", BUCKET, "--region", REGION,
         "--output-template", str(output)],
        env=cli_env(s3_endpoint), capture_output=True, text=True, timeout=600, check=False, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert output.is_file()
    return uc, output


def located(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """{logical id: (type, S3 location)} for every function Code and layer Content."""
    result = {}
    for logical, resource in template["Resources"].items():
        key = {"AWS::Lambda::Function": "Code", "AWS::Lambda::LayerVersion": "Content"}.get(resource["Type"])
        if key:
            result[logical] = (resource["Type"], resource["Properties"][key])
    return result


def test_the_packaged_template_lints_clean(packaged, cfn_lint):
    # in process, with the command line's configuration (tests/support/lint.py): no match of any
    # level, as `cfn-lint` exiting 0 with no output
    _, output = packaged
    assert cfn_lint.messages(output) == []


def unzip(archive: Path, into: Path) -> Path:
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(into)
    return into


@pytest.fixture(scope="module")
def unzip_layer(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """Unzips a layer archive into a folder of its own and returns it; an archive with the same
    bytes as one unzipped before gets that folder: each use case uploads the same shared layer
    (under its own prefix), unzipped once for all three (3,400 files: 2 s each time)."""
    root = tmp_path_factory.mktemp("layers")
    folders: dict[str, Path] = {}

    def unzip_once(archive: Path) -> Path:
        with archive.open("rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
        if digest not in folders:
            folders[digest] = unzip(archive, root / digest)
        return folders[digest]

    return unzip_once


def test_every_code_location_is_an_uploaded_artifact_that_imports_its_handler(
    packaged, s3_endpoint, unzip_layer, tmp_path
):
    uc, output = packaged
    template = load_template(output)
    locations = located(template)
    s3 = s3_client(s3_endpoint)
    environments = json.loads((REPO_ROOT / "events/env.json").read_text())

    def fetch(location: dict[str, Any]) -> Path:
        """The archive at ``location``, downloaded into tmp_path."""
        assert set(location) == {"S3Bucket", "S3Key"}, location  # no local path left behind
        assert location["S3Bucket"] == BUCKET
        assert location["S3Key"].startswith(f"{uc}/"), location  # package.sh's default prefix
        archive = tmp_path / location["S3Key"].replace("/", "_")
        # One GET, not s3transfer's ranged download: moto reads the whole stored object for each
        # range (25 of them for the 200 MB media layer, 2.4 s against 0.2 s for one GET).
        with archive.open("wb") as out:
            shutil.copyfileobj(s3.get_object(Bucket=BUCKET, Key=location["S3Key"])["Body"], out, 1 << 20)
        return archive

    # Lambda extracts every layer a function attaches into /opt; each function gets exactly its own.
    layers = {logical: unzip_layer(fetch(loc))
              for logical, (kind, loc) in locations.items() if kind == "AWS::Lambda::LayerVersion"}
    assert any((opt / "python/shared/__init__.py").is_file() for opt in layers.values())
    runtime = tmp_path / "runtime"  # what the python3.13 Lambda runtime provides beside the code
    runtime.mkdir()
    shutil.copy2(snapshot_restore_py.__file__, runtime)
    functions = {logical: loc for logical, (kind, loc) in locations.items() if kind == "AWS::Lambda::Function"}
    assert functions
    layer_bytes = {logical: tree_bytes(folder) for logical, folder in layers.items()}
    merged: dict[tuple[str, ...], tuple[Path, set[Path]]] = {}

    def merge(attached: list[str]) -> tuple[Path, set[Path]]:
        opt = tmp_path / "merged-opt" / str(len(merged))
        for layer in attached:
            shutil.copytree(layers[layer], opt, dirs_exist_ok=True, copy_function=_link)
        merged[tuple(attached)] = opt, tree_files(opt)
        return merged[tuple(attached)]

    for logical, location in functions.items():
        task = unzip(fetch(location), tmp_path / "task" / logical)
        assert (task / "handler.py").is_file()
        attached = [ref["Ref"] for ref in template["Resources"][logical]["Properties"].get("Layers", [])
                    if isinstance(ref, dict) and ref.get("Ref") in layers]
        assert attached, f"{logical} attaches no packaged layer"
        # Lambda's /opt: the attached layers extracted over one another, in order. Hard links, not
        # copies (the media layer alone is 200 MB): the same files under the same names, one
        # merged folder per list of layers (the import writes nothing there: asserted below).
        opt, shipped = merged.get(tuple(attached)) or merge(attached)
        unzipped = tree_bytes(task) + sum(layer_bytes[layer] for layer in attached)
        assert unzipped < UNZIPPED_LIMIT, f"{uc} {logical}: {unzipped:,} bytes unzipped"
        # As sam local invoke sets it: the template's literal values, then env.json's.
        declared = template["Resources"][logical]["Properties"].get("Environment", {}).get("Variables", {})
        env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               **{k: v for k, v in declared.items() if isinstance(v, str)},
               **environments.get("Parameters", {}), **environments.get(logical, {})}
        code = ("import sys; sys.path[:0] = sys.argv[1:4]; import handler, shared; "
                "assert callable(handler.handler); "
                "assert handler.__file__.startswith(sys.argv[1]) and shared.__file__.startswith(sys.argv[2]); "
                "print('ok')")
        run = subprocess.run([python313(), "-I", "-S", "-c", code, str(task), str(opt / "python"), str(runtime)],
                             env=env,
                             capture_output=True, text=True, timeout=120, check=False)
        assert (run.returncode, run.stdout) == (0, "ok\n"), f"{uc} {logical}: {run.stderr}"
        # A module imported without a valid .pyc in the layer would have been compiled and written.
        assert tree_files(opt) == shipped, f"{uc} {logical}: compiled {sorted(tree_files(opt) - shipped)[:5]}"


def tree_files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in tree_files(root))


def _link(source: str, target: str) -> None:
    """copytree's copy_function: a hard link; a later layer's file replaces an earlier one's."""
    if os.path.lexists(target):
        os.unlink(target)
    os.link(source, target)


def python313() -> str:
    """A python3.13 outside the project's venv (the interpreter the venv was made from)."""
    base: str = getattr(sys, "_base_executable", sys.executable)
    check = subprocess.run([base, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                           capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "True", base
    return base
