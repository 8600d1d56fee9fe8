"""Read CloudFormation templates the way CloudFormation does, for tests.

Templates are decoded as cfn-lint's decoder does (``local.template``: short tags such as ``!Ref``
become their long form),
never by stripping tags. ``Resolver`` evaluates Conditions and the intrinsic functions a test
needs (Ref, Fn::GetAtt, Fn::If, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::Equals, Fn::And,
Fn::Or, Fn::Not, Condition) for a given parameter set. Resources get deterministic fake physical
ids and ARNs so that what a state machine would invoke can be compared with what IAM allows.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from local.runner import intrinsics
from local.runner.intrinsics import IntrinsicResolver, pseudo_parameters
from local.template import ParameterError, resolve_parameters
from local.template import load_template as _load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
# The emulated account, Region and partition every local consumer uses (the tests build ARNs with them).
ACCOUNT = intrinsics.ACCOUNT
REGION = intrinsics.REGION
PARTITION = intrinsics.PARTITION
TEMPLATE_PATHSPEC = ("*template*.yaml", "*template*.yml", ":!:tests/**")


def load_template(path: str | Path) -> dict[str, Any]:
    """Decode a template as the runner does (``local.template``); raise if it does not parse."""
    return _load_template(Path(path))


def all_templates() -> list[Path]:
    """Every stack template in the repository that git knows of (tracked or untracked).

    Fixtures under tests/ are test data, not stacks users deploy (scripts/test.sh and
    scripts/guard-check.sh select templates the same way).
    """
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *TEMPLATE_PATHSPEC],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted(REPO_ROOT / line for line in out.splitlines() if (REPO_ROOT / line).is_file())


def use_case_templates() -> list[Path]:
    """The use-case stacks (``<uc>/template-deploy.yaml``)."""
    return [p for p in all_templates() if p.name == "template-deploy.yaml"]


def physical_id(logical_id: str) -> str:
    return f"test-stack-{logical_id}"


def _arn_for(logical_id: str, resource: Mapping[str, Any]) -> str:
    rtype = resource.get("Type", "")
    name = physical_id(logical_id)
    props = resource.get("Properties", {}) or {}
    known = {
        "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "AWS::Lambda::LayerVersion": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:1",
        "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
        "AWS::S3::Bucket": f"arn:aws:s3:::{name.lower()}",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}",
    }
    if rtype in known:
        return known[rtype]
    if rtype == "AWS::Lambda::Version":
        return f"{_function_arn_of(props)}:1"
    if rtype == "AWS::Lambda::Alias":
        return f"{_function_arn_of(props)}:{props.get('Name', 'live')}"
    service = rtype.split("::")[1].lower() if rtype.count("::") == 2 else "unknown"
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{logical_id}/{name}"


def _function_arn_of(props: Mapping[str, Any]) -> str:
    ref = props.get("FunctionName")
    if isinstance(ref, Mapping) and "Ref" in ref:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical_id(ref['Ref'])}"
    if isinstance(ref, Mapping) and "Fn::GetAtt" in ref:
        target = ref["Fn::GetAtt"]
        logical = target[0] if isinstance(target, list) else str(target).split(".")[0]
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical_id(logical)}"
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{ref}"


class Resolver(IntrinsicResolver):
    """Evaluates Conditions and intrinsic functions for one parameter set.

    The intrinsics, pseudo parameters and parameter refs are the local runner's
    (``IntrinsicResolver``); ``region``/``partition`` set ``AWS::Region``/``AWS::Partition`` (the
    Rules tests evaluate a template in other partitions). This class answers ``Ref``/``Fn::GetAtt``
    of a resource with deterministic fake ids and ARNs for any resource type, where the runner's
    ``Stack`` knows only the types it emulates and needs no moto: that is why it stays separate.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        *,
        region: str = REGION,
        partition: str = PARTITION,
    ) -> None:
        self.template = dict(template)
        self.conditions = {}
        self.pseudo = pseudo_parameters(
            "test-stack",
            stack_id=f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/test-stack/0000",
            region=region,
            partition=partition,
        )
        declared = self.template.get("Parameters", {}) or {}
        # Required parameters without a value get a placeholder that looks like one.
        placeholders = {
            name: _placeholder(name, spec)
            for name, spec in declared.items()
            if name not in parameters and "Default" not in spec
        }
        # Bound and validated as CloudFormation does (local.template): a parameter set the
        # service would refuse raises ParameterError instead of resolving to a stack.
        self.values = resolve_parameters(self.template, {**placeholders, **parameters})

    def all_conditions(self) -> dict[str, bool]:
        return {name: self.condition(name) for name in self.template.get("Conditions", {}) or {}}

    def resource_exists(self, logical_id: str) -> bool:
        resource = self.template["Resources"][logical_id]
        cond = resource.get("Condition")
        return cond is None or self.condition(cond)

    def resources(self) -> dict[str, Mapping[str, Any]]:
        """The resources that exist for this parameter set."""
        return {lid: res for lid, res in self.template["Resources"].items() if self.resource_exists(lid)}

    def parameter_values(self) -> dict[str, Any]:
        return self.values

    def _resource_ref(self, name: str) -> Any:
        resources = self.template["Resources"]
        if name not in resources:
            raise KeyError(f"Ref to unknown name {name}")
        resource = resources[name]
        rtype = resource.get("Type")
        # Types whose Ref is an ARN, per the CloudFormation resource reference.
        if rtype in {
            "AWS::Lambda::Alias",
            "AWS::Lambda::Version",
            "AWS::Lambda::LayerVersion",
            "AWS::SNS::Topic",
            "AWS::StepFunctions::StateMachine",
            "AWS::IAM::ManagedPolicy",
        }:
            return _arn_for(name, resource)
        if rtype == "AWS::S3::Bucket":
            return physical_id(name).lower()
        return physical_id(name)

    def _getatt(self, logical: str, attr: str) -> Any:
        resource = self.template["Resources"][logical]
        if attr == "Arn":
            return _arn_for(logical, resource)
        if attr == "Version" and resource.get("Type") == "AWS::Lambda::Version":
            return "1"
        if attr in {"Name", "TopicName", "QueueName"}:
            return physical_id(logical)
        return f"{physical_id(logical)}.{attr}"


