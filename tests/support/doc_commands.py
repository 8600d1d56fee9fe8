"""The commands of the README files, extracted and run (tests/local/test_readme_commands.py).

Every non-comment line of a fenced ```` ```bash ```` block is a command (a trailing ``\\`` joins the
next line; ``# ...`` starts a comment). ``<placeholder>`` words are filled in from ``PLACEHOLDERS``,
from what an earlier command of the same block printed (``<printed>`` code hashes, the
``<printed ModelDataUrl>``), or from the use case's template (``<Name output>``); an unknown one
is an error, so a new placeholder is added here on purpose.

The commands of one block run in order, in one sandbox: a scratch copy of the files the scripts
read, with fake ``aws``/``sam``/``python`` executables first on PATH (tests/support/fake_cli.py),
so a command that would call AWS calls the fakes. What each kind of command must do to pass:

* ``scripts/local-test.sh``: runs for real (the local runner, no AWS), with ``--objects 2`` and
  ``--retry-time-scale 0`` added when the command gives neither, and ``--keep DIR`` moved into the
  sandbox; exit 0;
* the other ``scripts/*.sh``: run in the sandbox against the fakes; exit 0; ``--dry-run`` ones
  must call no AWS API;
* ``aws cloudformation deploy``: the template is one an earlier ``package.sh`` of the block
  packaged, the options are the ones ``scripts/deploy.sh`` passes (a real dry run of it says which),
  the overrides name declared parameters with values their constraints accept, every required
  parameter and every ``<Name>CodeHash``;
* ``sam local invoke``: the template, the function's logical id, its own event
  (``events/uc<NN>-<name>/<function>-event.json``), env.json's entry for it and the samconfig
  environment exist;
* other ``aws`` calls run against the fake; ``<Name output>`` must be an output of the template.

``EXCEPTIONS`` lists the commands too heavy to run here, with the reason; any other command that
no rule above covers fails the test, so a new kind of command cannot slip in unrun.
``KNOWN_FAILURES`` lists documented commands that fail today for a reason outside the docs, with
the reason: they are still run, the rest of their block too, and the test ends as an expected
failure only when exactly those fail (one that passes again must leave the list).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.usecases import load_use_case
from tests.support import uc06_native
from tests.support.fake_cli import FakeCli
from tests.support.templates import REPO_ROOT, load_template

# Commands not run by the test suite, each with the reason (keys: the script as written, without ./).
EXCEPTIONS: dict[str, str] = {
    "scripts/test.sh": "the whole test command (lint, types, templates, policies, every test; 10+ minutes): "
    "this test is one of its tests",
    "scripts/setup.sh": "installs the toolchain into .venv/ and .tools/ (network, minutes); ./scripts/test.sh "
    "runs it first on every run, so every test run exercises it",
}

# (document relative to the repository, the command as written) -> why it fails today.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

REGION = "us-east-1"
ACCOUNT = "111122223333"
PLACEHOLDERS: dict[str, str] = {
    "region": REGION,
    "account": ACCOUNT,
    "name": "docs-volume",
    "artifact-bucket": "my-artifacts",
    "you@example.com": "ops@example.com",
    "ap arn": f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/docs-volume",
    "endpoint": f"management.fs-0123456789abcdef0.fsx.{REGION}.amazonaws.com",
    "secret arn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ontap-reader-AbCdEf",
    "svm": "svm1",
    "volume": "vol1",
    "vpc": "vpc-0123456789abcdef0",
    "subnet-a,subnet-b": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "sg": "sg-0123456789abcdef0",
    "image": f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
}
_PLACEHOLDER = re.compile(r"<([^<>\n]+)>")
_HASH_LINE = re.compile(r"^(\w+CodeHash)=([0-9a-f]{16})$", re.M)
_MODEL_URL = re.compile(r"^ModelDataUrl=(s3://\S+)$", re.M)
_LOCAL_TEST = "scripts/local-test.sh"
# What the sandbox copies: what the scripts read (scripts/, shared/, the pins, every use case, the
# guard rules for deploy-hooks.sh, events and the SAM config for sam local invoke).
_SANDBOX_FILES = ("requirements-runtime.txt", "requirements-media.txt", "requirements-lock.txt",
                  "samconfig.sample.toml")
_SANDBOX_DIRS = ("scripts", "shared", "native", "guard-rules", "events")


class DocCommandError(AssertionError):
    """A documented command that does not work as written."""


def documents(root: Path = REPO_ROOT) -> list[Path]:
    """The README and every use case's README."""
    return [root / "README.md", *sorted(p.parent / "README.md" for p in root.glob("*/template-deploy.yaml"))]


