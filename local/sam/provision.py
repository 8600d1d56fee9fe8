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

import contextlib
import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.emulators.sagemaker import SageMakerEmulator
from local.runner.intrinsics import ACCOUNT, REGION, IntrinsicError, IntrinsicResolver, pseudo_parameters
from local.template import ParameterError, resolve_parameters
from local.usecases import FunctionSpec, UseCase, UseCaseError

_PSEUDO = pseudo_parameters(
    "sam-local",
    stack_id=f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/sam-local/00000000-0000-0000-0000-000000000000",
)
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
    (parameters fall back to their defaults, so Conditions evaluate as SAM evaluates them).

    Not the runner's ``Stack``: no stack is created for ``sam local invoke``, so a resource is
    only what events/env.json names it, and anything unnamed is ``UnresolvedError`` (SAM leaves
    such a variable empty) rather than an emulated resource."""

    def __init__(self, template: Mapping[str, Any], known: Mapping[str, str] | None = None) -> None:
        self.template = dict(template)
        self.conditions = {}
        self.pseudo = _PSEUDO
        self.known: dict[str, str] = dict(known or {})

    def parameter_values(self) -> dict[str, Any]:
        params = self.template.get("Parameters") or {}
        defaults = {name: str(spec["Default"]) for name, spec in params.items() if "Default" in spec}
        return {**defaults, **{name: value for name, value in self.known.items() if name in params}}

    def _resource_ref(self, name: str) -> Any:
        if name in self.known:
            return self.known[name]
        raise UnresolvedError(name)

    def _getatt(self, logical: str, attr: str) -> Any:
        value = self._ref(logical)
        rtype = ((self.template.get("Resources") or {}).get(logical) or {}).get("Type")
        if rtype == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{value}"
        # Names (EndpointName, ModelName, ...) and ARNs are the known physical value itself.
        if attr in {"Arn", "TopicArn"} or attr.endswith("Name"):
            return value
        raise UnresolvedError(f"{logical}.{attr}")


def sam_environment(use_case: UseCase, function: FunctionSpec, env_json: Mapping[str, Any]) -> dict[str, str]:
    """The variables ``sam local invoke --env-vars`` gives the function: the template's values
    (literals, parameter defaults, the physical names env.json gives) overridden by its env.json
    values; variables nothing resolves are left out, as SAM leaves them empty."""
    resolver = Resolver(use_case.template, known_values(use_case, env_json))
    out: dict[str, str] = {}
    for name, expression in function.environment.items():
        try:
            value = resolver.resolve(expression)
        except UnresolvedError:
            continue
        if isinstance(value, str | int | float | bool):
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    out.update(function_environment(env_json, function.logical_id, list(function.environment)))
    return out


@dataclass
class Provisioned:
    """What was created for one use case (for the report and for diagnostics)."""

    buckets: list[str] = field(default_factory=list)
    access_points: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    workgroups: list[str] = field(default_factory=list)
    glue_tables: list[str] = field(default_factory=list)
    sample_objects: int = 0
    sagemaker: list[str] = field(default_factory=list)  # models, endpoints, inference components
    services: list[str] = field(default_factory=list)  # local services started (UC1: the fake ONTAP)
    # Files a Lambda container needs at a fixed path (path in the container -> file on this host):
    # a local service's CA certificate that the stack's parameters name by its in-container path.
    container_files: dict[str, Path] = field(default_factory=dict)
    # What the samples module's generate() returned, per access point (keys, valid, ignored, ...).
    sample_sets: list[Any] = field(default_factory=list, repr=False)


def _named_by(expression: Any, resources: Mapping[str, Any]) -> list[str]:
    """Resources whose own name property (``InferenceComponentName``, ...) is a branch of the
    ``Fn::If`` ``expression``: the variable then holds that resource's physical name."""
    if not (isinstance(expression, Mapping) and list(expression) == ["Fn::If"]):
        return []
    branches = expression["Fn::If"][1:] if isinstance(expression["Fn::If"], list) else []
    found = []
    for logical_id, resource in resources.items():
        rtype = str(resource.get("Type", ""))
        name_property = rtype.rsplit("::", 1)[-1] + "Name"
        value = (resource.get("Properties") or {}).get(name_property)
        if value is not None and any(value == branch for branch in branches):
            found.append(logical_id)
    return found


