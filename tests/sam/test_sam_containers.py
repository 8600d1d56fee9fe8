"""The sam tier's container tests: real `sam local invoke` in a python3.13 Lambda image.

Run by scripts/test-sam.sh (which provides the engine, SAM CLI and, in FSXN_SAM_INVOKE_IMAGE, the
offline image); excluded from the default pytest run by the ``sam`` marker. Each test builds a tiny
use case of its own, so what is checked is the engine's judgement and wiring, with known-bad cases:
a handler that raises must be reported as a failure although `sam` exits 0, and a handler that
reaches AWS must land in the emulation, never anywhere else.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.sam import containers
from local.sam.emulation import LOOPBACK, EmulationServer
from local.sam.host_network_relay import HostNetworkRelay
from local.sam.invoke import SamInvoker, find_sam
from local.usecases import load_use_case
from tests.sam.helpers import tier_invoke_image

pytestmark = pytest.mark.sam

TEMPLATE = textwrap.dedent("""
    AWSTemplateFormatVersion: '2010-09-09'
    Resources:
      ProbeFunction:
        Type: AWS::Lambda::Function
        Properties:
          Runtime: python3.13
          Handler: handler.handler
          Code: functions/probe
          Timeout: 60
          Role: arn:aws:iam::123456789012:role/probe
          Environment:
            Variables:
              ACCESS_POINT_ARN: set-by-env-json
""")

HANDLER = textwrap.dedent("""
    import os
    import sys

    import boto3

    S3 = boto3.client("s3")


    def handler(event, context):
        if event.get("raise"):
            raise ValueError("asked to fail")
        arn = os.environ["ACCESS_POINT_ARN"]
        keys = [o["Key"] for o in S3.list_objects_v2(Bucket=arn).get("Contents", [])]
        return {"python": list(sys.version_info[:2]), "keys": keys,
                "remaining_ms": context.get_remaining_time_in_millis()}
""")
ARN = "arn:aws:s3:us-east-1:123456789012:accesspoint/probe-ap"


@pytest.fixture(scope="module")
def engine() -> containers.Engine:
    found = containers.find_engine()
    assert found is not None, "no container engine answers: run this tier through scripts/test-sam.sh"
    return found


@pytest.fixture
def probe_use_case(tmp_path: Path):
    uc = tmp_path / "probe-uc"
    (uc / "functions" / "probe").mkdir(parents=True)
    (uc / "template-deploy.yaml").write_text(TEMPLATE)
    (uc / "functions" / "probe" / "handler.py").write_text(HANDLER)
    events = tmp_path / "events" / "uc99-probe-uc"
    events.mkdir(parents=True)
    (events / "probe-event.json").write_text(json.dumps({"raise": False}))
    (tmp_path / "events" / "env.json").write_text(json.dumps({"ProbeFunction": {"ACCESS_POINT_ARN": ARN}}))
    return load_use_case(uc, tmp_path / "events"), tmp_path


@pytest.fixture
def invoker(engine: containers.Engine, probe_use_case, tmp_path: Path):
    sam = find_sam()
    assert sam is not None, "sam not installed: scripts/test-sam.sh --setup-only"
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket="probe-backing")
        session.client("s3control").create_access_point(
            AccountId="123456789012", Name="probe-ap", Bucket="probe-backing"
        )
        session.client("s3").put_object(Bucket="probe-backing", Key="seeded/one.gds", Body=b"x")
        with (
            EmulationServer(LOOPBACK, tmp_path / "emulation") as server,
            HostNetworkRelay(engine.base_url) as relay,
        ):
            image = tier_invoke_image(engine, server)
            _, root = probe_use_case
            yield SamInvoker(sam, relay.base_url, image, root / "events" / "env.json", tmp_path / "logs"), server, relay


def test_a_handler_reaches_the_emulated_access_point_in_a_python313_container(probe_use_case, invoker) -> None:
    run, server, relay = invoker
    use_case, _ = probe_use_case
    verdict = run.invoke(use_case, use_case.functions[0], 60)
    assert verdict.passed, verdict
    assert verdict.response["python"] == [3, 13]
    assert verdict.response["keys"] == ["seeded/one.gds"]
    assert 0 < verdict.response["remaining_ms"] <= 60_000
    assert "probe-ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com" in {r.host for r in server.records}
    # Loopback only: the proxy listens there, the container was created in the host network with
    # the RIE on loopback, and every AWS call arrived from loopback.
    assert server.address[0] == "127.0.0.1"
    [created] = relay.rewrites
    assert created.network_mode == "host"
    assert created.function == "ProbeFunction"
    assert created.rie_address.startswith("127.0.0.1:")
    assert created.runtime_api_address.startswith("127.0.0.1:")
    assert relay.refusals == []
    assert {r.client for r in server.records} == {"127.0.0.1"}


def test_a_handler_exception_is_a_failure_although_sam_exits_zero(probe_use_case, invoker) -> None:
    run, _, _ = invoker
    use_case, root = probe_use_case
    (root / "events" / "uc99-probe-uc" / "probe-event.json").write_text(json.dumps({"raise": True}))
    verdict = run.invoke(use_case, use_case.functions[0], 60)
    assert not verdict.passed
    assert verdict.error_type == "ValueError"
    assert verdict.error_message == "asked to fail"


def test_a_changed_invoke_image_is_used_without_forcing_sams_image_build(probe_use_case, invoker, engine, tmp_path):
    """The engine runs without --force-image-build (local/sam/invoke.py). For a function without
    layers SAM reuses the image it built over an invoke image of the same repository, so a second
    emulation (another port and CA: another invoke image) must still be the one reached."""
    run, first_server, _ = invoker
    use_case, _ = probe_use_case
    unforced = dataclasses.replace(run, force_image_build=False)
    assert unforced.invoke(use_case, use_case.functions[0], 60).passed
    with EmulationServer(LOOPBACK, tmp_path / "emulation-2") as second_server:
        second = dataclasses.replace(unforced, image=tier_invoke_image(engine, second_server))
        assert second.image != run.image
        reached_first = len(first_server.records)
        verdict = second.invoke(use_case, use_case.functions[0], 60)
        assert verdict.passed, verdict
        assert verdict.response["keys"] == ["seeded/one.gds"]
        assert "probe-ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com" in {r.host for r in second_server.records}
        assert len(first_server.records) == reached_first  # not the first emulation's proxy
