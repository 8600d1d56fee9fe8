"""Create, in the emulated AWS, the resources a use case's functions are configured to use.

CloudFormation is not run (moto's cannot deploy these templates, see DESIGN §8). Instead the
functions' environment in ``events/env.json`` names the physical resources, and the template says
what each one is: ``OUTPUT_BUCKET: !If [CreateOutputBucket, !Ref OutputBucket, !Ref
OutputBucketName]`` makes the env.json value the physical name of the ``AWS::S3::Bucket``
``OutputBucket``. From that mapping the bucket, SNS topic, Athena work group, Glue database and
tables, and the S3 access point (with the use case's sample data behind it) are created with the
properties the template gives them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local.runner.intrinsics import NO_VALUE, IntrinsicError, IntrinsicResolver
from local.sam.usecases import UseCase, UseCaseError
from local.template import ParameterError, resolve_parameters

ACCOUNT = "123456789012"
REGION = "us-east-1"
_PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "sam-local",
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/sam-local/00000000-0000-0000-0000-000000000000",
}
_ACCESS_POINT_ARN = re.compile(
    r"^arn:aws[a-z-]*:s3:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):accesspoint/(?P<name>[a-z0-9-]+)$"
)


class UnresolvedError(IntrinsicError):
    """An intrinsic function refers to something with no known local value."""


def function_environment(env_json: Mapping[str, Any], logical_id: str, names: list[str]) -> dict[str, str]:
    """What ``sam local invoke --env-vars`` gives the function: its section, then ``Parameters``."""
    shared = env_json.get("Parameters") or {}
    own = env_json.get(logical_id) or {}
    out: dict[str, str] = {}
    for name in names:
        if name in own:
            out[name] = str(own[name])
        elif name in shared:
            out[name] = str(shared[name])
    return out


def references(node: Any) -> list[str]:
    """Logical ids / parameter names a value may stand for (both branches of an Fn::If)."""
    if isinstance(node, Mapping) and len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref" and isinstance(arg, str):
            return [arg]
        if key == "Fn::GetAtt":
            target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
            return [str(target)]
        if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
            return references(arg[1]) + references(arg[2])
    return []


class Resolver(IntrinsicResolver):
    """The template's intrinsics, with ``Ref``/``Fn::GetAtt`` answered by the known physical values
    (parameters fall back to their defaults, so Conditions evaluate as SAM evaluates them)."""

    def __init__(self, template: Mapping[str, Any], known: Mapping[str, str] | None = None) -> None:
        self.template = dict(template)
        self.conditions = {}
        self.known: dict[str, str] = dict(known or {})

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name in self.known:
            return self.known[name]
        params = self.template.get("Parameters") or {}
        if name in params and "Default" in params[name]:
            return str(params[name]["Default"])
        raise UnresolvedError(name)

    def _getatt(self, logical: str, attr: str) -> Any:
        value = self._ref(logical)
        rtype = ((self.template.get("Resources") or {}).get(logical) or {}).get("Type")
        if rtype == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{value}"
        if attr in {"Arn", "Name", "TopicArn", "TopicName"}:
            return value
        raise UnresolvedError(f"{logical}.{attr}")


@dataclass
class Provisioned:
    """What was created for one use case (for the report and for diagnostics)."""

    buckets: list[str] = field(default_factory=list)
    access_points: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    workgroups: list[str] = field(default_factory=list)
    glue_tables: list[str] = field(default_factory=list)
    sample_objects: int = 0


def known_values(use_case: UseCase, env_json: Mapping[str, Any]) -> dict[str, str]:
    """Logical id / parameter name -> physical value, read off the functions' env.json values."""
    known: dict[str, str] = {}
    for function in use_case.functions:
        values = function_environment(env_json, function.logical_id, list(function.environment))
        for name, expression in function.environment.items():
            if name not in values:
                continue
            for ref in references(expression):
                known.setdefault(ref, values[name])
    return known


