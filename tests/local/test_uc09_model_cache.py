"""UC9's local model archive is trained once per source tree and interpreter, then read back
(local/samples/autonomous_driving_model.py): the same bytes, and any edit of the model's sources
trains again."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.samples import autonomous_driving_model as model

pytestmark = pytest.mark.unit


@pytest.fixture
def trainings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """A copy of the model sources and an empty cache; training is counted and returns bytes that
    name the training (the real training's determinism: tests/scripts/test_package_model.py)."""
    sources = tmp_path / "model"
    shutil.copytree(model.MODEL_SOURCES, sources, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(model, "MODEL_SOURCES", sources)
    monkeypatch.setattr(model, "CACHE_DIR", tmp_path / "cache")
    made: list[bytes] = []

    def train() -> bytes:
        made.append(b"archive %d" % len(made))
        return made[-1]

    monkeypatch.setattr(model, "train", train)
    model.archive.cache_clear()
    yield made
    model.archive.cache_clear()


def _new_process() -> None:
    model.archive.cache_clear()  # what a new process starts with


def test_a_second_process_reads_the_archive_the_first_trained(trainings: list[bytes], tmp_path: Path) -> None:
    first = model.archive()
    _new_process()
    assert model.archive() == first == b"archive 0"
    assert len(trainings) == 1
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"{model.source_digest()}.tar.gz"]


@pytest.mark.parametrize("edited", ["train.py", "code/inference.py"])
def test_an_edited_source_trains_again(trainings: list[bytes], tmp_path: Path, edited: str) -> None:
    before = model.archive()
    digest = model.source_digest()
    with (model.MODEL_SOURCES / edited).open("a") as source:
        source.write("\n# edited\n")
    _new_process()
    assert model.source_digest() != digest
    assert model.archive() == b"archive 1" != before
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_a_new_source_file_changes_the_digest(trainings: list[bytes]) -> None:
    digest = model.source_digest()
    (model.MODEL_SOURCES / "code" / "helpers.py").write_text("X = 1\n")
    assert model.source_digest() != digest


def test_the_real_archive_is_cached_under_build_and_matches_a_fresh_training() -> None:
    model.archive.cache_clear()
    cached = model.archive()
    assert (model.CACHE_DIR / f"{model.source_digest()}.tar.gz").read_bytes() == cached
    assert model.train() == cached
