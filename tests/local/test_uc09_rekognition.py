"""The Rekognition DetectLabels emulation: labels derived from the decoded image, the service's
validation errors as botocore ClientErrors, throttling modes."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from PIL import Image

from local.emulators.rekognition import RekognitionEmulator, derive_labels, s3_reader
from local.runner.interceptor import Interceptor

pytestmark = pytest.mark.unit

BUCKET = "frames-bucket"


def jpeg(width: int = 160, height: int = 120, *, car: bool = True, night: bool = False) -> bytes:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[: height // 2] = (20, 20, 30) if night else (150, 190, 235)
    image[height // 2 :] = (40, 40, 40) if night else (90, 90, 95)
    if car:
        image[height * 3 // 5 : height * 3 // 5 + 20, 30:70] = (220, 30, 30)
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def world() -> Iterator[tuple[Any, Any, RekognitionEmulator]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        emulator = RekognitionEmulator(s3_reader())
        interceptor = Interceptor()
        interceptor.add(emulator.hook, service="rekognition")
        with interceptor:
            client = session.client("rekognition", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
            yield s3, client, emulator


def names(reply: dict[str, Any]) -> list[str]:
    return [label["Name"] for label in reply["Labels"]]


def test_labels_follow_the_image_and_are_deterministic(world):
    s3, client, _ = world
    s3.put_object(Bucket=BUCKET, Key="day.jpg", Body=jpeg())
    s3.put_object(Bucket=BUCKET, Key="empty-night.jpg", Body=jpeg(car=False, night=True))
    day = client.detect_labels(Image={"S3Object": {"Bucket": BUCKET, "Name": "day.jpg"}}, MinConfidence=50)
    again = client.detect_labels(Image={"S3Object": {"Bucket": BUCKET, "Name": "day.jpg"}}, MinConfidence=50)
    night = client.detect_labels(Image={"S3Object": {"Bucket": BUCKET, "Name": "empty-night.jpg"}}, MinConfidence=50)
    assert {"Sky", "Road", "Car", "Vehicle", "Outdoors"} <= set(names(day))
    assert day["Labels"] == again["Labels"]
    assert "Car" not in names(night)
    assert "Night" in names(night)
    car = next(label for label in day["Labels"] if label["Name"] == "Car")
    box = car["Instances"][0]["BoundingBox"]
    assert 0 < box["Left"] < 0.5 and 0.5 < box["Top"] < 1  # noqa: PT018 - one box
    assert [p["Name"] for p in car["Parents"]] == ["Vehicle", "Transportation"]
    confidences = [label["Confidence"] for label in day["Labels"]]
    assert confidences == sorted(confidences, reverse=True)


def test_bytes_max_labels_and_min_confidence(world):
    _, client, _ = world
    reply = client.detect_labels(Image={"Bytes": jpeg()}, MaxLabels=2, MinConfidence=0)
    assert len(reply["Labels"]) == 2
    high = client.detect_labels(Image={"Bytes": jpeg()}, MinConfidence=90)
    assert all(label["Confidence"] >= 90 for label in high["Labels"])


@pytest.mark.parametrize(
    ("image", "code"),
    [
        ({"S3Object": {"Bucket": BUCKET, "Name": "missing.jpg"}}, "InvalidS3ObjectException"),
        ({"Bytes": b"GIF89a not supported"}, "InvalidImageFormatException"),
        ({"Bytes": b"\xff\xd8\xff\xe0 truncated jpeg"}, "InvalidImageFormatException"),
        ({"Bytes": jpeg(64, 48)}, "InvalidImageFormatException"),
        ({"Bytes": b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)}, "ImageTooLargeException"),
    ],
    ids=["missing", "gif", "truncated", "too-small", "too-large"],
)
def test_the_service_errors(world, image, code):
    _, client, _ = world
    with pytest.raises(ClientError) as error:
        client.detect_labels(Image=image)
    assert error.value.response["Error"]["Code"] == code


def test_s3_objects_are_read_as_the_service_reads_them(world):
    # the latest version; a deleted object (a delete marker on top of its versions) and a bucket
    # that does not exist are InvalidS3ObjectException, as for a key that never existed
    s3, client, _ = world
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="car.jpg", Body=jpeg(night=True))
    s3.put_object(Bucket=BUCKET, Key="car.jpg", Body=jpeg())
    latest = client.detect_labels(Image={"S3Object": {"Bucket": BUCKET, "Name": "car.jpg"}})["Labels"]
    assert latest == client.detect_labels(Image={"Bytes": jpeg()})["Labels"]
    assert latest != client.detect_labels(Image={"Bytes": jpeg(night=True)})["Labels"]
    s3.delete_object(Bucket=BUCKET, Key="car.jpg")
    for bucket, key in ((BUCKET, "car.jpg"), ("no-such-bucket", "car.jpg")):
        with pytest.raises(ClientError) as error:
            client.detect_labels(Image={"S3Object": {"Bucket": bucket, "Name": key}})
        assert error.value.response["Error"]["Code"] == "InvalidS3ObjectException"


def test_a_large_s3_object_is_refused(world):
    s3, client, _ = world
    s3.put_object(Bucket=BUCKET, Key="huge.jpg", Body=b"\xff\xd8\xff" + b"\0" * (15 * 1024 * 1024))
    with pytest.raises(ClientError) as error:
        client.detect_labels(Image={"S3Object": {"Bucket": BUCKET, "Name": "huge.jpg"}})
    assert error.value.response["Error"]["Code"] == "ImageTooLargeException"


def test_throttling_modes(world):
    _, client, emulator = world
    emulator.throttle_next(2)
    for _ in range(2):
        with pytest.raises(ClientError) as error:
            client.detect_labels(Image={"Bytes": jpeg()})
        assert error.value.response["Error"]["Code"] == "ThrottlingException"
    client.detect_labels(Image={"Bytes": jpeg()})
    emulator.throttle_every = 2
    outcomes = []
    for _ in range(4):
        try:
            client.detect_labels(Image={"Bytes": jpeg()})
            outcomes.append("ok")
        except ClientError as e:
            outcomes.append(e.response["Error"]["Code"])
    assert outcomes == ["ThrottlingException", "ok", "ThrottlingException", "ok"]
    assert emulator.throttled == 4


def test_different_images_get_different_confidences():
    rng = random.Random(1)
    seen = set()
    for _ in range(5):
        image = np.full((120, 160, 3), [rng.randrange(256) for _ in range(3)], dtype=np.uint8)
        out = io.BytesIO()
        Image.fromarray(image).save(out, format="PNG")
        seen.add(tuple((label["Name"], label["Confidence"]) for label in derive_labels(out.getvalue())))
    assert len(seen) == 5
