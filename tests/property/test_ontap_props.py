"""Properties of shared.ontap: path encoding, pagination through _links.next, retry backoff."""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import ThrottlingError
from shared.ontap import OntapClient, encode_path, file_path
from shared.retry import Deadline, backoff_cap

pytestmark = pytest.mark.property

# File names as SMB clients write them: any character but NUL and "/" (the separator).
segment = st.text(st.characters(exclude_characters="\x00/", exclude_categories=["Cs"]), min_size=1, max_size=20)
paths = st.lists(segment, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts))


@given(paths)
def test_an_encoded_path_is_one_segment_that_decodes_to_itself(path: str) -> None:
    encoded = encode_path(path)
    assert unquote(encoded) == path
    assert set(encoded) <= set(string.ascii_letters + string.digits + "%-._~")
    # One path segment: nothing in it can end the path or start a query or fragment.
    parts = urlsplit(f"https://h/api/protocols/file-security/permissions/u/{encoded}")
    assert parts.path.rsplit("/", 1)[1] == encoded
    assert parts.query == ""
    assert parts.fragment == ""


@given(junction=st.sampled_from(["/", "/vol1", "/vol1/", "/a/b"]), key=st.lists(segment, min_size=1, max_size=4))
def test_file_paths_join_junction_and_key_with_one_slash(junction: str, key: list[str]) -> None:
    path = file_path(junction, "/".join(key))
    assert path.startswith("/")
    assert "//" not in path
    assert path.endswith("/".join(key))


class PagedClient(OntapClient):
    """An OntapClient whose transport serves ``records`` in pages through _links.next."""

    def __init__(self, records: list[dict[str, Any]], size: int) -> None:
        self._all = records
        self._size = size
        self.requests: list[str] = []

    def _get(self, path_and_query: str, deadline: Deadline) -> dict[str, Any]:
        self.requests.append(path_and_query)
        start = int(path_and_query.rsplit("start=", 1)[1]) if "start=" in path_and_query else 0
        page: dict[str, Any] = {"records": self._all[start : start + self._size], "_links": {}}
        if start + self._size < len(self._all):
            page["_links"]["next"] = {
                "href": f"/api/storage/volumes?max_records={self._size}&start={start + self._size}"
            }
        return page


@given(count=st.integers(0, 60), size=st.integers(1, 7))
def test_pagination_yields_every_record_once_in_order(count: int, size: int) -> None:
    records = [{"uuid": str(i)} for i in range(count)]
    client = PagedClient(records, size)
    client.page_size = size
    assert list(client.records("/api/storage/volumes", Deadline.after(60))) == records
    assert len(client.requests) == max(1, -(-count // size))  # ceil, and one request for no records


class Throttled(OntapClient):
    """Answers 429 for the first ``storm`` attempts, then a record."""

    def __init__(self, storm: int, max_attempts: int) -> None:
        self.storm = storm
        self.calls = 0
        self.max_attempts = max_attempts
        self.base_delay = 0.5
        self.max_delay = 8.0
        self.sleeps: list[float] = []
        self._sleep = self.sleeps.append
        self._rng = lambda: 1.0  # the longest delay full jitter can draw

    def _attempt(self, path_and_query: str, deadline: Deadline) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.storm:
            raise ThrottlingError("429", retryAfter=None)
        return {"ok": True}


@settings(max_examples=60)
@given(storm=st.integers(0, 12), attempts=st.integers(1, 8))
def test_backoff_retries_429_up_to_the_attempts_with_capped_delays(storm: int, attempts: int) -> None:
    client = Throttled(storm, attempts)
    if storm < attempts:
        assert client.request("/api/svm/svms", Deadline.after(3600)) == {"ok": True}
        assert client.calls == storm + 1
    else:
        with pytest.raises(ThrottlingError):
            client.request("/api/svm/svms", Deadline.after(3600))
        assert client.calls == attempts
    assert len(client.sleeps) == client.calls - 1
    for attempt, delay in enumerate(client.sleeps, start=1):
        assert 0 <= delay <= backoff_cap(attempt, client.base_delay, client.max_delay)
