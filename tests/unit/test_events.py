"""shared.events: the execution id every handler receives is a Step Functions execution name."""

from __future__ import annotations

import pytest

from shared.errors import InvalidInputError
from shared.events import EXECUTION_NAME_MAX_LENGTH, validate_execution_id

pytestmark = pytest.mark.unit

VALID = [
    "a",
    "0",
    "uc6-sample-0001",
    "local-47da9b15c7ae",
    "2d7b5c0e-6c1f-4f7e-9b1e-2f0a3c4d5e6f",  # what Step Functions generates when no name is given
    "x" * 80,
    "Nightly_Run.2026-11-26T08.00",
    "-leading-dash",
    "_underscore",
    "run(1)!@='+",
    "O'Brien",  # a quote is allowed by Step Functions; Athena binding escapes it
    "Entwurf-ä-日本",  # non-ASCII letters are allowed (CloudWatch logging wants ASCII, not required)
    "a.b..c",
]

INVALID = [
    ("", "1 to 80"),
    ("x" * 81, "1 to 80"),
    ("a b", "white space"),
    ("a\tb", "white space"),
    ("a\u00a0b", "white space"),  # no-break space
    ("a\u3000b", "white space"),  # ideographic space
    ("trailing\n", "white space"),
    ("run<1>", "'<'"),
    ("run{1}", "'{'"),
    ("run[1]", "'['"),
    ("run?", "'?'"),
    ("run*", "'*'"),
    ('say"hi"', "'\"'"),
    ("a#b", "'#'"),
    ("100%", "'%'"),
    ("a\\b", "'\\\\'"),
    ("a^b", "'^'"),
    ("a|b", "'|'"),
    ("a~b", "'~'"),
    ("a`b", "'`'"),
    ("$x", "'$'"),
    ("a&b", "'&'"),
    ("a,b", "','"),
    ("a;b", "';'"),
    ("a:b", "':'"),
    ("a/b", "'/'"),
    ("bad id/../x", "white space"),
    ("a\x00b", "U+0000"),
    ("a\x1fb", "U+001F"),
    ("a\x7fb", "U+007F"),
    ("a\x9fb", "U+009F"),
    ("a\ufffeb", "U+FFFE"),
    ("a\uffffb", "U+FFFF"),
    ("a\ud800b", "U+D800"),  # a lone surrogate, as json.loads yields for "\ud800"
    ("a\U0010ffffb", "U+10FFFF"),
    (".", "'.' or '..'"),
    ("..", "'.' or '..'"),
]


@pytest.mark.parametrize("name", VALID)
def test_step_functions_execution_names_are_accepted(name):
    assert validate_execution_id(name) == name


@pytest.mark.parametrize(("name", "reason"), INVALID)
def test_names_step_functions_refuses_are_rejected_with_the_reason(name, reason):
    with pytest.raises(InvalidInputError) as raised:
        validate_execution_id(name)
    assert reason in raised.value.message
    assert raised.value.details["field"] == "execution_id"


@pytest.mark.parametrize("value", [None, 5, 5.0, True, b"abc", ["a"], {"a": 1}])
def test_non_strings_are_rejected(value):
    with pytest.raises(InvalidInputError, match="must be a string"):
        validate_execution_id(value)


def test_the_field_is_named_in_the_error():
    with pytest.raises(InvalidInputError, match=r"^BatchInput\.execution_id ") as raised:
        validate_execution_id("a b", field="BatchInput.execution_id")
    assert raised.value.details["field"] == "BatchInput.execution_id"


def test_length_limit_is_the_step_functions_one():
    assert EXECUTION_NAME_MAX_LENGTH == 80
    # Characters, not bytes: 80 three-byte characters are a valid name.
    assert validate_execution_id("日" * 80) == "日" * 80