def use_case_dirs(root: Path = REPO_ROOT) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/template-deploy.yaml"))


@dataclass(frozen=True)
class Command:
    line: int  # where it starts in the document
    text: str  # as written, continuation lines joined


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    commands: tuple[Command, ...]

    @property
    def id(self) -> str:
        return f"{self.document.relative_to(REPO_ROOT).as_posix()}:{self.line}"


def blocks(document: Path) -> list[Block]:
    """The fenced ```bash blocks of ``document`` and their commands."""
    found: list[Block] = []
    lines = document.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```bash":
            index += 1
            continue
        start = index + 1
        commands: list[Command] = []
        index += 1
        pending: list[str] = []
        pending_line = 0
        while index < len(lines) and lines[index].strip() != "```":
            line = lines[index]
            if not pending:
                pending_line = index + 1
            if line.rstrip().endswith("\\"):
                pending.append(line.rstrip()[:-1])
            else:
                pending.append(line)
                text = " ".join(part.strip() for part in pending).strip()
                pending = []
                if text and not text.startswith("#"):
                    commands.append(Command(pending_line, text))
            index += 1
        if index >= len(lines):
            raise DocCommandError(f"{document}:{start}: a ```bash block that never closes")
        if pending:
            raise DocCommandError(f"{document}:{pending_line}: a command ends in a line continuation")
        found.append(Block(document, start, tuple(commands)))
        index += 1
    return found


def all_blocks(root: Path = REPO_ROOT) -> list[Block]:
    return [block for document in documents(root) for block in blocks(document)]


def script_of(text: str) -> str:
    """The program a command runs, as written without a leading ./ (``scripts/deploy.sh``, ``aws``)."""
    words = shlex.split(_PLACEHOLDER.sub("X", text), comments=True)
    return words[0].removeprefix("./") if words else ""


