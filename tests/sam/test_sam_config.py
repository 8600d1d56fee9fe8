"""What `sam local invoke` is given: an event per function, env.json, samconfig.sample.toml.

Every check here reads the templates, so a use case is covered as soon as its template lands.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.sam.overrides import sagemaker_emulator
from local.sam.provision import function_environment, on_host, provision, references, sam_environment
from local.usecases import REPO_ROOT, FunctionSpec, UseCase, load_use_case
from shared.errors import ConfigurationError, InvalidInputError
from tests.sam.helpers import all_functions, env_json, function_id, handler_module, use_cases
from tests.support.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.unit

FUNCTIONS = all_functions()
SAMCONFIG = REPO_ROOT / "samconfig.sample.toml"


def test_there_are_use_cases_with_functions() -> None:
    assert FUNCTIONS, "no */template-deploy.yaml with Lambda functions found"


@pytest.mark.parametrize("pair", FUNCTIONS, ids=function_id)
def test_every_function_has_an_event(pair: tuple[UseCase, FunctionSpec]) -> None:
    use_case, function = pair
    assert use_case.events_dir.is_dir(), f"no events folder events/uc<NN>-{use_case.name}/"
    event = use_case.load_event(function)
    assert event, f"{use_case.event_path(function)} is empty"


def test_env_json_sections_are_function_logical_ids() -> None:
    env = env_json()
    functions = {fn.logical_id: fn for _, fn in FUNCTIONS}
    sections = set(env) - {"Parameters"}
    assert sections == set(functions), (
        f"env.json sections {sorted(sections)} must be exactly the functions {sorted(functions)}"
    )


def test_env_json_sets_only_variables_the_template_declares() -> None:
    # SAM applies an env.json value only to a variable the function's template declares; any
    # other entry is silently ignored, which would make the configuration a lie. Use cases share
    # logical ids (every discovery function is DiscoveryFunction), so a section holds the union of
    # what its functions declare: each variable must be declared by at least one of them.
    env = env_json()
    declared_by_id: dict[str, set[str]] = {}
    for _, fn in FUNCTIONS:
        declared_by_id.setdefault(fn.logical_id, set()).update(fn.environment)
    for logical_id, variables in env.items():
        everything = set().union(*declared_by_id.values())
        declared = everything if logical_id == "Parameters" else declared_by_id[logical_id]
        unknown = set(variables) - declared
        assert not unknown, f"env.json {logical_id}: {sorted(unknown)} not declared in any template"


def env_json_conflicts(use_case: UseCase, env: dict[str, Any]) -> list[str]:
    """Template references (a bucket, a parameter) that two env.json values of one use case's
    functions name differently: a shared section (DiscoveryFunction) must hold a value that is
    right for every use case, so the functions of each still agree on one physical resource."""
    seen: dict[str, tuple[str, str]] = {}
    conflicts = []
    for function in use_case.functions:
        values = function_environment(env, function.logical_id, list(function.environment))
        for name, expression in function.environment.items():
            if name not in values:
                continue
            for ref in references(expression):
                first = seen.setdefault(ref, (f"{function.logical_id}.{name}", values[name]))
                if first[1] != values[name]:
                    conflicts.append(f"{ref}: {first[0]}={first[1]} but {function.logical_id}.{name}={values[name]}")
    return conflicts


@pytest.mark.parametrize("use_case", use_cases(), ids=lambda uc: uc.name)
def test_env_json_values_agree_within_each_use_case(use_case: UseCase) -> None:
    assert env_json_conflicts(use_case, env_json()) == []


def test_env_json_agreement_check_catches_a_value_right_for_one_use_case_only() -> None:
    # Known-bad input: a DiscoveryFunction bucket that only UC6 uses breaks UC1 and UC9.
    env = env_json()
    env["DiscoveryFunction"] = {**env["DiscoveryFunction"], "OUTPUT_BUCKET": "uc6-only-bucket"}
    broken = [uc.name for uc in use_cases() if env_json_conflicts(uc, env)]
    assert set(broken) >= {"autonomous-driving", "semiconductor-eda"}


def _samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as handle:
        return tomllib.load(handle)


def _overrides(value: str | list[str]) -> dict[str, str]:
    items = value if isinstance(value, list) else shlex.split(value)
    return dict(item.split("=", 1) for item in items)


def test_samconfig_has_local_invoke_and_deploy_per_use_case() -> None:
    config = _samconfig()
    assert config.get("version") == 0.1
    for use_case in use_cases():
        envs = [
            name
            for name, section in config.items()
            if isinstance(section, dict)
            and (REPO_ROOT / str(section.get("local_invoke", {}).get("parameters", {}).get("template_file", "")))
            == use_case.template_path
        ]
        assert envs, f"samconfig.sample.toml has no local_invoke section for {use_case.template_path}"
        for env_name in envs:
            assert "deploy" in config[env_name], f"[{env_name}] has local_invoke but no deploy section"


def test_samconfig_uses_only_declared_parameters() -> None:
    config = _samconfig()
    checked = 0
    for env_name, section in config.items():
        if not isinstance(section, dict):
            continue
        for command, body in section.items():
            params = body.get("parameters", {})
            template_file = params.get("template_file")
            assert template_file, f"[{env_name}.{command}] names no template_file"
            template_path = REPO_ROOT / template_file
            assert template_path.is_file(), f"[{env_name}.{command}] template_file {template_file} does not exist"
            declared = set(load_use_case(template_path.parent).template.get("Parameters") or {})
            for key in ("env_vars",):
                if key in params:
                    assert (REPO_ROOT / params[key]).is_file(), f"[{env_name}.{command}] {key} does not exist"
            if "parameter_overrides" in params:
                names = set(_overrides(params["parameter_overrides"]))
                unknown = names - declared
                assert not unknown, f"[{env_name}.{command}] overrides undeclared parameters {sorted(unknown)}"
                checked += len(names)
    assert checked, "no parameter_overrides checked"


def test_samconfig_check_fails_on_an_undeclared_parameter() -> None:
    # The check above is only worth something if an unknown name is caught.
    declared = set(use_cases()[0].template.get("Parameters") or {})
    names = set(_overrides("AccessPointArn=x NoSuchParameter=y"))
    assert names - declared == {"NoSuchParameter"}


def _validate(use_case: UseCase, function: FunctionSpec, event: Any, files: dict[str, Path] | None = None) -> None:
    """Run the handler on ``event``; raise only if it rejects the event or its configuration.

    The import is outside the judged part: a handler that cannot load fails the test. Failures
    after validation (data that only an earlier pipeline step would have written) are not judged
    here; the sam engine runs the functions in order for that. One of them: UC1's ONTAP calls go
    to the events' fixed endpoint, where nothing listens here (``provisioned``), so the ONTAP
    client makes one attempt instead of backing off through five (about 2.5 s of sleep a test),
    unless the function's own environment sets ``ONTAP_MAX_ATTEMPTS``."""
    env = env_json()
    environment = {"ONTAP_MAX_ATTEMPTS": "1", **sam_environment(use_case, function, env)}
    with handler_module(function, environment) as module:
        context = FakeLambdaContext(remaining_ms=120_000, function_name=function.logical_id)
        try:
            module.handler(on_host(event, files or {}), context)
        except (InvalidInputError, ConfigurationError):
            raise
        except Exception:  # noqa: S110 - see the docstring
            pass


