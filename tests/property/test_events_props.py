"""shared.events: any name built from allowed characters passes; one forbidden character fails it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidInputError
from shared.events import validate_execution_id

pytestmark = pytest.mark.property

# Every character StartExecution refuses in a name, by the API reference's list.
FORBIDDEN = (
    set(" \t\n\r\x0b\x0c<>{}[]?*\"#%\\^|~`$&,;:/")
    | {chr(c) for c in range(0x00, 0x20)}
    | {chr(c) for c in range(0x7F, 0xA0)}
    | {"\ufffe", "\uffff", "\U0010ffff"}
    | {chr(c) for c in range(0xD800, 0xE000)}
)
allowed_char = st.characters(codec="utf-8", exclude_characters="".join(FORBIDDEN)).filter(lambda c: not c.isspace())
names = st.text(allowed_char, min_size=1, max_size=80).filter(lambda s: s not in {".", ".."})


@given(names)
def test_allowed_characters_make_a_valid_name(name):
    assert validate_execution_id(name) == name


@given(names, st.sampled_from(sorted(FORBIDDEN)), st.data())
def test_one_forbidden_character_makes_it_invalid(name, bad, data):
    at = data.draw(st.integers(min_value=0, max_value=len(name)))
    with pytest.raises(InvalidInputError):
        validate_execution_id(name[:at] + bad + name[at:])


@given(st.text(allowed_char, min_size=81, max_size=120))
def test_more_than_80_characters_is_invalid(name):
    with pytest.raises(InvalidInputError):
        validate_execution_id(name)
