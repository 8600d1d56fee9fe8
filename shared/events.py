"""Checks of the values a state machine passes to every function.

The execution id is the Step Functions execution name (``$$.Execution.Name``). Handlers put it
into S3 keys (``manifests/<id>/``, ``results/execution_id=<id>/``, ``reports/<id>/``) and bind it
as an Athena execution parameter, so every handler checks it the same way before using it::

    execution_id = events.validate_execution_id(event.get("execution_id"))

Accepted are exactly the names StartExecution accepts (its ``name`` parameter, Step Functions
API reference): 1 to 80 characters, none of them white space, brackets ``< > { } [ ]``,
wildcards ``? *``, the special characters ``" # % \\ ^ | ~ ` $ & , ; : /``, control characters
(U+0000-001F, U+007F-009F, U+FFFE-FFFF), surrogates (U+D800-DFFF) or U+10FFFF; except ``.``
and ``..``, which Step Functions allows but which would make a whole S3 key segment that many
tools treat as a path step. Step Functions names an execution with a UUID when no name is given.
A name may contain a single quote: whoever puts it into SQL must escape it.
"""

from __future__ import annotations

import re

from shared.errors import InvalidInputError

EXECUTION_NAME_MAX_LENGTH = 80

# White space is matched by \s (Unicode white space, such as U+00A0 and U+3000, included).
_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff\U0010ffff\ud800-\udfff]")


def _describe(char: str) -> str:
    if char.isspace():
        return f"white space (U+{ord(char):04X})"
    if char.isprintable():
        return f"{char!r}"
    return f"U+{ord(char):04X}"


def validate_execution_id(value: object, *, field: str = "execution_id") -> str:
    """Return ``value`` if it is a usable Step Functions execution name; ``InvalidInputError`` otherwise.

    ``field`` names the value in the error (``BatchInput.execution_id``...).
    """
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{field} must be a string (a Step Functions execution name), got {type(value).__name__}", field=field
        )
    if not 1 <= len(value) <= EXECUTION_NAME_MAX_LENGTH:
        raise InvalidInputError(
            f"{field} must be 1 to {EXECUTION_NAME_MAX_LENGTH} characters (a Step Functions execution name), "
            f"got {len(value)}",
            field=field,
        )
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        raise InvalidInputError(
            f"{field} {value!r} is not a Step Functions execution name: it contains {_describe(bad.group())} "
            f"at position {bad.start()}",
            field=field,
        )
    if value in {".", ".."}:
        raise InvalidInputError(f"{field} must not be '.' or '..' (it is used as an S3 key segment)", field=field)
    return value
