"""Sample data written straight into moto's S3 backend: the fixture, not the pipeline under test.

Profiling the local runs put a fifth to a quarter of a run's CPU in seeding the sample objects
(``local.samples.<use case>.generate`` calling ``put_object`` once per object): each put went
through botocore's whole client (serialize, CRC32 trailer, sign, parse) and moto's HTTP dispatch
(werkzeug request, routing, response headers), about 6 ms per object, to produce an object that
on AWS already exists on the volume before the pipeline runs.

``SeedingClient`` wraps the S3 client the sample generator gets: ``put_object`` with only
``Bucket`` (a bucket or an access point ARN), ``Key`` and ``Body`` stores the object through
the same moto backend calls moto's own PutObject handler makes for such a request from boto3
(``S3Backend.put_object`` with STANDARD storage and the CRC32 checksum botocore sends, the
bucket's ACL, no tags, the metadata moto keeps from boto3's request), so the stored object - bytes, ETag, size, storage
class, checksum, last-modified - is the one an HTTP put would have stored
(``tests/local/test_runner_seeding.py`` compares the two). Any other call, or a put with any other
argument, goes to the real client unchanged. The handlers' own requests are not affected.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from moto.s3control.exceptions import AccessPointNotFound
from moto.s3control.models import s3control_backends

from local.runner.stack import ACCOUNT

_PLAIN_PUT_ARGUMENTS = frozenset({"Bucket", "Key", "Body"})
STREAMING_PAYLOAD = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


class SeedingClient:
    """An S3 client whose plain ``put_object`` calls are stored directly in moto's backend."""

    def __init__(self, client: Any, *, account_id: str = ACCOUNT, partition: str = "aws") -> None:
        self._client = client
        self._account_id = account_id
        self._partition = partition
        self.direct_puts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        body = kwargs.get("Body", b"")
        if set(kwargs) - _PLAIN_PUT_ARGUMENTS or not isinstance(body, bytes | bytearray | str) or "Key" not in kwargs:
            return dict(self._client.put_object(**kwargs))
        data = body.encode() if isinstance(body, str) else bytes(body)
        backend = s3_backends[self._account_id][self._partition]
        try:
            bucket_name = self._bucket_name(str(kwargs["Bucket"]))
            bucket = backend.get_bucket(bucket_name)
        except (MissingBucket, AccessPointNotFound, ValueError):
            # Not a bucket or access point that exists: the real request fails as it would.
            return dict(self._client.put_object(**kwargs))
        checksum = base64.b64encode(binascii.crc32(data).to_bytes(4, "big")).decode()
        key = backend.put_object(bucket_name, str(kwargs["Key"]), data, storage="STANDARD", checksum_value=checksum)
        # moto keeps the x-amz-content-sha256 header of boto3's streaming (aws-chunked) upload as
        # metadata and returns it on every GET/HEAD; so does this.
        key.set_metadata({"x-amz-content-sha256": STREAMING_PAYLOAD})
        key.set_acl(bucket.acl)
        key.checksum_algorithm = "CRC32"
        backend.put_object_tagging(key, {})
        self.direct_puts += 1
        return {"ETag": key.etag, "ChecksumCRC32": checksum}

    def _bucket_name(self, bucket: str) -> str:
        if not bucket.startswith("arn:"):
            return bucket
        parts = bucket.split(":", 5)
        kind, _, name = parts[5].partition("/") if len(parts) == 6 else ("", "", "")
        if kind != "accesspoint" or not name:
            raise ValueError(f"not a bucket or an S3 access point ARN: {bucket}")
        account = parts[4]
        return str(s3control_backends[account][self._partition].get_access_point(account, name).bucket)
