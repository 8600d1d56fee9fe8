"""local.template_yaml reads a template exactly as cfn-lint's decoder does, and refuses what it
refuses: compared on every template file of the repository, on each construct (every short-form
tag, GetAtt's forms, merges, anchors, YAML 1.1 scalars, the JSON fallback) and on random documents."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import decode, decode_str
from hypothesis import given, settings
from hypothesis import strategies as st

from local import template_yaml
from local.template import _plain
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.unit


def as_template(template: Any, matches: list[Any]) -> Any:
    """cfn-lint's decoder's result as a template: None when it refused the text or read no mapping
    (cfn-lint decodes a list, then reports it is no template; ``template_yaml`` refuses it at once)."""
    return _plain(template) if not matches and isinstance(template, dict) else None


def cfn_lint_reads(text: str) -> Any:
    return as_template(*decode_str(text))


def ours(text: str) -> Any:
    try:
        return _plain(template_yaml.loads(text))
    except template_yaml.DecodeError:
        return None


def template_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.yaml", "*.yml", "*.json"], cwd=REPO_ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    return [REPO_ROOT / name for name in listed
            if "Resources" in (REPO_ROOT / name).read_text(encoding="utf-8", errors="replace")]


def test_there_are_templates_to_compare() -> None:
    assert len(template_files()) >= 10


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_template_file_reads_as_cfn_lint_reads_it(path: Path) -> None:
    expected = as_template(*decode(str(path)))
    try:
        got = _plain(template_yaml.loads(path.read_text(encoding="utf-8")))
    except template_yaml.DecodeError:
        got = None
    assert got == expected


CONSTRUCTS = """\
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Level: {Type: String, AllowedValues: [OFF, 'ON', yes, No, y, ~, null, 1.0, 0x1F, 1e3, 017, .inf]}
Conditions:
  On: !Equals [!Ref Level, 'ON']
  Both: !And [!Condition On, !Not [!Equals [!Ref 'AWS::Region', us-east-1]]]
Mappings:
  M: {us-east-1: {Size: 3}}
base: &base {Timeout: 30, Memory: 128}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Condition: On
    Properties:
      <<: *base
      Memory: 256
      Name: !Sub '${AWS::StackName}-fn'
      Sub2: !Sub ['${A}-${B}', {A: !Ref Level, B: !GetAtt Other.Arn}]
      Att1: !GetAtt Other.Arn.Deep
      Att2: !GetAtt [Other, Arn]
      Att3: !GetAtt [Other, !Ref Level]
      Join: !Join [',', [a, !Select [0, !GetAZs ''], !Split ['/', !ImportValue X]]]
      Find: !FindInMap [M, !Ref 'AWS::Region', Size]
      B64: !Base64 "text"
      Cidr: !Cidr [10.0.0.0/16, 4, 8]
      If: !If [On, !Ref AWS::NoValue, {Nested: !ToJsonString {a: [1, 2]}}]
      Or: !Or [!Condition On, !Condition Both]
      Text: |
        multi
        line
      Folded: >-
        folded
        text
      Unicode: "ä \\u2028 😀"
      Empty:
      Date: '2012-10-17'
      Int: 3
      Float: 2.5
      Bool: true
  Other: {Type: AWS::SNS::Topic}
"""


def test_every_construct_reads_as_cfn_lint_reads_it() -> None:
    expected = cfn_lint_reads(CONSTRUCTS)
    assert expected is not None
    assert ours(CONSTRUCTS) == expected
    fn = expected["Resources"]["Fn"]["Properties"]
    assert fn["Att1"] == {"Fn::GetAtt": ["Other", "Arn.Deep"]}
    assert (fn["Memory"], fn["Timeout"]) == (256, 30)


@pytest.mark.parametrize(
    ("text", "refused_for"),
    [
        ("Resources:\n  A: {Type: X}\n  A: {Type: Y}\n", "Duplicate found 'A'"),
        ("Resources:\n  ~: {Type: X}\n", "Null key"),
        ("- just\n- a list\n", "a mapping"),
        ("Resources: {A: [unclosed\n", "expected"),
        ("{\n\t\"Resources\": {\"A\": {}, \"A\": {}}\n}\n", "Duplicate found 'A'"),
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e]\n", "aliases"),
    ],
    ids=["duplicate key", "null key", "not a mapping", "bad yaml", "json duplicate", "alias amplification"],
)
def test_what_cfn_lint_refuses_is_refused_with_a_clear_error(text: str, refused_for: str) -> None:
    assert cfn_lint_reads(text) is None
    with pytest.raises(template_yaml.DecodeError, match=refused_for):
        template_yaml.loads(text)


def test_json_with_tabs_is_read_as_json_as_cfn_lint_reads_it() -> None:
    text = '{\n\t"Resources": {\n\t\t"T": {"Type": "AWS::SNS::Topic", "Properties": {"N": 1.5, "B": true}}\n\t}\n}\n'
    assert ours(text) == cfn_lint_reads(text) == {
        "Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"N": 1.5, "B": True}}}}


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=12),
                     st.sampled_from(["yes", "No", "ON", "off", "~", "0x1F", "017", "1e3", ".nan", "2012-10-17x"]))
_documents = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(min_size=1, max_size=8), inner, max_size=4), max_leaves=20),
    min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(document=_documents, style=st.sampled_from([None, True, False]))
def test_random_documents_read_as_cfn_lint_reads_them(document: dict[str, Any], style: bool | None) -> None:
    text = yaml.safe_dump(document, default_flow_style=style, allow_unicode=True)
    assert ours(text) == cfn_lint_reads(text)
