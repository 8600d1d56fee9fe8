"""local/docs.py: the generated state machine diagrams and parameter tables in the READMEs are
current (the checked-in copies), cover every state, transition and parameter, and --check fails
on a stale copy."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from local import docs
from tests.support.templates import REPO_ROOT, load_template

pytestmark = pytest.mark.unit

UC6 = REPO_ROOT / "semiconductor-eda"


def all_states(states: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(diagram node id, the prefix of its siblings' ids, state) of every state, nested ones included."""
    for name, state in states.items():
        node = docs._node_id(prefix, name)
        yield node, prefix, state
        if state.get("Type") == "Map":
            yield from all_states(state["ItemProcessor"]["States"], f"{node}_0_")
        for index, branch in enumerate(state.get("Branches", []) if state.get("Type") == "Parallel" else []):
            yield from all_states(branch["States"], f"{node}_{index}_")


def test_the_checked_in_copies_are_current(capsys):
    assert docs.main(["--check"]) == 0, capsys.readouterr().err


USE_CASES = docs.use_cases()


def test_there_are_three_use_cases():
    assert [uc.name for uc in USE_CASES] == ["autonomous-driving", "legal-compliance", "semiconductor-eda"]


@pytest.mark.parametrize("uc", USE_CASES, ids=lambda uc: uc.name)
def test_the_root_readme_carries_every_use_case_s_diagram_and_parameter_table(uc: Path):
    text = (REPO_ROOT / "README.md").read_text()
    for block in ("state-machine", "parameters"):
        assert f"<!-- generated:{uc.name}:{block} start -->" in text


def test_the_uc6_readme_carries_its_blocks():
    text = (UC6 / "README.md").read_text()
    for block in ("state-machine", "parameters"):
        assert f"<!-- generated:semiconductor-eda:{block} start -->" in text


@pytest.mark.parametrize("uc", USE_CASES, ids=lambda uc: uc.name)
def test_the_diagram_has_every_state_and_every_transition(uc: Path):
    template = load_template(uc / "template-deploy.yaml")
    diagram = docs.state_machine_diagram(template)
    (definition,) = [resource["Properties"]["Definition"] for resource in template["Resources"].values()
                     if resource["Type"] == "AWS::StepFunctions::StateMachine"]
    edges = set(re.findall(r"^\s*(\w+) -(?:->|\.->)(?:\|[^|]*\|)? (\w+)", diagram, flags=re.M))
    states = list(all_states(definition["States"]))
    assert states
    for node, prefix, state in states:
        assert re.search(rf"^\s*(subgraph )?{node}[\[{{(]", diagram, flags=re.M), node
        targets = [state.get("Next"), state.get("Default"), *(c["Next"] for c in state.get("Choices", [])),
                   *(c["Next"] for c in state.get("Catch", []))]
        for target in filter(None, targets):
            assert (node, docs._node_id(prefix, target)) in edges, (node, target)
        if state.get("End"):
            assert (node, f"{prefix}_end") in edges
    assert "end((end))" not in diagram.replace("_end((end))", "")  # "end" is a Mermaid keyword


def test_the_parameter_table_has_every_parameter_with_its_default():
    template = load_template(UC6 / "template-deploy.yaml")
    table = docs.parameter_table(template)
    rows = {line.split(" | ")[0].strip("| `"): line for line in table.splitlines()[2:]}
    assert set(rows) == set(template["Parameters"])
    assert "| required |" in rows["AccessPointArn"]
    assert "| `false` |" in rows["EnableDashboard"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copy2(REPO_ROOT / "README.md", tmp_path / "README.md")
    for uc in USE_CASES:
        (tmp_path / uc.name).mkdir()
        for name in ("README.md", "template-deploy.yaml"):
            shutil.copy2(uc / name, tmp_path / uc.name / name)
    return tmp_path


def test_check_fails_on_a_stale_copy_and_a_rewrite_fixes_it(tree, capsys):
    assert docs.main(["--check", "--root", str(tree)]) == 0
    template = tree / UC6.name / "template-deploy.yaml"
    template.write_text(template.read_text().replace("  EnableDashboard:\n", "  EnableBoard:\n", 1)
                        .replace("!Equals [!Ref EnableDashboard, 'true']", "!Equals [!Ref EnableBoard, 'true']")
                        .replace("EnableAlarms, EnableDashboard]", "EnableAlarms, EnableBoard]"))
    assert docs.main(["--check", "--root", str(tree)]) == 1
    assert "stale: semiconductor-eda/README.md" in capsys.readouterr().err
    assert docs.main(["--root", str(tree)]) == 0
    assert "`EnableBoard`" in (tree / UC6.name / "README.md").read_text()
    assert docs.main(["--check", "--root", str(tree)]) == 0


def test_a_marker_naming_no_use_case_is_an_error():
    with pytest.raises(KeyError, match="generated:nothing-here:parameters"):
        docs.render("<!-- generated:nothing-here:parameters start -->\n<!-- generated:nothing-here:parameters end -->",
                    {})
