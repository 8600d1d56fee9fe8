"""A use case's ``template-deploy.yaml`` turned into emulated resources, as CloudFormation would.

The template is decoded by ``local.template`` (short tags such as ``!Ref`` become their long form).
Parameters take their defaults unless given; a required ``...AccessPointArn`` parameter gets the
emulated access point. Conditions and intrinsic functions (Ref, Fn::GetAtt, Fn::Sub, Fn::If,
Fn::Join, Fn::Select, Fn::Split, Fn::Equals/And/Or/Not, Fn::FindInMap, Condition) are evaluated
against the physical names and ARNs of the resources this module creates in moto, so what a
handler's environment or the state machine's ``DefinitionSubstitutions`` point at exists.

Created in moto: S3 buckets, Glue databases and tables, Athena work groups, SNS topics (each with an
SQS queue subscribed, which captures the notifications), SQS queues, Secrets Manager secrets, the
state machines (definition with its substitutions applied). SageMaker models, endpoint configs,
endpoints and inference components get names and ARNs here and are registered with the SageMaker
emulator by the runner. Lambda functions become in-process
``FunctionSpec``s. Everything else (IAM, log groups, layers, schedules, alarms, bucket policies,
e-mail subscriptions) has no effect on a local run and is listed in ``not_emulated``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.runner.intrinsics import ACCOUNT, PARTITION, REGION, IntrinsicResolver, pseudo_parameters
from local.runner.lambdas import FunctionSpec
from local.template import ParameterError, TemplateError, cfn_text, load_template, resolve_parameters
from local.usecases import UseCaseError, read_functions

__all__ = ["ACCOUNT", "PARTITION", "REGION", "ParameterError", "Physical", "Stack", "TemplateError", "load_template"]


# SageMaker types: ARN kind and the property (and GetAtt attribute) holding the name. Ref is the ARN.
_SAGEMAKER_NAMES = {
    "Model": ("model", "ModelName"),
    "EndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "Endpoint": ("endpoint", "EndpointName"),
    "InferenceComponent": ("inference-component", "InferenceComponentName"),
}


@dataclass
class Physical:
    """What Ref and Fn::GetAtt of one resource return."""

    ref: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stack(IntrinsicResolver):
    """One use case's template, resolved for a local run."""

    template_path: Path
    stack_name: str
    parameters: dict[str, Any]
    template: dict[str, Any]
    physical: dict[str, Physical] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    not_emulated: list[str] = field(default_factory=list)

    @classmethod
    def load(
        cls, template_path: Path, *, parameters: Mapping[str, str] | None = None, stack_name: str | None = None
    ) -> Stack:
        template = load_template(template_path)
        bound = resolve_parameters(template, dict(parameters or {}), source=str(template_path))
        values = {name: value if isinstance(value, list) else cfn_text(value) for name, value in bound.items()}
        name = stack_name or f"local-{template_path.parent.name}"[:40]
        stack = cls(template_path=template_path, stack_name=name, parameters=values, template=template)
        stack._assign_physical_ids()
        return stack

    # --- conditions and intrinsics ---------------------------------------------------------------
    @property
    def pseudo(self) -> dict[str, Any]:  # type: ignore[override]  # derived from the stack name
        return pseudo_parameters(self.stack_name)

    @property
    def stack_id(self) -> str:
        return str(self.pseudo["AWS::StackId"])

    def parameter_values(self) -> dict[str, Any]:
        return self.parameters

    def exists(self, logical_id: str) -> bool:
        cond = self.template["Resources"][logical_id].get("Condition")
        return cond is None or self.condition(cond)

    def resources(self, rtype: str | None = None) -> dict[str, dict[str, Any]]:
        return {
            lid: res
            for lid, res in self.template["Resources"].items()
            if self.exists(lid) and (rtype is None or res.get("Type") == rtype)
        }

    def properties(self, logical_id: str) -> dict[str, Any]:
        resolved = self.resolve(self.template["Resources"][logical_id].get("Properties") or {})
        return dict(resolved)

    def _resource_ref(self, name: str) -> Any:
        if name not in self.template["Resources"]:
            raise TemplateError(f"Ref to unknown name {name}")
        if not self.exists(name):
            raise TemplateError(f"Ref to {name}, which does not exist with these parameters")
        return self.physical[name].ref

    def _getatt(self, logical: str, attr: str) -> Any:
        if not self.exists(logical):
            raise TemplateError(f"GetAtt of {logical}, which does not exist with these parameters")
        phys = self.physical[logical]
        if attr not in phys.attrs:
            raise TemplateError(f"GetAtt {logical}.{attr} is not known to the local runner")
        return phys.attrs[attr]

    # --- physical ids ------------------------------------------------------------------------------
    def _unique(self, logical_id: str, *, lower: bool = False, limit: int = 64) -> str:
        suffix = hashlib.sha256(f"{self.stack_name}/{logical_id}".encode()).hexdigest()[:8]
        base = f"{self.stack_name}-{logical_id}"[: limit - 9]
        name = f"{base}-{suffix}"
        return name.lower() if lower else name

    def _assign_physical_ids(self) -> None:
        # Names given in properties may refer to parameters and pseudo parameters only; resources
        # are processed so that a name never needs another resource's id.
        late = {"AWS::Lambda::Version", "AWS::Lambda::Alias"}
        for lid, res in self.template["Resources"].items():
            if self.exists(lid) and res.get("Type") not in late:
                self.physical[lid] = self._physical_for(lid, res)
        for lid, res in self.template["Resources"].items():
            if self.exists(lid) and res.get("Type") in late:
                self.physical[lid] = self._physical_for(lid, res)

    def _physical_for(self, lid: str, res: dict[str, Any]) -> Physical:
        rtype = res.get("Type", "")
        raw = res.get("Properties") or {}

        def prop(name: str) -> Any:
            return self.resolve(raw[name]) if name in raw else None

        arn_base = f"arn:{PARTITION}"
        if rtype == "AWS::S3::Bucket":
            name = prop("BucketName") or self._unique(lid, lower=True, limit=63)
            return Physical(
                name,
                {
                    "Arn": f"{arn_base}:s3:::{name}",
                    "DomainName": f"{name}.s3.amazonaws.com",
                    "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
                },
            )
        if rtype == "AWS::Lambda::Function":
            name = prop("FunctionName") or self._unique(lid)
            return Physical(name, {"Arn": f"{arn_base}:lambda:{REGION}:{ACCOUNT}:function:{name}"})
        if rtype == "AWS::Lambda::Version":
            fn = self.resolve(raw["FunctionName"])
            fn_arn = fn if str(fn).startswith("arn:") else f"{arn_base}:lambda:{REGION}:{ACCOUNT}:function:{fn}"
            return Physical(f"{fn_arn}:1", {"Version": "1", "FunctionArn": fn_arn})
        if rtype == "AWS::Lambda::Alias":
            fn = self.resolve(raw["FunctionName"])
            fn_arn = fn if str(fn).startswith("arn:") else f"{arn_base}:lambda:{REGION}:{ACCOUNT}:function:{fn}"
            return Physical(f"{fn_arn}:{self.resolve(raw['Name'])}", {})
        if rtype == "AWS::Lambda::LayerVersion":
            return Physical(f"{arn_base}:lambda:{REGION}:{ACCOUNT}:layer:{self._unique(lid)}:1", {})
        if rtype == "AWS::SNS::Topic":
            name = prop("TopicName") or self._unique(lid, limit=256)
            arn = f"{arn_base}:sns:{REGION}:{ACCOUNT}:{name}"
            return Physical(arn, {"TopicArn": arn, "TopicName": name})
        if rtype == "AWS::SQS::Queue":
            name = prop("QueueName") or self._unique(lid, limit=80)
            return Physical(
                f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
                {
                    "Arn": f"{arn_base}:sqs:{REGION}:{ACCOUNT}:{name}",
                    "QueueName": name,
                    "QueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
                },
            )
        if rtype == "AWS::Glue::Database":
            name = str(self.resolve(raw["DatabaseInput"]["Name"]))
            return Physical(name, {})
        if rtype == "AWS::Glue::Table":
            return Physical(str(self.resolve(raw["TableInput"]["Name"])), {})
        if rtype == "AWS::Athena::WorkGroup":
            return Physical(str(prop("Name")), {})
        if rtype == "AWS::SecretsManager::Secret":
            name = prop("Name") or self._unique(lid)
            arn = f"{arn_base}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
            return Physical(arn, {"Id": arn})
        if rtype == "AWS::StepFunctions::StateMachine":
            name = prop("StateMachineName") or self._unique(lid, limit=80)
            arn = f"{arn_base}:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
            return Physical(arn, {"Arn": arn, "Name": name})
        if rtype == "AWS::IAM::Role":
            name = prop("RoleName") or self._unique(lid)
            return Physical(
                name, {"Arn": f"{arn_base}:iam::{ACCOUNT}:role/{name}", "RoleId": f"AROA{lid.upper()[:16]}"}
            )
        if rtype == "AWS::Logs::LogGroup":
            name = prop("LogGroupName") or f"/aws/local/{self._unique(lid)}"
            return Physical(name, {"Arn": f"{arn_base}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"})
        if rtype.startswith("AWS::SageMaker::") and rtype.split("::")[2] in _SAGEMAKER_NAMES:
            kind, name_property = _SAGEMAKER_NAMES[rtype.split("::")[2]]
            name = prop(name_property) or self._unique(lid, limit=63)
            arn = f"{arn_base}:sagemaker:{REGION}:{ACCOUNT}:{kind}/{str(name).lower()}"
            return Physical(arn, {name_property: name, f"{name_property.removesuffix('Name')}Arn": arn})
        if rtype == "AWS::KMS::Key":
            kid = str(uuid.UUID(hashlib.sha256(lid.encode()).hexdigest()[:32]))
            return Physical(kid, {"Arn": f"{arn_base}:kms:{REGION}:{ACCOUNT}:key/{kid}", "KeyId": kid})
        name = self._unique(lid)
        service = rtype.split("::")[1].lower() if rtype.count("::") == 2 else "unknown"
        return Physical(name, {"Arn": f"{arn_base}:{service}:{REGION}:{ACCOUNT}:{lid.lower()}/{name}"})

    # --- functions -------------------------------------------------------------------------------
    def functions(self) -> list[FunctionSpec]:
        """The functions that exist with these parameters, in template order: what the template
        declares is ``local.usecases.read_functions``' (evaluated with this stack's intrinsics);
        this adds what only the resolved stack knows (name, ARN, environment, layers, aliases)."""
        aliases: dict[str, list[str]] = {}
        for lid, res in self.resources("AWS::Lambda::Alias").items():
            fn = self.template["Resources"][lid]["Properties"]["FunctionName"]
            target = fn.get("Ref") if isinstance(fn, dict) else None
            if target:
                aliases.setdefault(target, []).append(str(self.resolve(res["Properties"]["Name"])))
        try:
            declared = {f.logical_id: f for f in read_functions(self.template, self.template_path, self.resolve)}
        except UseCaseError as exc:
            raise TemplateError(str(exc)) from exc
        out = []
        for lid in self.resources("AWS::Lambda::Function"):
            function = declared[lid]
            if not function.code_dir.is_dir():
                raise TemplateError(f"{lid}: code folder {function.code_dir} does not exist")
            variables = self.resolve(dict(function.environment))
            out.append(
                FunctionSpec(
                    logical_id=lid,
                    name=self.physical[lid].ref,
                    arn=self.physical[lid].attrs["Arn"],
                    code_dir=function.code_dir,
                    handler=function.handler or "handler.handler",
                    timeout_s=function.timeout_s,
                    memory_mb=function.memory_mb,
                    environment={k: _env_value(v) for k, v in variables.items()},
                    aliases=tuple(aliases.get(lid, ())),
                    runtime=function.runtime,
                    layers=tuple(str(layer) for layer in self.resolve(list(function.layers))),
                )
            )
        return out

    def state_machine_definitions(self) -> dict[str, tuple[str, str]]:
        """{logical id: (definition JSON with substitutions applied, role ARN)}."""
        out = {}
        for lid in self.resources("AWS::StepFunctions::StateMachine"):
            raw = self.template["Resources"][lid].get("Properties") or {}
            if "Definition" not in raw:
                raise TemplateError(f"{lid}: the local runner needs Definition as an object (DefinitionString found)")
            definition = self.resolve(raw["Definition"])
            substitutions = self.resolve(raw.get("DefinitionSubstitutions") or {})
            text = json.dumps(definition)
            for key, value in substitutions.items():
                text = text.replace("${" + key + "}", str(value))
            leftover = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)))
            if leftover:
                raise TemplateError(f"{lid}: unresolved DefinitionSubstitutions {leftover}")
            role = self.resolve(raw.get("RoleArn")) or f"arn:{PARTITION}:iam::{ACCOUNT}:role/local-states"
            out[lid] = (text, str(role))
        return out


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
