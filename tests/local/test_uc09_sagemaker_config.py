"""UC9's SageMaker emulation refuses what CreateEndpointConfig refuses: EnableNetworkIsolation on
an endpoint config is for inference-component endpoints (variants without a model) only; and
every template combination registers cleanly (the components config is isolated, the others take
isolation from the Model)."""

from __future__ import annotations

from typing import Any

import pytest

from local.emulators.sagemaker import SageMakerEmulator, SageMakerError
from local.runner.clock import EmulatedClock

pytestmark = pytest.mark.unit


def emulator() -> SageMakerEmulator:
    return SageMakerEmulator(None, EmulatedClock(), account_id="123456789012", region="us-east-1")


def test_network_isolation_on_an_inference_component_config_is_accepted():
    sagemaker = emulator()
    variant = {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    sagemaker.add_endpoint_config("ic", {"ProductionVariants": [variant], "EnableNetworkIsolation": True})
    sagemaker.add_endpoint("ic-ep", "ic")
    assert sagemaker.endpoints["ic-ep"].kind == "components"


@pytest.mark.parametrize("isolation", [True, "true"])
def test_network_isolation_beside_a_variant_model_is_refused(isolation: Any):
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}
    with pytest.raises(SageMakerError, match="only for inference component endpoints"):
        emulator().add_endpoint_config("rt", {"ProductionVariants": [variant], "EnableNetworkIsolation": isolation})


def test_a_model_variant_without_the_config_setting_is_accepted():
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}
    sagemaker = emulator()
    sagemaker.add_endpoint_config("rt", {"ProductionVariants": [variant], "EnableNetworkIsolation": False})
    sagemaker.add_endpoint_config("rt2", {"ProductionVariants": [variant]})