def known_values(use_case: UseCase, env_json: Mapping[str, Any]) -> dict[str, str]:
    """Logical id / parameter name -> physical value, read off the functions' env.json values."""
    known: dict[str, str] = {}
    resources: Mapping[str, Any] = use_case.template.get("Resources") or {}
    for function in use_case.functions:
        values = function_environment(env_json, function.logical_id, list(function.environment))
        for name, expression in function.environment.items():
            if name not in values:
                continue
            for ref in references(expression) + _named_by(expression, resources):
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
    use_case: UseCase,
    env_json: Mapping[str, Any],
    session: Any,
    *,
    objects: int,
    seed: int = 0,
    services: contextlib.ExitStack | None = None,
    sagemaker: SageMakerEmulator | None = None,
    fixed_endpoints: bool = True,
) -> Provisioned:
    """Create the use case's resources in the emulated AWS that ``session``'s clients reach.

    ``services``: where to enter the use case's local services (its samples module's
    ``local_services``, UC1's fake ONTAP), kept running until that stack closes; without it they are
    not started; they listen where the stack's parameters (and so the events) say, or with
    ``fixed_endpoints=False`` wherever is free (tests that may run in parallel and do not call
    them). ``sagemaker``: the emulator to register the template's SageMaker models,
    endpoints and inference components with, under the names env.json gives the functions."""
    stack = stack_parameters(use_case, env_json)
    resolver = Resolver(use_case.template, known_values(use_case, env_json))
    resources: Mapping[str, Any] = use_case.template.get("Resources") or {}
    parameters: Mapping[str, Any] = use_case.template.get("Parameters") or {}
    done = Provisioned()
    s3 = session.client("s3", region_name=REGION)

    for logical_id, resource in resources.items():
        if resource.get("Type") == "AWS::S3::Bucket" and logical_id in resolver.known:
            _create_bucket(s3, resolver.known[logical_id])
            done.buckets.append(resolver.known[logical_id])
    samples: list[Any] = []
    for name in parameters:
        # env.json's value, else the stack's (samconfig's local_invoke overrides): UC1 names its
        # access point in the event, so only the stack parameter says which one to create.
        value = resolver.known.get(name) or (str(stack[name]) if isinstance(stack.get(name), str) else None)
        if not value:
            continue
        if _ACCESS_POINT_ARN.match(value):
            sample_set = _create_access_point(session, s3, use_case, value, objects=objects, seed=seed)
            samples.append(sample_set)
            done.sample_sets.append(sample_set)
            keys = getattr(sample_set, "keys", None)
            done.sample_objects += len(keys) if keys is not None else objects
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
    if sagemaker is not None:
        _register_sagemaker(use_case, resolver, session, sagemaker, done)
    if services is not None:
        for sample_set in samples:
            _start_services(
                use_case, stack, session, sample_set, services=services, done=done, fixed_endpoints=fixed_endpoints
            )
    return done


def on_host(event: Any, container_files: Mapping[str, Path]) -> Any:
    """``event`` with every string that is an in-container path of ``container_files`` replaced by
    the file on this host: for running a function as a host process (the CRIU tier, the tests)
    with the event written for the sam tier's image."""
    if isinstance(event, str):
        return str(container_files[event]) if event in container_files else event
    if isinstance(event, Mapping):
        return {key: on_host(value, container_files) for key, value in event.items()}
    if isinstance(event, list):
        return [on_host(value, container_files) for value in event]
    return event


def _samples_module(use_case: UseCase) -> ModuleType:
    module_name = f"local.samples.{use_case.package}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise UseCaseError(f"{use_case.name}: no sample generator {module_name}") from exc


