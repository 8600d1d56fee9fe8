"""local.runner.seeding: sample objects stored straight in moto's backend are the objects an
HTTP PutObject through boto3 stores (the fixture gets faster; what the pipeline reads does not change)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.runner.seeding import SeedingClient

ACCOUNT = "123456789012"
BUCKET = "fsxn-volume-seeding"
AP_NAME = "seeding-ap"
AP_ARN = f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/{AP_NAME}"
BODIES = [b"", b"x", bytes(range(256)) * 41, "text body \u00e9".encode()]

pytestmark = pytest.mark.unit


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        client = session.client("s3")
        client.create_bucket(Bucket=BUCKET)
        session.client("s3control").create_access_point(AccountId=ACCOUNT, Name=AP_NAME, Bucket=BUCKET)
        yield client


def _stored(s3: Any, key: str) -> dict[str, Any]:
    """Everything a reader of the object can see, less the request ids and the time of the put."""
    head = s3.head_object(Bucket=AP_ARN, Key=key, ChecksumMode="ENABLED")
    get = s3.get_object(Bucket=AP_ARN, Key=key, ChecksumMode="ENABLED")
    ranged = s3.get_object(Bucket=AP_ARN, Key=key, Range="bytes=0-9") if head["ContentLength"] else None
    (listed,) = [o for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"] if o["Key"] == key]
    acl = s3.get_object_acl(Bucket=BUCKET, Key=key)
    tags = s3.get_object_tagging(Bucket=BUCKET, Key=key)
    attributes = s3.get_object_attributes(
        Bucket=BUCKET, Key=key, ObjectAttributes=["ETag", "Checksum", "ObjectSize", "StorageClass"]
    )

    def plain(reply: dict[str, Any]) -> dict[str, Any]:
        meta = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        headers = {
            k: v
            for k, v in meta.items()
            if k not in {"x-amzn-requestid", "x-amz-request-id", "date", "last-modified", "x-amz-id-2"}
        }
        return {k: v for k, v in reply.items() if k not in {"ResponseMetadata", "LastModified", "Body", "Key"}} | {
            "headers": headers
        }

    return {
        "head": plain(head),
        "get": plain(get) | {"body": get["Body"].read()},
        "ranged": plain(ranged) | {"body": ranged["Body"].read()} if ranged else None,
        "listed": {k: v for k, v in listed.items() if k not in {"Key", "LastModified"}},
        "acl": plain(acl),
        "tags": plain(tags),
        "attributes": plain(attributes),
    }


@pytest.mark.parametrize("body", BODIES, ids=["empty", "one-byte", "binary", "utf-8"])
@pytest.mark.parametrize("bucket", [AP_ARN, BUCKET], ids=["access-point", "bucket"])
def test_a_seeded_object_is_the_object_a_put_through_boto3_stores(s3, body, bucket):
    seeder = SeedingClient(s3)
    through_http = s3.put_object(Bucket=bucket, Key="http/chip.gds", Body=body)
    direct = seeder.put_object(Bucket=bucket, Key="direct/chip.gds", Body=body)
    assert seeder.direct_puts == 1
    assert direct["ETag"] == through_http["ETag"]
    assert direct["ChecksumCRC32"] == through_http["ChecksumCRC32"]
    assert _stored(s3, "direct/chip.gds") == _stored(s3, "http/chip.gds")


@pytest.mark.parametrize(
    "name", ["contracts/", "a b+c%25&=?#.gds", "caf\u00e9/\u2028line\u0085.oas", "a//b", "~/.hidden", "x" * 900]
)
def test_seeded_keys_are_the_keys_a_put_stores(s3, name):
    SeedingClient(s3).put_object(Bucket=AP_ARN, Key=f"direct/{name}", Body=b"data")
    s3.put_object(Bucket=AP_ARN, Key=f"http/{name}", Body=b"data")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=AP_ARN)["Contents"]]
    assert sorted(keys) == [f"direct/{name}", f"http/{name}"]
    assert _stored(s3, f"direct/{name}") == _stored(s3, f"http/{name}")


def test_other_calls_and_other_put_arguments_go_to_the_real_client(s3):
    seeder = SeedingClient(s3)
    seeder.put_object(Bucket=AP_ARN, Key="typed.json", Body=b"{}", ContentType="application/json")
    assert seeder.direct_puts == 0
    assert s3.head_object(Bucket=AP_ARN, Key="typed.json")["ContentType"] == "application/json"
    assert seeder.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_a_missing_bucket_or_access_point_fails_as_a_put_would(s3):
    seeder = SeedingClient(s3)
    for bucket in ["no-such-bucket", f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/none"]:
        with pytest.raises(Exception) as seeded:  # noqa: PT011 - whatever the put raises
            seeder.put_object(Bucket=bucket, Key="k", Body=b"x")
        with pytest.raises(Exception) as put:  # noqa: PT011
            s3.put_object(Bucket=bucket, Key="k", Body=b"x")
        assert type(seeded.value) is type(put.value)
        assert str(seeded.value) == str(put.value)
    assert seeder.direct_puts == 0
