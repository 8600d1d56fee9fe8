"""shared.config properties: valid values round-trip, invalid ones fail naming the variable."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared import config
from shared.errors import ConfigurationError

pytestmark = pytest.mark.property

names = st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True).map(lambda n: f"PROP_{n}")
# Anything an environment variable can hold (no NUL, no lone surrogates).
env_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
padding = st.sampled_from(["", " ", "\t", "  \t "])


@contextmanager
def env(name: str, value: str | None) -> Iterator[None]:
    with mock.patch.dict(os.environ):
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value
        yield


def raises_naming(name: str, fn, *args, **kwargs) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        fn(*args, **kwargs)
    assert name in info.value.message
    assert info.value.details["variable"] == name
    return info.value


@given(names, st.integers(), padding, padding)
def test_int_round_trips(name, number, left, right):
    with env(name, f"{left}{number}{right}"):
        assert config.env_int(name) == number


@given(names, st.integers(), st.integers(), st.integers())
def test_int_bounds_are_inclusive_and_enforced(name, number, low, high):
    assume(low <= high)
    with env(name, str(number)):
        if low <= number <= high:
            assert config.env_int(name, minimum=low, maximum=high) == number
        else:
            raises_naming(name, config.env_int, name, minimum=low, maximum=high)


@given(names, env_text)
def test_int_accepts_only_plain_decimals(name, text):
    stripped = text.strip()
    plain = stripped.lstrip("+-")
    assume(not (plain.isascii() and plain.isdigit() and len(stripped) - len(plain) <= 1))
    with env(name, text):
        if stripped:
            raises_naming(name, config.env_int, name)
        else:
            assert config.env_int(name, 7) == 7


@given(names, st.booleans(), st.sampled_from(["true", "1", "yes", "on"]), st.sampled_from(["false", "0", "no", "off"]))
def test_bool_words_in_any_case(name, flip, true_word, false_word):
    word = true_word if flip else false_word
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(word))
    with env(name, mixed):
        assert config.env_bool(name) is flip


@given(names, env_text)
def test_bool_rejects_other_text(name, text):
    assume(text.strip().lower() not in {"true", "1", "yes", "on", "false", "0", "no", "off", ""})
    with env(name, text):
        raises_naming(name, config.env_bool, name, True)


@given(names, env_text)
def test_str_round_trips_or_defaults(name, text):
    with env(name, text):
        if text.strip():
            assert config.env_str(name) == text.strip()
        else:
            assert config.env_str(name, "dflt") == "dflt"
            raises_naming(name, config.env_str, name)


@given(
    names,
    st.lists(
        st.text(st.characters(exclude_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=8).filter(
            lambda s: "," not in s and s.strip() == s
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_list_round_trips(name, items):
    with env(name, " , ".join(items)):
        assert config.env_list(name) == tuple(items)


@given(names, st.sampled_from([None, "", "   "]))
def test_every_missing_required_value_names_the_variable(name, value):
    with env(name, value):
        for fn in (config.env_str, config.env_int, config.env_bool, config.env_list, config.env_access_point):
            raises_naming(name, fn, name)


bucket_names = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True).filter(
    lambda n: ".." not in n
    and not n.startswith(("xn--", "sthree-"))
    and not n.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3"))
    and re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", n) is None
)


@given(names, bucket_names, padding)
def test_valid_bucket_names_round_trip(name, bucket, pad):
    with env(name, f"{pad}{bucket}{pad}"):
        assert config.env_bucket(name) == bucket


@given(names, env_text)
def test_env_bucket_accepts_only_what_the_naming_rules_allow(name, value):
    error: ConfigurationError | None
    with env(name, value):
        try:
            bucket = config.env_bucket(name, "default-bucket")
        except ConfigurationError as e:
            error = e
        else:
            error = None
    if error is not None:
        assert error.details["variable"] == name
        return
    assert bucket == "default-bucket" or (3 <= len(bucket) <= 63 and bucket == bucket.lower() and ".." not in bucket)
    assert bucket == "default-bucket" or set(bucket) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-")
