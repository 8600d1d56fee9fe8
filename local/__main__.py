"""``python -m local``: the one entry point for local runs (``scripts/local-test.sh`` calls it).

``--engine embedded`` (default) runs each pipeline in-process (``local.cli``: moto's Step
Functions engine, the real handlers); ``--engine sam`` invokes every function with
``sam local invoke`` (``local.sam_engine``); ``--engine auto`` uses sam when a container engine
answers, the embedded engine otherwise. Every other argument goes to the chosen engine, whose own
``--help`` lists them; exit status is the engine's (2 for a usage error).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from local.hard_exit import hard_exit

ENGINES = ("embedded", "sam", "auto")
USAGE_ERROR = 2


def split_engine(argv: Sequence[str]) -> tuple[str | None, list[str], str | None]:
    """(engine, remaining arguments, usage error) from ``--engine E`` / ``--engine=E``."""
    engine: str | None = None
    rest: list[str] = []
    items = list(argv)
    while items:
        arg = items.pop(0)
        if arg == "--engine":
            if not items:
                return None, rest, "--engine needs a value (embedded|sam|auto)"
            engine = items.pop(0)
        elif arg.startswith("--engine="):
            engine = arg.removeprefix("--engine=")
        else:
            rest.append(arg)
    if engine is not None and engine not in ENGINES:
        return None, rest, f"unknown engine '{engine}' (expected embedded, sam or auto)"
    return engine, rest, None


def main(argv: Sequence[str] | None = None) -> int:
    engine, rest, error = split_engine(sys.argv[1:] if argv is None else argv)
    if error is not None:
        sys.stderr.write(f"local-test: {error}\n")
        return USAGE_ERROR
    if engine == "auto":
        from local.sam import containers  # noqa: PLC0415 - only the sam engine needs its imports

        engine = "sam" if containers.find_engine() is not None else "embedded"
    if engine == "sam":
        from local import sam_engine  # noqa: PLC0415

        return sam_engine.main(rest)
    from local import cli  # noqa: PLC0415

    return cli.main(rest)


if __name__ == "__main__":
    hard_exit(main())
