"""Every command of the README and the use-case READMEs works as written (tests/support/doc_commands.py
says how each kind is run), the README's cost table names every opt-in parameter of the
templates, the "adding a use case" discovery points find every use case, and deploy.sh's dry run
prints the exact AWS calls for every use case."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import use_cases as benchmark_use_cases
from local import docs
from local.runner.run import discover_use_cases, sample_module_name
from local.usecases import discover
from tests.support import doc_commands
from tests.support.doc_commands import EXCEPTIONS, Block, DocCommandError, Sandbox, run_block
from tests.support.templates import REPO_ROOT, load_template, resolve_conditions, use_case_templates

pytestmark = pytest.mark.scripts

BLOCKS = doc_commands.all_blocks()
USE_CASES = doc_commands.use_case_dirs()


def test_the_readmes_have_commands_and_every_use_case_is_one_of_them() -> None:
    assert len(USE_CASES) == 3, USE_CASES
    documents = {block.document for block in BLOCKS}
    assert REPO_ROOT / "README.md" in documents
    assert {REPO_ROOT / uc / "README.md" for uc in USE_CASES} <= documents


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.id)
def test_every_command_of_the_block_works_as_written(block: Block, tmp_path: Path) -> None:
    result = run_block(block, tmp_path)
    assert result.ran == list(block.commands)
    if result.known:
        pytest.xfail("; ".join(result.known))


def test_every_known_failure_is_still_documented() -> None:
    written = {(block.document.relative_to(REPO_ROOT).as_posix(), command.text.split(" #", 1)[0].strip())
               for block in BLOCKS for command in block.commands}
    assert set(doc_commands.KNOWN_FAILURES) <= written


def test_every_exception_is_still_documented_and_has_a_reason() -> None:
    written = {doc_commands.script_of(command.text) for block in BLOCKS for command in block.commands}
    for script, reason in EXCEPTIONS.items():
        assert script in written, f"{script} is listed in EXCEPTIONS but no README runs it any more"
        assert len(reason.split()) >= 5, script


# --- the checks themselves fail on broken commands ------------------------------------------------
def _block(tmp_path: Path, body: str, folder: str = "") -> Block:
    document = REPO_ROOT / folder / "README.md" if folder else REPO_ROOT / "README.md"
    tmp_path.mkdir(exist_ok=True)
    fake = tmp_path / "doc.md"
    fake.write_text("```bash\n" + textwrap.dedent(body).strip() + "\n```\n")
    (parsed,) = doc_commands.blocks(fake)
    return Block(document, parsed.line, parsed.commands)


def _fails(tmp_path: Path, body: str, match: str, folder: str = "") -> None:
    with pytest.raises(DocCommandError, match=match):
        run_block(_block(tmp_path / "doc", body, folder), tmp_path)


def test_a_misspelt_option_fails(tmp_path: Path) -> None:
    _fails(tmp_path, "./scripts/deploy.sh semiconductor-eda --stack-nam uc6 --artifact-bucket b --dry-run",
           r"exited 2")


def test_a_command_no_rule_covers_fails(tmp_path: Path) -> None:
    _fails(tmp_path, "make deploy", r"no rule runs `make`")


def test_an_unknown_placeholder_fails(tmp_path: Path) -> None:
    _fails(tmp_path, "aws s3 ls s3://<bucket-name>", r"unknown placeholder <bucket-name>")


def test_deploying_the_source_template_by_hand_fails(tmp_path: Path) -> None:
    _fails(tmp_path, """
        aws cloudformation deploy --template-file semiconductor-eda/template-deploy.yaml --stack-name s \\
          --capabilities CAPABILITY_NAMED_IAM --parameter-overrides AccessPointArn=<ap arn>
        """, r"which no package.sh before it in the block packaged", folder="semiconductor-eda")


def test_a_by_hand_deploy_without_deploy_sh_options_fails(tmp_path: Path) -> None:
    _fails(tmp_path, """
        ./scripts/package.sh --uc semiconductor-eda --s3-bucket my-artifacts
        aws cloudformation deploy --template-file .build/semiconductor-eda/packaged.yaml --stack-name s \\
          --capabilities CAPABILITY_IAM --parameter-overrides AccessPointArn=<ap arn> \\
          DiscoveryCodeHash=<printed> MetadataExtractionCodeHash=<printed> \\
          DrcAggregationCodeHash=<printed> ReportGenerationCodeHash=<printed>
        """, r"are not deploy.sh's")


def test_a_by_hand_deploy_missing_a_code_hash_fails(tmp_path: Path) -> None:
    _fails(tmp_path, """
        ./scripts/package.sh --uc semiconductor-eda --s3-bucket my-artifacts
        aws cloudformation deploy --template-file .build/semiconductor-eda/packaged.yaml --stack-name s \\
          --s3-bucket my-artifacts --s3-prefix semiconductor-eda --capabilities CAPABILITY_IAM \\
          --no-fail-on-empty-changeset --parameter-overrides AccessPointArn=<ap arn> DiscoveryCodeHash=<printed>
        """, r"the code hashes given are not the template's")


def test_a_value_the_template_refuses_fails(tmp_path: Path) -> None:
    _fails(tmp_path, """
        ./scripts/deploy.sh semiconductor-eda --stack-name s --artifact-bucket my-artifacts \\
          --parameter-overrides AccessPointArn=arn:aws:s3:::my-alias-ext-s3alias
        """, r"AccessPointArn=.* does not match")


def test_a_sam_invoke_with_another_function_s_event_fails(tmp_path: Path) -> None:
    _fails(tmp_path, """
        sam local invoke DiscoveryFunction -t semiconductor-eda/template-deploy.yaml \\
          -e events/uc06-semiconductor-eda/metadata_extraction-event.json --env-vars events/env.json
        """, r"the event of DiscoveryFunction is")


def test_a_missing_output_placeholder_fails(tmp_path: Path) -> None:
    _fails(tmp_path, "aws stepfunctions start-execution --state-machine-arn <MachineArn output>",
           r"has no output MachineArn", folder="semiconductor-eda")


# --- deploy.sh --dry-run prints the exact AWS calls, for every use case ---------------------------
@pytest.mark.parametrize("use_case", USE_CASES)
def test_deploy_dry_run_prints_the_exact_calls_for_every_use_case(use_case: str, tmp_path: Path) -> None:
    sandbox = Sandbox.create(tmp_path, REPO_ROOT / "README.md")
    result = sandbox.fake.run([str(sandbox.root / "scripts/deploy.sh"), use_case, "--stack-name", "st",
                               "--artifact-bucket", "my-artifacts", "--region", "eu-west-1", "--dry-run"],
                              env=sandbox.env, cwd=sandbox.root)
    assert result.returncode == 0, result.stderr
    assert sandbox.fake.invocations("aws") == []
    printed = [shlex.split(line.split("would run: ", 1)[1]) for line in result.stdout.splitlines()
               if "would run: aws " in line]
    region = ["--region", "eu-west-1"]
    packaged = str(sandbox.root / ".build" / use_case / "st.packaged.yaml")
    hashes = sorted(name for name in load_template(REPO_ROOT / use_case / "template-deploy.yaml")["Parameters"]
                    if name.endswith("CodeHash"))
    assert [call[:3] for call in printed] == [["aws", "s3api", "head-bucket"],
                                              ["aws", "cloudformation", "describe-stacks"],
                                              ["aws", "cloudformation", "package"],
                                              ["aws", "cloudformation", "deploy"],
                                              ["aws", "cloudformation", "describe-stacks"]]
    assert printed[2] == ["aws", "cloudformation", "package", "--template-file",
                          str(sandbox.root / use_case / "template-deploy.yaml"), "--s3-bucket", "my-artifacts",
                          "--s3-prefix", "st", "--output-template-file", packaged, *region]
    deploy = printed[3]
    words = deploy[deploy.index("--parameter-overrides") + 1 :]
    assert deploy[: deploy.index("--parameter-overrides")] == [
        "aws", "cloudformation", "deploy", "--template-file", packaged, "--stack-name", "st",
        "--s3-bucket", "my-artifacts", "--s3-prefix", "st", "--capabilities", "CAPABILITY_IAM",
        "--no-fail-on-empty-changeset", *region]
    assert sorted(word.split("=", 1)[0] for word in words) == hashes
    assert all(re.fullmatch(r"\w+CodeHash=[0-9a-f]{16}", word) for word in words)


# --- the cost table names every opt-in parameter ----------------------------------------------------
def _cost_table_parameters() -> set[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Cost\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {re.match(r"\| `(\w+)", row).group(1) for row in rows}  # type: ignore[union-attr]


def _referenced(node: Any) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return {node["Ref"]}
        return set().union(*(_referenced(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_referenced(v) for v in node)) if node else set()
    return set()


def opt_in_parameters(template: dict[str, Any]) -> set[str]:
    """Parameters that switch on a condition that is off with the defaults (what an opt-in is)."""
    off = {name for name, value in resolve_conditions(template).items() if not value}
    declared = set(template.get("Parameters") or {})
    return {ref for name in off for ref in _referenced(template["Conditions"][name]) if ref in declared}


def test_the_cost_table_names_every_opt_in_parameter_of_every_template() -> None:
    table = _cost_table_parameters()
    for path in use_case_templates():
        missing = opt_in_parameters(load_template(path)) - table
        assert not missing, f"{path.parent.name}: opt-in parameters missing from the README's cost table: {missing}"
    declared = set().union(*(set(load_template(p)["Parameters"]) for p in use_case_templates()))
    assert table <= declared, f"the cost table names parameters no template declares: {table - declared}"


def test_the_opt_in_detection_sees_the_features_it_must() -> None:
    uc9 = opt_in_parameters(load_template(REPO_ROOT / "autonomous-driving" / "template-deploy.yaml"))
    assert {"EnableSnapStart", "EnableInferenceComponents", "EnableRealtimeEndpoint", "InferenceType"} <= uc9
    uc1 = opt_in_parameters(load_template(REPO_ROOT / "legal-compliance" / "template-deploy.yaml"))
    assert "CreateVpcEndpoints" in uc1


# --- "Adding a use case": the discovery points the README names find all three --------------------
def test_the_discovery_points_the_readme_names_find_every_use_case() -> None:
    names = set(USE_CASES)
    assert {uc.name for uc in discover()} == names
    assert {path.name for path in discover_use_cases()} == names
    assert {path.parent.name for path in use_case_templates()} == names
    assert {path.name for path in docs.use_cases()} == names
    assert {path.name for path in benchmark_use_cases()} == names
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for reference in ("local.usecases.discover()", "local.runner.run", "use_case_templates()",
                      "check_use_case", "local.docs.use_cases()", "benchmarks.common.use_cases()"):
        assert reference in readme, reference


@pytest.mark.parametrize("use_case", discover(), ids=lambda uc: uc.name)
def test_every_use_case_has_the_files_the_readme_says_a_use_case_adds(use_case: Any) -> None:
    assert re.fullmatch(r"uc\d{2}-" + re.escape(use_case.name), use_case.events_name)
    for function in use_case.functions:
        assert (use_case.directory / "functions" / function.name / "handler.py").is_file()
        assert use_case.event_path(function).is_file(), use_case.event_path(function)
    env_json = json.loads((REPO_ROOT / "events" / "env.json").read_text(encoding="utf-8"))
    assert {function.logical_id for function in use_case.functions} <= set(env_json)
    samples = importlib.import_module(sample_module_name(use_case.directory))
    assert callable(samples.generate)
    assert samples.__name__ == f"local.samples.{use_case.package}"
    samconfig = (REPO_ROOT / "samconfig.sample.toml").read_text(encoding="utf-8")
    for section in ("local_invoke", "deploy"):
        assert f"[{use_case.config_env}.{section}.parameters]" in samconfig
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for block in ("state-machine", "parameters"):
        assert f"<!-- generated:{use_case.name}:{block} start -->" in readme


# --- commands named in the prose: the script exists and takes every option shown --------------------
_INLINE_SCRIPT = re.compile(r"`((?:\./)?scripts/[\w.-]+\.sh)([^`]*)`")
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def _help_text(script: str) -> str:
    result = subprocess.run([str(REPO_ROOT / script), "--help"], capture_output=True, text=True, check=False,
                            cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, f"{script} --help exited {result.returncode}: {result.stderr}"
    text = result.stdout
    if script == "scripts/local-test.sh":  # "the engine's own --help lists every option"
        engine = subprocess.run([sys.executable, "-m", "local.cli", "--help"], capture_output=True, text=True,
                                check=True, cwd=REPO_ROOT, timeout=120)
        text += engine.stdout
    return text


def check_prose(documents: list[Path]) -> int:
    """Every `scripts/<name>.sh ...` code span in ``documents`` names a script that exists and takes
    every option the span shows (its --help lists it); returns how many spans were checked."""
    helps: dict[str, str] = {}
    count = 0
    for document in documents:
        for match in _INLINE_SCRIPT.finditer(document.read_text(encoding="utf-8")):
            script, options = match.group(1).removeprefix("./"), _OPTION.findall(match.group(2))
            assert (REPO_ROOT / script).is_file(), f"{document.name}: `{script}` does not exist"
            text = helps.setdefault(script, _help_text(script))
            unknown = [option for option in options if option not in text]
            assert not unknown, f"{document.name}: `{script}` has no option {unknown} in its --help"
            count += 1
    return count


def test_every_script_named_in_the_prose_exists_and_takes_the_options_shown() -> None:
    assert check_prose(doc_commands.documents()) > 5


def test_the_prose_check_catches_an_option_a_script_does_not_take_and_a_missing_script(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("Run `./scripts/deploy.sh semiconductor-eda --stack-name s --confirm` first.\n")
    with pytest.raises(AssertionError, match=r"has no option \['--confirm'\]"):
        check_prose([readme])
    readme.write_text("Run `scripts/deploy-all.sh` first.\n")
    with pytest.raises(AssertionError, match=r"`scripts/deploy-all.sh` does not exist"):
        check_prose([readme])


def test_a_package_sh_that_prints_another_deploy_command_than_deploy_sh_runs_fails(tmp_path: Path) -> None:
    sandbox = Sandbox.create(tmp_path, REPO_ROOT / "README.md")
    script = sandbox.root / "scripts/package.sh"
    script.write_text(script.read_text().replace(" --no-fail-on-empty-changeset", ""))
    command = doc_commands.Command(1, "./scripts/package.sh --uc semiconductor-eda --s3-bucket my-artifacts")
    with pytest.raises(DocCommandError, match=r"the deploy command package.sh prints: options .* are not deploy.sh's"):
        doc_commands.run_command(sandbox, command)