# Example values for parameters a template's Rules demand once a switch is on (EnableAlarms=true
# needs KmsKeyArn), by the end of the parameter's name.


def opt_in_parameters(template: Mapping[str, Any]) -> dict[str, str]:
    """Every boolean-style parameter ('true'/'false') set to 'true'."""
    params = template.get("Parameters", {}) or {}
    return {
        name: "true"
        for name, spec in params.items()
        if sorted(str(v) for v in spec.get("AllowedValues", [])) == ["false", "true"]
    }


def deployable(template: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    """``params`` as a stack CloudFormation accepts: when the template's Rules refuse them, every
    parameter the Rules name that is not given and has an example value (``_EXAMPLES``)
    gets it. Raises ``ParameterError`` when the set is still refused (a test must not reason about
    a stack that cannot exist)."""
    try:
        Resolver(template, params)
    except ParameterError:
        pass
    else:
        return dict(params)
    declared = template.get("Parameters") or {}
    named = set(re.findall(r"'Ref': '([A-Za-z0-9]+)'", str(template.get("Rules") or {})))
    completed = dict(params)
    open_names = sorted(named & set(declared) - set(params))
    for name in open_names:
        example = next((v for suffix, v in _EXAMPLES.items() if name.endswith(suffix)), None)
        if example is not None:
            completed[name] = example
    # A switch the Rules tie to another value (InferenceType=components needs
    # EnableInferenceComponents=true): the first allowed value of one open parameter that helps.
    for name in open_names:
        for value in declared[name].get("AllowedValues") or ():
            try:
                Resolver(template, {**completed, name: str(value)})
            except ParameterError:
                continue
            return {**completed, name: str(value)}
    Resolver(template, completed)
    return completed


# Example values, by parameter-name suffix, for required parameters whose AllowedPattern a plain
# placeholder would not satisfy (the resolver validates parameters as CloudFormation does).
_EXAMPLES = {
    "AccessPointArn": f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/placeholder-ap",
    "SecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:placeholder-AbCdEf",
    "SubnetIds": "subnet-0123456789abcdef0",
    "SecurityGroupIds": "sg-0123456789abcdef0",
    "VpcId": "vpc-0123456789abcdef0",
    "RouteTableIds": "rtb-0123456789abcdef0",
    "OrganizationalUnitIds": "ou-abcd-12345678",
    "Regions": REGION,
    "HookTemplateUrl": "https://placeholder-bucket.s3.us-east-1.amazonaws.com/hook-template.yaml",
    "KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0000abcd-00ab-40cd-80ef-000000000000",
    "ManagementEndpoint": "ontap.example.internal",
    "VolumeName": "placeholder_volume",
    # Artifacts a deployment names by URL (a SageMaker model archive, a container image).
    "DataUrl": f"s3://placeholder-{ACCOUNT}/placeholder/model.tar.gz",
    "ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/placeholder:latest",
}


def _placeholder(name: str, spec: Mapping[str, Any]) -> str:
    if "AllowedValues" in spec:
        return str(spec["AllowedValues"][0])
    pattern = spec.get("AllowedPattern")
    candidates = [v for suffix, v in _EXAMPLES.items() if name.endswith(suffix)] + [f"placeholder-{name.lower()}"]
    for value in candidates:
        if pattern is None or re.fullmatch(pattern, value):
            return value
    raise ValueError(f"no placeholder for required parameter {name} matches {pattern!r}: add one to _EXAMPLES")


def state_machines(
    template: Mapping[str, Any], params: Mapping[str, str] | None = None, resolver: Resolver | None = None
) -> dict[str, Any]:
    """{logical id: ASL definition dict} for the state machines that exist with ``params``.

    ``DefinitionSubstitutions`` are applied the way Step Functions applies them: to the JSON text
    of the definition. ``resolver`` (instead of ``params``) evaluates them with another resolver,
    e.g. one with a different partition.
    """
    resolver = resolver or Resolver(template, params or {})
    out: dict[str, Any] = {}
    for logical_id, resource in resolver.resources().items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties", {})
        if "Definition" not in props:
            raise ValueError(f"{logical_id}: Definition must be a YAML object (DefinitionString found)")
        substitutions = resolver.resolve(props.get("DefinitionSubstitutions", {}))
        text = json.dumps(props["Definition"])
        for key, value in substitutions.items():
            text = text.replace("${" + key + "}", str(value))
        leftover = re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)
        if leftover:
            raise ValueError(f"{logical_id}: unresolved substitutions {sorted(set(leftover))}")
        out[logical_id] = json.loads(text)
    return out


def resolve_conditions(template: Mapping[str, Any], params: Mapping[str, str] | None = None) -> dict[str, bool]:
    return Resolver(template, params or {}).all_conditions()


def iter_states(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every state of a definition, nested Map/Parallel states included, as (name, state)."""
    for name, state in definition.get("States", {}).items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from iter_states(processor)
        for branch in state.get("Branches", []) or []:
            yield from iter_states(branch)
