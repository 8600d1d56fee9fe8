"""Write every state machine definition of every template, substitutions resolved, as JSON files.

Used by ``scripts/test.sh`` (stage ``asl``) to run asl-validator over what Step Functions would
really receive. Two parameter sets per template: the defaults, and every ``'true'|'false'``
parameter switched on.

    python -m tests.support.extract_asl OUTDIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.templates import (
    REPO_ROOT,
    all_templates,
    deployable,
    load_template,
    opt_in_parameters,
    state_machines,
)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m tests.support.extract_asl OUTDIR\n")
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in all_templates():
        template = load_template(path)
        variants = {"default": {}, "opt-in": deployable(template, opt_in_parameters(template))}
        for variant, params in variants.items():
            for logical_id, definition in state_machines(template, params).items():
                stem = str(path.relative_to(REPO_ROOT).parent).replace("/", "_") or "root"
                target = out / f"{stem}.{logical_id}.{variant}.json"
                target.write_text(json.dumps(definition, indent=2), encoding="utf-8")
                written += 1
    sys.stdout.write(f"extracted {written} state machine definitions into {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
