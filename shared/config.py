"""Environment configuration, read and validated once when a handler module is imported.

Handlers read their settings at module scope, so a bad value fails the function's init with a
``ConfigurationError`` that names the variable and what was expected, instead of surfacing later
as a confusing failure inside business logic::

    OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
    MAX_OBJECTS = config.env_int("MAX_OBJECTS", 1_000_000, minimum=1)
    SOURCE = config.env_access_point("SOURCE_ACCESS_POINT_ARN")

A variable that is unset, empty or only whitespace counts as missing: CloudFormation passes an
optional parameter left at ``''`` as an empty string, and that must select the default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection

from shared.errors import ConfigurationError, InvalidInputError
from shared.s3ap import AccessPoint

_INT_RE = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def _raw(name: str) -> str | None:
    """The stripped value of ``name``, or None when unset or blank."""
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _missing(name: str, expected: str) -> ConfigurationError:
    return ConfigurationError(
        f"environment variable {name} is required ({expected}) but is unset or empty",
        variable=name,
    )


def _invalid(name: str, value: str, expected: str) -> ConfigurationError:
    return ConfigurationError(
        f"environment variable {name}={value!r} is invalid: expected {expected}",
        variable=name,
    )


def env_str(
    name: str,
    default: str | None = None,
    *,
    pattern: str | None = None,
    choices: Collection[str] | None = None,
) -> str:
    """A string variable; ``pattern`` must match the whole value, ``choices`` lists allowed values.

    The default is returned as given (not checked against ``pattern``/``choices``) so that an
    optional value can default to ``""``.
    """
    expected = _describe_str(pattern, choices)
    value = _raw(name)
    if value is None:
        if default is None:
            raise _missing(name, expected)
        return default
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise _invalid(name, value, expected)
    if choices is not None and value not in choices:
        raise _invalid(name, value, expected)
    return value


def _describe_str(pattern: str | None, choices: Collection[str] | None) -> str:
    parts = []
    if choices is not None:
        parts.append("one of " + ", ".join(sorted(choices)))
    if pattern is not None:
        parts.append(f"a value matching {pattern!r}")
    return " and ".join(parts) or "a non-empty string"


def env_int(
    name: str,
    default: int | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """A decimal integer variable within ``[minimum, maximum]`` (either bound optional)."""
    expected = "a decimal integer"
    if minimum is not None and maximum is not None:
        expected += f" between {minimum} and {maximum}"
    elif minimum is not None:
        expected += f" >= {minimum}"
    elif maximum is not None:
        expected += f" <= {maximum}"
    value = _raw(name)
    if value is None:
        if default is None:
            raise _missing(name, expected)
        return default
    # int() alone would also accept "1_000" and non-ASCII digits; configuration wants plain decimals.
    if _INT_RE.fullmatch(value) is None:
        raise _invalid(name, value, expected)
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise _invalid(name, value, expected)
    return number


def env_bool(name: str, default: bool | None = None) -> bool:
    """A boolean variable: true/false, 1/0, yes/no or on/off, in any case."""
    expected = "true or false (also 1/0, yes/no, on/off)"
    value = _raw(name)
    if value is None:
        if default is None:
            raise _missing(name, expected)
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _invalid(name, value, expected)


def env_list(name: str, default: Collection[str] | None = None, *, separator: str = ",") -> tuple[str, ...]:
    """A separated list (``".gds,.oas"``); items are stripped and empty items dropped.

    With a default, an unset or blank variable gives the default; without one it is an error.
    A value that yields no items at all (``" , "``) is an error: it is almost certainly a typo.
    """
    expected = f"a {separator!r}-separated list"
    value = _raw(name)
    if value is None:
        if default is None:
            raise _missing(name, expected)
        return tuple(default)
    items = tuple(item.strip() for item in value.split(separator) if item.strip())
    if not items:
        raise _invalid(name, value, expected + " with at least one item")
    return items


def env_bucket(name: str, default: str | None = None) -> str:
    """A general purpose S3 bucket name, by the S3 naming rules: 3-63 characters of lower-case
    letters, digits, ``.`` and ``-``, starting and ending with a letter or digit; no ``..``; not
    an IP address; none of the reserved prefixes (``xn--``, ``sthree-``) and suffixes
    (``-s3alias``, ``--ol-s3``, ``.mrap``, ``--x-s3``) S3 refuses."""
    expected = "an S3 bucket name (3-63 characters: a-z, 0-9, '.', '-'; letter or digit at both ends)"
    value = _raw(name)
    if value is None:
        if default is None:
            raise _missing(name, expected)
        return default
    if (
        _BUCKET_RE.fullmatch(value) is None
        or ".." in value
        or _IP_RE.fullmatch(value) is not None
        or value.startswith(_BUCKET_RESERVED_PREFIXES)
        or value.endswith(_BUCKET_RESERVED_SUFFIXES)
    ):
        raise _invalid(name, value, expected)
    return value


def env_access_point(name: str) -> AccessPoint:
    """An S3 access point ARN variable (an alias is refused: IAM cannot be scoped on it)."""
    value = _raw(name)
    if value is None:
        raise _missing(name, "an S3 access point ARN arn:<partition>:s3:<region>:<account>:accesspoint/<ap>")
    try:
        return AccessPoint.parse(value)
    except InvalidInputError as e:
        raise ConfigurationError(f"environment variable {name} is invalid: {e.message}", variable=name) from e
