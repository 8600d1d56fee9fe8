"""What the command line needs before the runner is imported: the repository root, the use cases
in it and the default sample size. ``local.cli`` parses its arguments and checks the use-case names
with these alone, so ``--help`` and a usage error answer at once instead of after the runner's
imports (moto's Step Functions engine: about two seconds); ``local.runner.run`` re-exports them."""

from __future__ import annotations

from local.usecase_names import REPO_ROOT, discover_use_cases

__all__ = ["DEFAULT_OBJECTS", "REPO_ROOT", "discover_use_cases"]

DEFAULT_OBJECTS = 40