def stack_parameters(use_case: UseCase, env_json: Mapping[str, Any]) -> dict[str, Any]:
    """The stack's parameter values as CloudFormation would bind them: the values env.json gives
    the functions for parameters they reference, then the use case's samconfig ``local_invoke``
    ``parameter_overrides`` (what ``sam local invoke --config-env`` passes), the Defaults otherwise — validated (Type,
    AllowedValues/Pattern, Min/Max, Rules) by ``local.template`` before anything is created."""
    declared = use_case.template.get("Parameters") or {}
    known = {**use_case.local_invoke_overrides(), **known_values(use_case, env_json)}
    given = {name: known[name] for name in declared if name in known}
    try:
        return resolve_parameters(use_case.template, given, source=f"{use_case.name} with events/env.json")
    except ParameterError as exc:
        raise UseCaseError(f"{use_case.name}: {exc}") from exc


def provision(
    use_case: UseCase, env_json: Mapping[str, Any], session: Any, *, objects: int, seed: int = 0
) -> Provisioned:
    """Create the use case's resources in the emulated AWS that ``session``'s clients reach."""
    stack_parameters(use_case, env_json)
    resolver = Resolver(use_case.template, known_values(use_case, env_json))
    resources: Mapping[str, Any] = use_case.template.get("Resources") or {}
    parameters: Mapping[str, Any] = use_case.template.get("Parameters") or {}
    done = Provisioned()
    s3 = session.client("s3", region_name=REGION)

    for logical_id, resource in resources.items():
        if resource.get("Type") == "AWS::S3::Bucket" and logical_id in resolver.known:
            _create_bucket(s3, resolver.known[logical_id])
            done.buckets.append(resolver.known[logical_id])
    for name in parameters:
        value = resolver.known.get(name)
        if value is None:
            continue
        if _ACCESS_POINT_ARN.match(value):
            done.sample_objects += _create_access_point(session, s3, use_case, value, objects=objects, seed=seed)
            done.access_points.append(value)
        elif name.endswith("BucketName") and value not in done.buckets:
            _create_bucket(s3, value)
            done.buckets.append(value)

    for logical_id, resource in resources.items():
        rtype = resource.get("Type")
        props = resource.get("Properties") or {}
        if rtype == "AWS::SNS::Topic" and logical_id in resolver.known:
            arn = resolver.known[logical_id]
            session.client("sns", region_name=REGION).create_topic(Name=arn.rsplit(":", 1)[-1])
            done.topics.append(arn)
        elif rtype == "AWS::Athena::WorkGroup" and logical_id in resolver.known:
            config = resolver.resolve(props.get("WorkGroupConfiguration") or {})
            result = {"OutputLocation": config.get("ResultConfiguration", {}).get("OutputLocation", "")}
            session.client("athena", region_name=REGION).create_work_group(
                Name=resolver.known[logical_id],
                Configuration={
                    "ResultConfiguration": result,
                    "EnforceWorkGroupConfiguration": bool(config.get("EnforceWorkGroupConfiguration", False)),
                },
            )
            done.workgroups.append(resolver.known[logical_id])
        elif rtype == "AWS::Glue::Database" and logical_id in resolver.known:
            session.client("glue", region_name=REGION).create_database(
                DatabaseInput={"Name": resolver.known[logical_id]}
            )
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Glue::Table":
            continue
        props = resource.get("Properties") or {}
        try:
            database = resolver.resolve(props.get("DatabaseName"))
            table_input = resolver.resolve(props.get("TableInput") or {})
        except UnresolvedError:
            continue  # its database or bucket is not configured for any function: not needed
        resolver.known.setdefault(logical_id, str(table_input.get("Name", "")))
        session.client("glue", region_name=REGION).create_table(DatabaseName=database, TableInput=table_input)
        done.glue_tables.append(f"{database}.{table_input.get('Name')}")
    return done


def _create_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name)


def _create_access_point(session: Any, s3: Any, use_case: UseCase, arn: str, *, objects: int, seed: int) -> int:
    match = _ACCESS_POINT_ARN.match(arn)
    if match is None:  # pragma: no cover - callers check
        raise UseCaseError(f"not an access point ARN: {arn}")
    name = match.group("name")
    backing = f"{name}-backing"[:63]
    _create_bucket(s3, backing)
    session.client("s3control", region_name=REGION).create_access_point(
        AccountId=match.group("account"), Name=name, Bucket=backing
    )
    module_name = f"local.samples.{use_case.package}"
    try:
        samples = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise UseCaseError(f"{use_case.name}: no sample generator {module_name}") from exc
    sample_set = samples.generate(s3, arn, objects=objects, seed=seed)
    keys = getattr(sample_set, "keys", None)
    return len(keys) if keys is not None else objects
