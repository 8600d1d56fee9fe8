"""Published versions follow every change, and only changes (DESIGN §4, docs/snapstart.md).

For every template with Lambda versions, on the resolved template: a version is replaced exactly
when its own function is modified (its code hash, or any parameter that reaches its
configuration), the function's and the version's Description carry the same identity, and that
identity fits Lambda's 256-character Description limit for every value the parameters allow.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.templates import REPO_ROOT, Resolver, all_templates, deployable, load_template, opt_in_parameters
from tests.template.version_identity import (
    DESCRIPTION_LIMIT,
    UnboundedError,
    changes,
    identity_problems,
    max_length,
    versions,
)

pytestmark = pytest.mark.template

SNAPSTART = {"EnableSnapStart": "true"}


def _templates_with_versions() -> list[Path]:
    return [path for path in all_templates() if versions(load_template(path))]


@functools.cache
def _decoded(path: Path) -> dict[str, Any]:
    """The decoded template, shared by the examples of the sweep below: identity_problems only reads
    it (test_identity_problems_leave_the_template_as_it_was), and decoding is most of an example."""
    return load_template(path)


TEMPLATES = _templates_with_versions()
IDS = [str(p.relative_to(REPO_ROOT)) for p in TEMPLATES]


def _switches_on(template: Mapping[str, Any]) -> dict[str, str]:
    """Every 'true'/'false' parameter set to 'true' (and what the template's Rules then demand)."""
    return deployable(template, opt_in_parameters(template))


def _alternatives(name: str, spec: Mapping[str, Any]) -> Iterator[str]:
    """Deterministic other values of a parameter: its other AllowedValues, a Number's bounds."""
    default = str(spec.get("Default", ""))
    if "AllowedValues" in spec:
        yield from (str(v) for v in spec["AllowedValues"] if str(v) != default)
    elif spec.get("Type") == "Number":
        yield from {str(spec[k]) for k in ("MinValue", "MaxValue") if k in spec and str(spec[k]) != default}


def test_there_are_templates_with_versions() -> None:
    assert TEMPLATES, "no template declares an AWS::Lambda::Version"


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_function_and_version_descriptions_are_the_same_identity(path: Path) -> None:
    template = load_template(path)
    for params in (SNAPSTART, _switches_on(template)):
        resolver = Resolver(template, params)
        for version, function in versions(template).items():
            version_props = resolver.resolve(template["Resources"][version]["Properties"])
            function_props = resolver.resolve(template["Resources"][function]["Properties"])
            assert version_props.get("Description"), f"{version} has no Description"
            assert version_props["Description"] == function_props.get("Description"), (version, function)


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_a_new_code_hash_republishes_exactly_its_own_function(path: Path) -> None:
    template = load_template(path)
    for version, function in versions(template).items():
        parameter = f"{function.removesuffix('Function')}CodeHash"
        assert parameter in template["Parameters"], f"{function} has no {parameter} parameter"
        after = {**SNAPSTART, parameter: "0123456789abcdef"}
        result = changes(template, SNAPSTART, after)
        assert result.replaced_versions == {version}, parameter
        assert result.modified_functions == {function}, parameter
        assert identity_problems(template, SNAPSTART, after) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_nothing_changed_replaces_no_version(path: Path) -> None:
    template = load_template(path)
    for params in (SNAPSTART, _switches_on(template)):
        result = changes(template, params, dict(params))
        assert result.replaced_versions == set()
        assert result.modified_functions == set()


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_every_allowed_value_change_keeps_versions_and_functions_in_step(path: Path) -> None:
    template = load_template(path)
    swept = 0
    for base in (SNAPSTART, _switches_on(template)):
        for name, spec in template["Parameters"].items():
            if name == "EnableSnapStart":
                continue
            for value in _alternatives(name, spec):
                after = deployable(template, {**base, name: value})  # as CloudFormation would accept it
                assert identity_problems(template, base, after) == [], (name, value)
                swept += 1
    assert swept


def _string_parameters(template: Mapping[str, Any]) -> list[str]:
    return sorted(
        name
        for name, spec in template["Parameters"].items()
        if spec.get("Type") == "String" and "AllowedPattern" in spec and "AllowedValues" not in spec
    )


def _value_of(spec: Mapping[str, Any]) -> st.SearchStrategy[str]:
    limit = int(spec.get("MaxLength", 4096))
    return st.from_regex(spec["AllowedPattern"], fullmatch=True).filter(lambda v: len(v) <= limit)


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_identity_problems_leave_the_template_as_it_was(path: Path) -> None:
    template = _decoded(path)
    pristine = copy.deepcopy(template)
    function = sorted(versions(template).values())[0]
    identity_problems(template, SNAPSTART, _switches_on(template))
    identity_problems(template, SNAPSTART, {**SNAPSTART, f"{function.removesuffix('Function')}CodeHash": "0" * 16})
    assert template == pristine


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_any_valid_string_value_keeps_versions_and_functions_in_step(path: Path, data: st.DataObject) -> None:
    template = _decoded(path)
    names = _string_parameters(template)
    name = data.draw(st.sampled_from(names), label="parameter")
    value = data.draw(_value_of(template["Parameters"][name]), label="value")
    assert identity_problems(template, SNAPSTART, {**SNAPSTART, name: value}) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_descriptions_fit_lambdas_limit_for_every_allowed_value(path: Path) -> None:
    template = load_template(path)
    for version, function in versions(template).items():
        for logical_id in (version, function):
            description = template["Resources"][logical_id]["Properties"]["Description"]
            assert max_length(template, description) <= DESCRIPTION_LIMIT, logical_id


# ---------------------------------------------------------------- the checks fail on bad wiring
BASE = """
Parameters:
  EnableSnapStart: {Type: String, Default: 'true', AllowedValues: ['true', 'false']}
  WorkCodeHash: {Type: String, Default: unpackaged, MaxLength: 16}
  OtherCodeHash: {Type: String, Default: unpackaged, MaxLength: 16}
  Prefix: {Type: String, Default: '', MaxLength: 32}
Conditions:
  SnapStartEnabled: !Equals [!Ref EnableSnapStart, 'true']
Resources:
  WorkFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: handler.handler
      Role: arn:aws:iam::123456789012:role/r
      Code: {ZipFile: x}
      Description: !Sub '${WorkCodeHash} ${Prefix}'
      Environment: {Variables: {PREFIX: !Ref Prefix}}
  WorkVersion:
    Type: AWS::Lambda::Version
    Condition: SnapStartEnabled
    Properties:
      FunctionName: !Ref WorkFunction
      Description: !Sub '${WorkCodeHash} ${Prefix}'
  OtherFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: handler.handler
      Role: arn:aws:iam::123456789012:role/r
      Code: {ZipFile: x}
      Description: !Sub '${OtherCodeHash}'
  OtherVersion:
    Type: AWS::Lambda::Version
    Condition: SnapStartEnabled
    Properties:
      FunctionName: !Ref OtherFunction
      Description: !Sub '${OtherCodeHash}'
"""


def _decode(text: str) -> dict[str, Any]:
    template, matches = decode_str(text)
    assert not matches
    return dict(template)


def test_the_reference_passes() -> None:
    template = _decode(BASE)
    assert identity_problems(template, {}, {"Prefix": "designs/"}) == []
    assert changes(template, {}, {"Prefix": "designs/"}).replaced_versions == {"WorkVersion"}
    assert identity_problems(template, {}, {"OtherCodeHash": "0123456789abcdef"}) == []


def test_a_single_code_hash_for_every_version_is_caught() -> None:
    # The first design: one hash as every version's Description, so editing one handler replaced
    # every version, and PublishVersion refused the unchanged functions.
    head, tail = BASE.rsplit("Description: !Sub '${OtherCodeHash}'", 1)  # OtherVersion's
    bad = _decode(head + "Description: !Sub '${WorkCodeHash}'" + tail)
    problems = identity_problems(bad, {}, {"WorkCodeHash": "0123456789abcdef"})
    assert "OtherVersion is replaced but OtherFunction is unchanged: PublishVersion would refuse to publish it" in (
        problems
    )


def test_configuration_that_misses_the_version_is_caught() -> None:
    # SourcePrefix-style parameter in the environment but not in the version's identity.
    bad = _decode(BASE.replace("Description: !Sub '${WorkCodeHash} ${Prefix}'", "Description: !Sub '${WorkCodeHash}'"))
    assert identity_problems(bad, {}, {"Prefix": "designs/"}) == [
        "WorkFunction changes but WorkVersion is not replaced: its alias keeps the old function"
    ]


def test_the_string_sweep_reaches_a_bad_value() -> None:
    # The hypothesis sweep above draws values of every patterned parameter; prove one draw is enough.
    bad = _decode(
        BASE.replace(
            "Prefix: {Type: String, Default: '', MaxLength: 32}",
            "Prefix: {Type: String, Default: '', MaxLength: 32, AllowedPattern: '^[a-z/]{0,32}$'}",
        ).replace("Description: !Sub '${WorkCodeHash} ${Prefix}'", "Description: !Sub '${WorkCodeHash}'")
    )
    assert _string_parameters(bad) == ["Prefix"]
    value = "designs/"
    assert re.fullmatch(bad["Parameters"]["Prefix"]["AllowedPattern"], value)
    assert identity_problems(bad, SNAPSTART, {**SNAPSTART, "Prefix": value})


def test_max_length_counts_the_constraints_and_refuses_unbounded_parameters() -> None:
    template = _decode(BASE)
    description = template["Resources"]["WorkFunction"]["Properties"]["Description"]
    assert max_length(template, description) == 16 + 1 + 32
    template["Parameters"]["Prefix"]["MaxLength"] = 300
    assert max_length(template, description) > DESCRIPTION_LIMIT
    del template["Parameters"]["Prefix"]["MaxLength"]
    with pytest.raises(UnboundedError, match="Prefix"):
        max_length(template, description)
    with pytest.raises(UnboundedError, match="resource attribute"):
        max_length(template, {"Fn::Sub": "${WorkFunction.Arn}"})
    assert max_length(template, {"Fn::If": ["SnapStartEnabled", "abc", {"Ref": "EnableSnapStart"}]}) == 5
