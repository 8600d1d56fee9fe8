"""The UC6 sample generator: its broken files stay clearly inside the default failure tolerance."""

from __future__ import annotations

from collections import Counter

import pytest

from local.runner.run import DEFAULT_OBJECTS
from local.samples import semiconductor_eda
from tests.support.fakes import RecordingS3
from tests.support.uc06 import load_function, template_default

pytestmark = pytest.mark.unit

ACCESS_POINT = "arn:aws:s3:us-east-1:123456789012:accesspoint/eda-samples"


def generate(objects: int, seed: int = 0) -> tuple[semiconductor_eda.SampleSet, RecordingS3]:
    s3 = RecordingS3()
    return semiconductor_eda.generate(s3, ACCESS_POINT, objects=objects, seed=seed), s3


def test_default_sample_sits_clearly_below_the_default_tolerance():
    samples, _ = generate(DEFAULT_OBJECTS)
    tolerance = float(template_default("ToleratedFailurePercentage"))
    layout_files = len(samples.valid) + len(samples.corrupt)
    assert layout_files == DEFAULT_OBJECTS
    # Not on the boundary: one more failing file must still be tolerated.
    assert (len(samples.corrupt) + 1) * 100 <= tolerance * layout_files
    assert samples.corrupt


@pytest.mark.parametrize("objects", [0, 1, 19, 20, 21, 39, 40, 41, 60, 119, 120])
def test_corrupt_share_is_at_most_five_percent_at_any_size(objects):
    samples, s3 = generate(objects)
    assert len(samples.valid) + len(samples.corrupt) == objects
    assert len(samples.corrupt) * 100 <= 5 * objects
    assert set(s3.objects) == set(samples.keys)


def test_default_sample_has_a_truncated_and_a_corrupt_file_of_both_formats():
    fn = load_function("metadata_extraction", "extraction", "layout")
    samples, s3 = generate(DEFAULT_OBJECTS)
    errors: Counter[str] = Counter()
    suffixes = set()
    for key in samples.corrupt:
        with pytest.raises(fn.layout.InvalidFileError) as raised:
            fn.extraction.extract(fn.layout.bytes_source(s3.objects[key]), label=key)
        errors[type(raised.value).__name__] += 1
        suffixes.add(key.rsplit(".", 1)[1])
    assert set(errors) == {"TruncatedFileError", "InvalidFileError"}
    assert suffixes == {"gds", "oas"}
    for key in samples.valid:  # and the valid ones are valid
        summary = fn.extraction.extract(fn.layout.bytes_source(s3.objects[key]), label=key)
        assert summary.cell_names == samples.expected[key]["cell_names"]
        assert summary.file_format == samples.expected[key]["format"]
