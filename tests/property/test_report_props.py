"""shared.report properties: the prompt is bounded, deterministic and keeps the first entries;
an SNS subject is always one SNS accepts."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.report import SNS_SUBJECT_MAX, build_prompt, sns_subject

pytestmark = pytest.mark.property


@settings(max_examples=60, deadline=None)
@given(
    first=st.integers(0, 2000),
    second=st.integers(0, 200),
    message=st.text(max_size=300),
    limit=st.integers(500, 40_000),
)
def test_prompt_is_bounded_deterministic_and_keeps_the_first_entries(first, second, message, limit):
    facts = {
        "execution_id": "exec-1",
        "counts": {"a": first, "b": second},
        "findings": [{"key": f"designs/f{i:05d}.gds"} for i in range(first)],
        "failed": [{"key": f"designs/x{i:05d}.oas", "message": message} for i in range(second)],
    }
    kwargs = {"intro": "Review execution exec-1.", "max_chars": limit, "list_fields": ("findings", "failed"),
              "field_limits": {"message": 100}}
    prompt = build_prompt(facts, **kwargs)
    assert len(prompt.text) <= limit
    assert prompt == build_prompt(facts, **kwargs)
    assert 0 <= prompt.omitted["findings"] <= first
    assert 0 <= prompt.omitted["failed"] <= second
    if prompt.text.endswith("[... truncated to fit the prompt limit]"):
        return
    kept = first - prompt.omitted["findings"]
    assert all(f"designs/f{i:05d}.gds" in prompt.text for i in range(kept))
    assert f"designs/f{kept:05d}.gds" not in prompt.text
    assert '"counts"' in prompt.text


@given(st.text())
def test_sns_subjects_are_valid(text):
    subject = sns_subject(text)
    assert 0 < len(subject) < SNS_SUBJECT_MAX
    assert "\n" not in subject
    assert "\r" not in subject
    assert not any(unicodedata.category(c).startswith("C") for c in subject)
