"""shared.aws: client configuration, boto3's own endpoint variables, botocore error mapping."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from local import serving
from shared import aws
from shared.errors import (
    AccessDeniedError,
    NotFoundError,
    ServiceUnavailableError,
    ThrottlingError,
)
from tests.support.aws_errors import client_error

pytestmark = pytest.mark.unit


class _Recorder:
    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[tuple[str, str, str]] = []  # (method, path, user agent)


@pytest.fixture
def loopback_service() -> Iterator[tuple[str, _Recorder]]:
    """An HTTP endpoint on 127.0.0.1 that answers every request with a fixed 5xx and counts them."""
    recorder = _Recorder(503)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            recorder.requests.append(("POST", self.path, self.headers.get("User-Agent", "")))
            body = b'{"__type":"ServiceUnavailableException","message":"try later"}'
            self.send_response(recorder.status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving.serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler), "loopback-service") as server:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestClientConfiguration:
    def test_standard_retries_timeouts_user_agent(self):
        s3 = aws.client("s3", max_attempts=7, connect_timeout=2, read_timeout=30)
        cfg = s3.meta.config
        assert cfg.retries == {"mode": "standard", "total_max_attempts": 7}
        assert cfg.connect_timeout == 2
        assert cfg.read_timeout == 30
        assert aws.USER_AGENT_EXTRA in cfg.user_agent_extra
        assert s3.meta.region_name == "us-east-1"

    def test_defaults(self):
        cfg = aws.client("sns").meta.config
        assert cfg.retries == {"mode": "standard", "total_max_attempts": 5}
        assert (cfg.connect_timeout, cfg.read_timeout) == (5, 60)

    def test_no_endpoint_override_by_default(self):
        assert aws.client("s3").meta.endpoint_url.startswith("https://s3.")

    def test_service_specific_endpoint_variable_is_honoured(self, monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566")
        assert aws.client("s3").meta.endpoint_url == "http://127.0.0.1:4566"
        # Only S3 is redirected.
        assert aws.client("sns").meta.endpoint_url.startswith("https://sns.")

    def test_global_endpoint_variable_is_honoured(self, monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
        assert aws.client("athena").meta.endpoint_url == "http://127.0.0.1:5000"

    def test_injected_session(self):
        session = boto3.Session(region_name="eu-west-1")
        client = aws.client("sns", session=session)
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_attempts": 0},
            {"max_attempts": True},
            {"max_attempts": 2.5},
            {"connect_timeout": 0},
            {"read_timeout": -1},
            {"read_timeout": "60"},
        ],
    )
    def test_invalid_settings_rejected(self, kwargs):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            aws.client("s3", **kwargs)

    def test_works_against_moto_through_an_access_point_arn(self, s3_access_point):
        s3 = aws.client("s3")
        s3.put_object(Bucket=s3_access_point.arn, Key="a/b.gds", Body=b"data")
        assert s3.get_object(Bucket=s3_access_point.arn, Key="a/b.gds")["Body"].read() == b"data"


class TestRetriesReallyHappen:
    def test_total_attempts_count_the_first_request(self, monkeypatch, loopback_service):
        url, recorder = loopback_service
        monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", url)
        sfn = aws.client("stepfunctions", max_attempts=3)
        with pytest.raises(ServiceUnavailableError) as info, aws.mapped_errors("ListStateMachines"):
            sfn.list_state_machines()
        assert len(recorder.requests) == 3
        assert all(aws.USER_AGENT_EXTRA in ua for _, _, ua in recorder.requests)
        assert info.value.details["httpStatus"] == 503
        assert isinstance(info.value.__cause__, ClientError)

    def test_single_attempt(self, monkeypatch, loopback_service):
        url, recorder = loopback_service
        monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", url)
        with pytest.raises(ClientError):
            aws.client("stepfunctions", max_attempts=1).list_state_machines()
        assert len(recorder.requests) == 1

    def test_connection_refused_maps_to_transient(self, monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", f"http://127.0.0.1:{_closed_port()}")
        sns = aws.client("sns", max_attempts=1, connect_timeout=1)
        with pytest.raises(ServiceUnavailableError) as info, aws.mapped_errors("ListTopics"):
            sns.list_topics()
        assert isinstance(info.value.__cause__, EndpointConnectionError)


class TestMappedErrors:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (client_error("SlowDown", 503), ThrottlingError),
            (client_error("ThrottlingException", 400), ThrottlingError),
            (client_error("InternalError", 500), ServiceUnavailableError),
            (client_error("AccessDenied", 403), AccessDeniedError),
            (client_error("NoSuchKey", 404), NotFoundError),
            (EndpointConnectionError(endpoint_url="https://x"), ServiceUnavailableError),
            (ReadTimeoutError(endpoint_url="https://x"), ServiceUnavailableError),
            (ResponseStreamingError(error="reset"), ServiceUnavailableError),
        ],
    )
    def test_maps_and_chains(self, error, expected):
        with pytest.raises(expected) as info, aws.mapped_errors("GetObject"):
            raise error
        assert info.value.__cause__ is error
        assert info.value.details["operation"] == "GetObject"

    def test_programming_errors_pass_through(self):
        # A wrong parameter is a bug, not a transient service failure: it must not be retried.
        with pytest.raises(ParamValidationError), aws.mapped_errors("PutObject"):
            raise ParamValidationError(report="Missing required parameter Key")
        with pytest.raises(KeyError), aws.mapped_errors("PutObject"):
            raise KeyError("x")

    def test_no_error_no_effect(self):
        with aws.mapped_errors("GetObject"):
            value = 1
        assert value == 1


class TestRequestSeconds:
    def test_attempts_times_timeouts_plus_the_longest_backoffs(self):
        # 3 attempts of (2 + 10) s, and after attempts 1 and 2 at most 1 s and 2 s (+5 s retry-after each).
        assert aws.request_seconds(max_attempts=3, connect_timeout=2, read_timeout=10) == 3 * 12 + (1 + 5) + (2 + 5)
        assert aws.request_seconds(max_attempts=1, connect_timeout=1, read_timeout=1) == 2
        # The backoff is capped at 20 s per retry.
        assert aws.request_seconds(max_attempts=8, connect_timeout=1, read_timeout=1) == 16 + sum(
            min(2**n, 20) + 5 for n in range(7)
        )

    @pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"read_timeout": 0}, {"connect_timeout": -1}])
    def test_invalid_settings_are_refused(self, kwargs):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            aws.request_seconds(**kwargs)

    def test_a_stalled_service_fails_within_the_reserved_time(self, monkeypatch):
        import time

        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # accepts connections, never answers
        try:
            monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", f"http://127.0.0.1:{server.getsockname()[1]}")
            sns = aws.client("sns", max_attempts=2, connect_timeout=0.25, read_timeout=0.25)
            started = time.monotonic()
            with pytest.raises(ServiceUnavailableError), aws.mapped_errors("ListTopics"):
                sns.list_topics()
            elapsed = time.monotonic() - started
        finally:
            server.close()
        assert 2 * 0.25 <= elapsed <= aws.request_seconds(max_attempts=2, connect_timeout=0.25, read_timeout=0.25)
