"""UC6 report_generation: whatever a field of the aggregate holds, the report step either accepts
it and renders (prompt and Markdown) without error, or refuses it with InvalidInputError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import InvalidInputError
from shared.report import ModelReply
from tests.support.uc06 import load_function
from tests.unit.test_uc06_report_generation import aggregate

pytestmark = pytest.mark.property

R = load_function("report_generation", "report")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


PATHS = paths(aggregate(findings=2, failed=2))


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(PATHS), value=json_values, delete=st.booleans())
def test_any_field_is_validated_or_rendered(path, value, delete):
    data = aggregate(findings=2, failed=2)
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    refused: InvalidInputError | None = None
    try:
        R.report.validate_aggregate(data)
    except InvalidInputError as e:
        refused = e
    if refused is not None:
        assert isinstance(refused.details.get("field"), str)
        return
    prompt = R.report.build_prompt(data, max_chars=4_000)
    markdown = R.report.render_markdown(data, ModelReply("ok", "end_turn", 1, 1), model_id="m", prompt=prompt)
    assert markdown.startswith("# Layout design review")
