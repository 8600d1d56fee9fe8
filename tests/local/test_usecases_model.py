"""local.usecases is the one reader of a template's functions; the runner's Stack builds on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.runner.stack import Stack, TemplateError
from local.usecases import UseCaseError, load_template, read_functions

pytestmark = pytest.mark.unit

TEMPLATE = """\
Parameters:
  FunctionTimeout: {Type: Number, Default: 45}
  EnableDebug: {Type: String, Default: 'false', AllowedValues: ['true', 'false']}
Conditions:
  Debug: !Equals [!Ref EnableDebug, 'true']
Resources:
  Layer:
    Type: AWS::Lambda::LayerVersion
    Properties:
      Content: layer
  Topic:
    Type: AWS::SNS::Topic
  WorkFunction:
    Type: AWS::Lambda::Function
    Properties:
      Code: functions/work
      Handler: handler.handler
      Runtime: python3.13
      Role: arn:aws:iam::123456789012:role/r
      Timeout: !Ref FunctionTimeout
      MemorySize: 256
      Layers: [!Ref Layer]
      Environment:
        Variables:
          TOPIC_ARN: !Ref Topic
          LOG_LEVEL: !If [Debug, DEBUG, !Ref AWS::NoValue]
"""


def _template(tmp_path: Path) -> Path:
    (tmp_path / "functions" / "work").mkdir(parents=True)
    (tmp_path / "functions" / "work" / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    path = tmp_path / "template-deploy.yaml"
    path.write_text(TEMPLATE)
    return path


def test_the_runner_spec_is_the_declared_function_resolved_for_the_stack(tmp_path):
    path = _template(tmp_path)
    stack = Stack.load(path)
    (spec,) = stack.functions()
    assert spec.code_dir == (tmp_path / "functions" / "work").resolve()
    assert spec.handler == "handler.handler"
    assert (spec.timeout_s, spec.memory_mb) == (45, 256)
    assert spec.layers == (stack.physical["Layer"].ref,)
    assert spec.environment == {"TOPIC_ARN": stack.physical["Topic"].ref}
    (debug,) = Stack.load(path, parameters={"EnableDebug": "true", "FunctionTimeout": "7"}).functions()
    assert debug.environment["LOG_LEVEL"] == "DEBUG"
    assert debug.timeout_s == 7


def test_without_a_resolver_the_reader_keeps_declared_values_and_needs_literals(tmp_path):
    path = _template(tmp_path)
    template = load_template(path)
    with pytest.raises(UseCaseError, match=r"WorkFunction\.Timeout: expected a whole number"):
        read_functions(template, path)
    template["Resources"]["WorkFunction"]["Properties"]["Timeout"] = 30
    (declared,) = read_functions(template, path)
    assert declared.environment["TOPIC_ARN"] == {"Ref": "Topic"}
    assert declared.layers == ({"Ref": "Layer"},)


def test_a_code_path_that_is_no_folder_is_a_template_error_for_the_runner(tmp_path):
    path = _template(tmp_path)
    path.write_text(TEMPLATE.replace("Code: functions/work", "Code: functions/gone"))
    with pytest.raises(TemplateError, match=r"code folder .* does not exist"):
        Stack.load(path).functions()
