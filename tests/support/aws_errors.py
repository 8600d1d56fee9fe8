"""botocore errors as the SDK raises them, for tests that inject service failures."""

from __future__ import annotations

from botocore.exceptions import ClientError


def client_error(code: str, status: int, operation: str = "Operation", message: str = "injected") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )
