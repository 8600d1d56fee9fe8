"""The harness itself: network blocked, AWS emulated, access point by ARN, clock-driven context."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketConnectBlockedError

from tests.support.lambda_context import FakeLambdaContext, ManualClock

pytestmark = pytest.mark.unit


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_non_loopback_connections_are_blocked() -> None:
    with pytest.raises(SocketConnectBlockedError), socket.create_connection(("192.0.2.1", 443), timeout=1):
        pass


def test_access_point_arn_round_trip(s3_access_point) -> None:
    s3_access_point.put("dir/a.gds", b"abc")
    listed = s3_access_point.s3.list_objects_v2(Bucket=s3_access_point.arn)
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a.gds"]
    body = s3_access_point.s3.get_object(Bucket=s3_access_point.arn, Key="dir/a.gds")["Body"].read()
    assert body == b"abc"


def test_lambda_context_counts_down_with_its_clock() -> None:
    clock = ManualClock()
    ctx = FakeLambdaContext(remaining_ms=5_000, clock=clock)
    clock.advance(1.5)
    assert ctx.get_remaining_time_in_millis() == 3_500
    clock.advance(10)
    assert ctx.get_remaining_time_in_millis() == 0
    ctx.set_remaining(2_000)
    assert ctx.get_remaining_time_in_millis() == 2_000