def _start_services(
    use_case: UseCase,
    stack: Mapping[str, Any],
    session: Any,
    sample_set: Any,
    *,
    services: contextlib.ExitStack,
    done: Provisioned,
    fixed_endpoints: bool,
) -> None:
    """Enter the samples module's ``local_services`` where the stack's parameters say (its
    ``sam_service_options``) and collect the files a container needs from them: a service
    parameter that is a file on this host, where the stack parameter is an absolute path, is that
    file at that path inside the Lambda container (UC1: the fake ONTAP's CA certificate)."""
    module = _samples_module(use_case)
    start = getattr(module, "local_services", None)
    if start is None:
        return
    options_for = getattr(module, "sam_service_options", None) if fixed_endpoints else None
    try:
        options = options_for(dict(stack)) if options_for is not None else {}
    except ValueError as exc:
        raise UseCaseError(f"{use_case.name}: {exc}") from exc
    try:
        started = services.enter_context(start(session, sample_set, **options))
    except OSError as exc:
        raise UseCaseError(f"{use_case.name}: its local services cannot start ({options}): {exc}") from exc
    for name, value in started.parameters.items():
        wanted = stack.get(name)
        if isinstance(wanted, str) and wanted.startswith("/") and Path(value).is_file():
            done.container_files[wanted] = Path(value)
    done.services.append(f"{use_case.name}: {', '.join(sorted(started.parameters))}")


def _register_sagemaker(
    use_case: UseCase, resolver: Resolver, session: Any, emulator: SageMakerEmulator, done: Provisioned
) -> None:
    """The template's SageMaker resources, as CloudFormation creates them, whatever their
    Conditions: a function can only be invoked locally if the endpoint its env.json names exists.
    Models are named after their logical id; ``ModelDataUrl``/``Image`` come from the samples
    module's ``stack_parameters`` (it uploads the model archive the project builds)."""
    resources: Mapping[str, Any] = use_case.template.get("Resources") or {}
    models = [lid for lid, res in resources.items() if res.get("Type") == "AWS::SageMaker::Model"]
    if not models:
        return
    provide = getattr(_samples_module(use_case), "stack_parameters", None)
    provided = {str(k): str(v) for k, v in (provide(session) if provide is not None else {}).items()}
    resolver.known.update({name: value for name, value in provided.items() if name not in resolver.known})
    for lid in models:
        name = resolver.known.setdefault(lid, f"sam-local-{lid.lower()}")
        container = (resources[lid].get("Properties") or {}).get("PrimaryContainer") or {}
        emulator.add_model(name, {"PrimaryContainer": resolver.resolve(container)})
        done.sagemaker.append(f"model {name}")
    for lid, resource in resources.items():
        if resource.get("Type") != "AWS::SageMaker::Endpoint" or lid not in resolver.known:
            continue
        props = resource.get("Properties") or {}
        (config_lid,) = references(props.get("EndpointConfigName"))
        config_name = resolver.known.setdefault(config_lid, f"{resolver.known[lid]}-config")
        config = resources[config_lid].get("Properties") or {}
        variants = resolver.resolve(config["ProductionVariants"])
        emulator.add_endpoint_config(config_name, {"ProductionVariants": variants})
        emulator.add_endpoint(resolver.known[lid], config_name)
        done.sagemaker.append(f"endpoint {resolver.known[lid]}")
    for lid, resource in resources.items():
        if resource.get("Type") != "AWS::SageMaker::InferenceComponent" or lid not in resolver.known:
            continue
        props = resource.get("Properties") or {}
        spec = {
            "EndpointName": resolver.resolve(props.get("EndpointName")),
            "Specification": {"ModelName": resolver.resolve((props.get("Specification") or {}).get("ModelName"))},
        }
        emulator.add_inference_component(resolver.known[lid], spec)
        done.sagemaker.append(f"inference component {resolver.known[lid]}")


def _create_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name)


def _create_access_point(session: Any, s3: Any, use_case: UseCase, arn: str, *, objects: int, seed: int) -> Any:
    """The access point (created once: the stacks share it locally) with the use case's samples."""
    match = _ACCESS_POINT_ARN.match(arn)
    if match is None:  # pragma: no cover - callers check
        raise UseCaseError(f"not an access point ARN: {arn}")
    name = match.group("name")
    s3control = session.client("s3control", region_name=REGION)
    existing = {ap["Name"] for ap in s3control.list_access_points(AccountId=match.group("account"))["AccessPointList"]}
    if name not in existing:
        backing = f"{name}-backing"[:63]
        _create_bucket(s3, backing)
        s3control.create_access_point(AccountId=match.group("account"), Name=name, Bucket=backing)
    return _samples_module(use_case).generate(s3, arn, objects=objects, seed=seed)
