"""The article's command, as written, for every use case: discovery in a python3.13 container.

``sam local invoke --template <uc>/template-deploy.yaml --event events/<ucNN-name>/discovery-event.json
--env-vars events/env.json DiscoveryFunction`` — the same logical id, the same env.json entry and
the event file as the repository holds it, for UC1, UC6 and UC9 alike (the sam engine only adds
the offline image flags). Run by scripts/test-sam.sh (``sam`` marker). The verdict is the output,
not the exit status: the manifests the function wrote must list exactly the use case's sample
files behind the access point, the counts must agree, and UC1 must have read the SVM, volume and
shares from the fake ONTAP (over TLS verified against the CA baked into the image).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.sam import containers
from local.sam.emulation import LOOPBACK, EmulationServer
from local.sam.host_network_relay import HostNetworkRelay
from local.sam.invoke import SamInvoker, find_sam
from local.sam.overrides import embedded_emulators, sagemaker_emulator
from local.sam.provision import Provisioned, provision
from local.sam_engine import DEFAULT_OBJECTS, container_files
from local.usecases import UseCase, discover
from tests.sam.helpers import ENV_JSON, env_json, tier_invoke_image

pytestmark = pytest.mark.sam

ARTICLE = "local invoke --template {template} --event {event} --env-vars events/env.json DiscoveryFunction"
USE_CASES = {uc.name: uc for uc in discover()}


@dataclass
class Tier:
    session: boto3.Session
    server: EmulationServer
    invoker: SamInvoker
    provisioned: dict[str, Provisioned]


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    engine = containers.find_engine()
    assert engine is not None, "no container engine answers: run this tier through scripts/test-sam.sh"
    sam = find_sam()
    assert sam is not None, "sam not installed: scripts/test-sam.sh --setup-only"
    work = tmp_path_factory.mktemp("article")
    with mock_aws(), contextlib.ExitStack() as services:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        sagemaker = sagemaker_emulator(session)
        with (
            EmulationServer(LOOPBACK, work / "emulation", overrides=embedded_emulators(session, sagemaker)) as server,
            HostNetworkRelay(engine.base_url) as relay,
        ):
            provisioned = {
                name: provision(
                    uc, env_json(), session, objects=DEFAULT_OBJECTS, services=services, sagemaker=sagemaker
                )
                for name, uc in USE_CASES.items()
            }
            image = tier_invoke_image(engine, server, container_files(list(provisioned.values())))
            yield Tier(session, server, SamInvoker(sam, relay.base_url, image, ENV_JSON, work / "logs"), provisioned)


def _manifest_keys(session: boto3.Session, response: dict[str, Any]) -> list[str]:
    """Every source key in the manifests the response names (``<x>manifest_key`` with its bucket)."""
    s3 = session.client("s3")
    keys: list[str] = []
    for field, key in response.items():
        if not field.endswith("manifest_key"):
            continue
        bucket = response.get(field.removesuffix("key") + "bucket") or env_json()["DiscoveryFunction"]["OUTPUT_BUCKET"]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        keys += [json.loads(line)["key"] for line in body.split("\n") if line]
    return keys


@pytest.mark.parametrize("name", sorted(USE_CASES))
def test_the_articles_discovery_command_runs_as_written(tier: Tier, name: str) -> None:
    use_case: UseCase = USE_CASES[name]
    [discovery] = [fn for fn in use_case.functions if fn.logical_id == "DiscoveryFunction"]
    command = tier.invoker.command(use_case, discovery)
    # The command is the article's, plus only the flags that pick the offline image.
    image_flags = ["--invoke-image", tier.invoker.image, "--skip-pull-image", "--force-image-build"]
    article = [part for part in command[1:] if part not in image_flags]
    assert " ".join(article) == ARTICLE.format(
        template=f"{name}/template-deploy.yaml", event=f"events/{use_case.events_name}/discovery-event.json"
    )

    verdict = tier.invoker.invoke(use_case, discovery, discovery.timeout_s)
    assert verdict.passed, f"{verdict.error_type}: {verdict.error_message}"
    response = verdict.response
    [samples] = tier.provisioned[name].sample_sets
    expected = sorted(set(samples.keys) - set(samples.ignored))
    listed = _manifest_keys(tier.session, response)
    assert sorted(listed) == expected, "the manifests must list exactly the use case's files"
    assert response["object_count"] == len(expected) > 0
    if name == "legal-compliance":
        # The ONTAP context came from the fake ONTAP, over TLS verified against the baked-in CA.
        assert response.get("svm_uuid"), response
        assert tier.provisioned[name].services, "the fake ONTAP was not started"