@pytest.fixture
def provisioned(aws: boto3.Session) -> Iterator[Callable[[UseCase], dict[str, Path]]]:
    """``provisioned(use_case)``: the use case's resources and local services (UC1's fake ONTAP,
    where its events say) in this test's emulated AWS; returns the files its events name by their
    in-container path. A test provisions the use case of the function it runs, not all three."""
    with contextlib.ExitStack() as services:

        def provision_use_case(use_case: UseCase) -> dict[str, Path]:
            done = provision(
                use_case,
                env_json(),
                aws,
                objects=6,
                services=services,
                sagemaker=sagemaker_emulator(aws),
                fixed_endpoints=False,  # validation only: no call reaches them, and xdist may run this twice
            )
            return dict(done.container_files)

        yield provision_use_case


@pytest.mark.parametrize("pair", FUNCTIONS, ids=function_id)
def test_event_passes_the_handlers_validation(
    pair: tuple[UseCase, FunctionSpec], provisioned: Callable[[UseCase], dict[str, Path]]
) -> None:
    use_case, function = pair
    event = use_case.load_event(function)
    files = provisioned(use_case)
    try:
        _validate(use_case, function, event, files)
    except (InvalidInputError, ConfigurationError) as exc:
        pytest.fail(f"{use_case.event_path(function).relative_to(REPO_ROOT)} rejected: {exc}")


@pytest.mark.parametrize("pair", FUNCTIONS, ids=function_id)
def test_validation_rejects_an_empty_event(
    pair: tuple[UseCase, FunctionSpec], provisioned: Callable[[UseCase], dict[str, Path]]
) -> None:
    # Known-bad input: proves the check above can fail for every function. Provisioned as above:
    # the handlers' import primes their clients against the use case's resources.
    use_case, function = pair
    provisioned(use_case)
    with pytest.raises(InvalidInputError):
        _validate(use_case, function, {})


def test_env_json_is_valid_json_object() -> None:
    data = json.loads((REPO_ROOT / "events" / "env.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert all(isinstance(v, dict) for v in data.values())


def test_provisioning_creates_what_env_json_names() -> None:
    env = env_json()
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        for use_case in use_cases():
            done = provision(use_case, env, session, objects=4)
            s3 = session.client("s3")
            for arn in done.access_points:
                listed = s3.list_objects_v2(Bucket=arn).get("KeyCount", 0)
                assert listed >= 4, f"{arn}: sample data missing"
            buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
            assert set(done.buckets) <= buckets
            topics = {t["TopicArn"] for t in session.client("sns").list_topics()["Topics"]}
            assert set(done.topics) <= topics
            for value in (v for fn in use_case.functions for v in env.get(fn.logical_id, {}).values()):
                if value.startswith("arn:aws:sns:"):
                    assert value in topics, f"env.json topic {value} was not created"