# --- the sandbox --------------------------------------------------------------------------------
@dataclass
class Sandbox:
    """A scratch copy of the tree, the fakes, and what the block's commands left behind."""

    root: Path
    fake: FakeCli
    env: dict[str, str]
    document: Path
    use_case: str | None = None  # the use case the block deploys (its README's, or the last named)
    hashes: dict[str, str] = field(default_factory=dict)
    model_url: str | None = None
    packaged: set[Path] = field(default_factory=set)

    @classmethod
    def create(cls, tmp: Path, document: Path) -> Sandbox:
        root = tmp / "repo"
        root.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", ".build", "*.tar.gz")
        for name in _SANDBOX_DIRS:
            shutil.copytree(REPO_ROOT / name, root / name, ignore=ignore)
        for name in _SANDBOX_FILES:
            shutil.copy2(REPO_ROOT / name, root / name)
        uc06_native.seed_built(root)
        for uc in use_case_dirs():
            shutil.copytree(REPO_ROOT / uc, root / uc, ignore=ignore)
        fake = FakeCli(tmp / "fakes")
        fake.install("aws", "sam", "python")
        _writes_packaged_templates(fake)
        fake.reply("aws", ["cloudformation", "list-stack-resources"], stdout={"StackResourceSummaries": []})
        fake.reply("aws", ["s3api", "list-objects-v2"], stdout={"Contents": []})
        env = fake.env()
        env["BUILD_LAYER_PYTHON"] = str(fake.bin_dir / "python")  # the layer's pip install: recorded, not run
        env["PACKAGE_MODEL_PYTHON"] = sys.executable
        # deploy-hooks.sh validates with the real guard-check.sh, limited to the hook template
        guard = tmp / "guard-check-hook-only.sh"
        guard.write_text("#!/usr/bin/env bash\nset -euo pipefail\n"
                         f'exec "{REPO_ROOT}/scripts/guard-check.sh" --template '
                         f'"{REPO_ROOT}/guard-rules/hook-template.yaml" "$@"\n')
        guard.chmod(0o755)
        env["GUARD_CHECK"] = str(guard)
        env.pop("AWS_PROFILE", None)
        env["AWS_DEFAULT_REGION"] = REGION
        parent = document.parent.name
        return cls(root, fake, env, document, use_case=parent if parent in use_case_dirs() else None)

    def stack_exists(self, name: str) -> None:
        """describe-stacks of ``name`` answers: a complete stack of this project."""
        stack = {"Stacks": [{"StackName": name, "StackStatus": "CREATE_COMPLETE",
                             "Parameters": [{"ParameterKey": "EnableSnapStart", "ParameterValue": "false"}],
                             "Outputs": [{"OutputKey": "StateMachineArn",
                                          "OutputValue": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"}]}]}
        # (enable-snapstart.sh puts --output json before the command, so no prefix)
        self.fake.reply("aws", pattern=f"(^| )cloudformation describe-stacks( .*)? --stack-name {re.escape(name)}( |$)",
                        stdout=stack)

    def template(self) -> Mapping[str, Any]:
        if self.use_case is None:
            raise DocCommandError("no use case named before this command (a deploy.sh or package.sh of the block)")
        return load_template(self.root / self.use_case / "template-deploy.yaml")


def _writes_packaged_templates(fake: FakeCli) -> None:
    """``aws`` as the fake, except that ``cloudformation package`` also writes its output template
    (a copy of its input), as the real command does, for the commands that read it next."""
    recorder = fake.bin_dir / "aws-recorder"
    (fake.bin_dir / "aws").replace(recorder)
    wrapper = fake.bin_dir / "aws"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        'set -uo pipefail\n'
        '"$(dirname "$0")/aws-recorder" "$@"; code=$?\n'
        '[[ $code -eq 0 && "${1-} ${2-}" == "cloudformation package" ]] || exit $code\n'
        'src=""; out=""\n'
        'while [[ $# -gt 0 ]]; do\n'
        '  case "$1" in --template-file) src="$2"; shift ;; --output-template-file) out="$2"; shift ;; esac\n'
        '  shift\n'
        'done\n'
        '[[ -n "$src" && -n "$out" ]] && cp "$src" "$out"\n'
    )
    wrapper.chmod(0o755)


# --- running ---------------------------------------------------------------------------------------
def _fill(text: str, sandbox: Sandbox) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in PLACEHOLDERS:
            return PLACEHOLDERS[name]
        if name == "printed":
            return "<printed>"  # a code hash: filled in per parameter in _fill_hashes
        if name in ("printed ModelDataUrl", "printed url"):
            if sandbox.model_url is None:
                raise DocCommandError(f"<{name}>: no package-model.sh before it in the block printed a ModelDataUrl")
            return sandbox.model_url
        output = re.fullmatch(r"(\w+) output", name)
        if output:
            outputs = sandbox.template().get("Outputs") or {}
            if output.group(1) not in outputs:
                raise DocCommandError(
                    f"<{name}>: {sandbox.use_case} has no output {output.group(1)} ({sorted(outputs)})")
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:docs"
        raise DocCommandError(f"unknown placeholder <{name}>: add it to PLACEHOLDERS in {__name__}")

    return _PLACEHOLDER.sub(replace, text)


def _fill_hashes(argv: list[str], sandbox: Sandbox) -> list[str]:
    out = []
    for word in argv:
        if word.endswith("=<printed>"):
            key = word.split("=", 1)[0]
            if key not in sandbox.hashes:
                raise DocCommandError(f"{word}: no package.sh before it in the block printed {key}")
            out.append(f"{key}={sandbox.hashes[key]}")
            continue
        if "<printed>" in word:
            raise DocCommandError(f"{word}: <printed> stands only for a <Name>CodeHash value")
        out.append(word)
    return out


def _option(argv: list[str], *names: str) -> str | None:
    value = None
    for index, word in enumerate(argv):
        if word in names and index + 1 < len(argv):
            value = argv[index + 1]
    return value


def _overrides(argv: list[str]) -> dict[str, str]:
    if "--parameter-overrides" not in argv:
        return {}
    words = []
    for word in argv[argv.index("--parameter-overrides") + 1 :]:
        if word.startswith("--"):
            break
        words.append(word)
    pairs = {}
    for word in words:
        if "=" not in word:
            raise DocCommandError(f"--parameter-overrides word {word!r} is not KEY=VALUE")
        key, value = word.split("=", 1)
        pairs[key] = value
    return pairs


def check_overrides(template: Mapping[str, Any], overrides: Mapping[str, str], *, complete: bool,
                    hashes: bool, what: str) -> None:
    """The overrides name declared parameters with values their constraints accept; with
    ``complete`` every required parameter is given; with ``hashes`` every <Name>CodeHash."""
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    for key, value in overrides.items():
        spec = declared.get(key)
        if spec is None:
            raise DocCommandError(f"{what}: the template declares no parameter {key}")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise DocCommandError(f"{what}: {key}={value} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise DocCommandError(f"{what}: {key}={value} does not match {spec['AllowedPattern']}")
        if spec.get("Type") == "Number":
            number = float(value)
            if ("MinValue" in spec and number < float(spec["MinValue"])) or (
                "MaxValue" in spec and number > float(spec["MaxValue"])):
                raise DocCommandError(
                    f"{what}: {key}={value} is outside {spec.get('MinValue')}..{spec.get('MaxValue')}")
    if complete:
        missing = sorted(k for k, spec in declared.items() if "Default" not in spec and k not in overrides)
        if missing:
            raise DocCommandError(f"{what}: a first deploy needs the required parameters {missing}")
    if hashes:
        wanted = {k for k in declared if k.endswith("CodeHash")}
        if wanted != {k for k in overrides if k.endswith("CodeHash")}:
            raise DocCommandError(f"{what}: the code hashes given are not the template's {sorted(wanted)}")


def _run(sandbox: Sandbox, argv: list[str], cwd: Path, timeout: float = 600) -> str:
    result = sandbox.fake.run(argv, env=sandbox.env, cwd=cwd, timeout=timeout)
    if result.returncode != 0:
        raise DocCommandError(f"{shlex.join(argv)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


def deploy_sh_options(sandbox: Sandbox, use_case: str) -> list[str]:
    """The options ``scripts/deploy.sh`` passes to ``aws cloudformation deploy``, from a dry run."""
    result = sandbox.fake.run([str(sandbox.root / "scripts/deploy.sh"), use_case, "--stack-name", "probe",
                               "--artifact-bucket", "my-artifacts", "--region", REGION, "--dry-run"],
                              env=sandbox.env, cwd=sandbox.root)
    if result.returncode != 0:
        raise DocCommandError(f"deploy.sh --dry-run of {use_case} failed: {result.stderr[-2000:]}")
    (line,) = [line for line in result.stdout.splitlines() if "would run: aws cloudformation deploy" in line]
    return shlex.split(line.split("would run: ", 1)[1])


_READ_ONLY = re.compile(r"^(describe|list|get|head)-")


def _operation(argv: list[str]) -> str:
    """The operation of an ``aws`` call (``describe-stacks``), global options skipped."""
    words: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] in ("--output", "--region", "--profile", "--endpoint-url"):
            index += 2
            continue
        if not argv[index].startswith("-"):
            words.append(argv[index])
        index += 1
    return words[1] if len(words) > 1 else ""


def _script(sandbox: Sandbox, argv: list[str]) -> None:
    script = argv[0].removeprefix("./")
    words = argv[1:]
    if script == _LOCAL_TEST:
        if "--help" not in words:
            if "--engine" in words and _option(words, "--engine") != "embedded":
                raise DocCommandError("local-test.sh with a container engine: list it in EXCEPTIONS with the reason")
            if "--objects" not in words:
                words += ["--objects", "2"]
            if "--retry-time-scale" not in words:
                words += ["--retry-time-scale", "0"]  # Retry waits in no time: the same states run
            if "--keep" in words:
                position = words.index("--keep") + 1
                words[position] = str(sandbox.root.parent / "keep" / Path(words[position]).name)
        _run(sandbox, [str(REPO_ROOT / script), *words], cwd=REPO_ROOT, timeout=900)
        return
    if not (sandbox.root / script).is_file():
        raise DocCommandError(f"{script} does not exist")
    before = len(sandbox.fake.invocations("aws"))
    if script in ("scripts/deploy.sh", "scripts/package.sh"):
        use_case = _option(words, "--uc") if script == "scripts/package.sh" else next(
            (w for w in words if not w.startswith("-")), None)
        if use_case:
            sandbox.use_case = use_case.rstrip("/")
    output = _run(sandbox, [str(sandbox.root / script), *words], cwd=sandbox.root)
    sandbox.hashes.update(dict(_HASH_LINE.findall(output)))
    if script == "scripts/package.sh" and "--help" not in words:
        _check_printed_deploy(sandbox, output)
    model = _MODEL_URL.findall(output)
    if model:
        sandbox.model_url = model[-1]
    calls = sandbox.fake.invocations("aws")[before:]
    for call in calls:
        if call.argv[:2] == ["cloudformation", "package"]:
            target = _option(call.argv, "--output-template-file")
            if target:
                sandbox.packaged.add(Path(target).resolve())
    if "--dry-run" in words:
        mutating = [c.argv for c in calls if not _READ_ONLY.match(_operation(c.argv))]
        if mutating:
            raise DocCommandError(f"{script} --dry-run made AWS calls: {mutating}")
    if script == "scripts/deploy.sh" and "--dry-run" not in words and "--delete" not in words:
        check_overrides(sandbox.template(), _overrides(words), complete=True, hashes=False, what=shlex.join(argv))
    elif script == "scripts/deploy.sh":
        check_overrides(sandbox.template(), _overrides(words), complete=False, hashes=False, what=shlex.join(argv))


def _same_options_as_deploy_sh(sandbox: Sandbox, argv: list[str], what: str) -> None:
    expected = deploy_sh_options(sandbox, sandbox.use_case or "")
    given_options = sorted(w for w in argv[1:] if w.startswith("--"))
    wanted_options = sorted(w for w in expected[1:] if w.startswith("--"))
    if "--region" not in given_options and "--region" in wanted_options:
        wanted_options.remove("--region")
    if given_options != wanted_options:
        raise DocCommandError(f"{what}: options {given_options} are not deploy.sh's {wanted_options}")
    if _option(argv, "--capabilities") != _option(expected, "--capabilities"):
        raise DocCommandError(f"{what}: --capabilities is not deploy.sh's {_option(expected, '--capabilities')}")


def _check_printed_deploy(sandbox: Sandbox, output: str) -> None:
    """The deploy command package.sh prints is deploy.sh's too (option for option, every hash)."""
    lines = [line for line in output.splitlines() if line.startswith("aws cloudformation deploy ")]
    if len(lines) != 1:
        raise DocCommandError(f"package.sh printed {len(lines)} deploy commands, not one")
    argv = shlex.split(lines[0])
    _same_options_as_deploy_sh(sandbox, argv, "the deploy command package.sh prints")
    check_overrides(sandbox.template(), _overrides(argv), complete=False, hashes=True,
                    what="the deploy command package.sh prints")


def _aws(sandbox: Sandbox, argv: list[str]) -> None:
    what = shlex.join(argv)
    if argv[1:3] == ["cloudformation", "deploy"]:
        template_file = _option(argv, "--template-file")
        if template_file is None or (sandbox.root / template_file).resolve() not in sandbox.packaged:
            raise DocCommandError(f"{what}: deploys {template_file}, which no package.sh before it in the block "
                                "packaged (deploy the packaged template, with --s3-bucket)")
        _same_options_as_deploy_sh(sandbox, argv, what)
        check_overrides(sandbox.template(), _overrides(argv), complete=True, hashes=True, what=what)
    _run(sandbox, argv, cwd=sandbox.root)


def _sam(sandbox: Sandbox, argv: list[str]) -> None:
    what = shlex.join(argv)
    if argv[1:3] != ["local", "invoke"]:
        raise DocCommandError(f"{what}: only `sam local invoke` has a rule here")
    words = argv[3:]
    valued = {"-t", "--template", "--template-file", "-e", "--event", "--env-vars", "--config-file",
              "--config-env", "--invoke-image", "--parameter-overrides"}
    positional = [w for i, w in enumerate(words) if not w.startswith("-") and (i == 0 or words[i - 1] not in valued)]
    if len(positional) != 1:
        raise DocCommandError(f"{what}: expected one function logical id, got {positional}")
    (function_id,) = positional
    template_file = _option(words, "-t", "--template", "--template-file")
    config_env = _option(words, "--config-env")
    if config_env is not None:
        config_file = sandbox.root / (_option(words, "--config-file") or "samconfig.toml")
        with config_file.open("rb") as handle:
            section = tomllib.load(handle).get(config_env, {}).get("local_invoke", {}).get("parameters")
        if section is None:
            raise DocCommandError(f"{what}: {config_file.name} has no [{config_env}.local_invoke.parameters]")
        template_file = template_file or section.get("template_file")
    if template_file is None or not (sandbox.root / template_file).is_file():
        raise DocCommandError(f"{what}: no template {template_file}")
    use_case = load_use_case((sandbox.root / template_file).parent, sandbox.root / "events")
    function = next((f for f in use_case.functions if f.logical_id == function_id), None)
    if function is None:
        raise DocCommandError(f"{what}: {template_file} has no function {function_id}")
    event = _option(words, "-e", "--event")
    if event is None or (sandbox.root / event).resolve() != use_case.event_path(function).resolve():
        raise DocCommandError(f"{what}: the event of {function_id} is {use_case.event_path(function)}, not {event}")
    use_case.load_event(function)  # parses, or raises
    env_vars = _option(words, "--env-vars")
    if env_vars is not None:
        entries = json.loads((sandbox.root / env_vars).read_text(encoding="utf-8"))
        if function_id not in entries:
            raise DocCommandError(f"{what}: {env_vars} has no entry for {function_id}")
    _run(sandbox, argv, cwd=sandbox.root)


def run_command(sandbox: Sandbox, command: Command) -> None:
    """Run one documented command in the sandbox; raise DocCommandError if it does not work."""
    text = _fill(command.text, sandbox)
    argv = _fill_hashes(shlex.split(text, comments=True), sandbox)
    program = argv[0].removeprefix("./")
    stack = _option(argv, "--stack-name")
    if program == "scripts/enable-snapstart.sh" and len(argv) > 1 and not argv[1].startswith("-"):
        stack = argv[1]
    if stack:
        sandbox.stack_exists(stack)
    if program in EXCEPTIONS:
        return
    if program.startswith("scripts/") and program.endswith(".sh"):
        _script(sandbox, argv)
    elif program == "aws":
        _aws(sandbox, argv)
    elif program == "sam":
        _sam(sandbox, argv)
    else:
        raise DocCommandError(f"{command.text}: no rule runs `{program}`; add one to {__name__}, or list it in "
                            "EXCEPTIONS with the reason it cannot run in the test suite")


@dataclass(frozen=True)
class BlockResult:
    ran: list[Command]
    known: list[str]  # the KNOWN_FAILURES reasons of the commands that failed as expected


def run_block(block: Block, tmp: Path) -> BlockResult:
    """Run every command of ``block`` in order in a fresh sandbox under ``tmp``. A command that
    fails raises DocCommandError naming where it is written, unless it is in KNOWN_FAILURES; one
    listed there that works raises too (take it off the list)."""
    sandbox = Sandbox.create(tmp, block.document)
    document = block.document.relative_to(REPO_ROOT).as_posix()
    ran: list[Command] = []
    known: list[str] = []
    for command in block.commands:
        reason = KNOWN_FAILURES.get((document, command.text.split(" #", 1)[0].strip()))
        try:
            run_command(sandbox, command)
        except DocCommandError as exc:
            if reason is None:
                raise DocCommandError(f"{document}:{command.line}: {exc}") from None
            known.append(f"{document}:{command.line}: {reason}")
        else:
            if reason is not None:
                raise DocCommandError(f"{document}:{command.line}: works now; remove it from KNOWN_FAILURES")
        ran.append(command)
    return BlockResult(ran, known)
