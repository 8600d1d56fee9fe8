"""cfn-lint results shared by every test that lints a template file (one lint per file per process).

Several layers check the same templates (every match at all; W2530 alone; the hook template);
each used to start its own cfn-lint, and the lint of a use-case template is the most expensive
step of those tests. ``Linter`` runs cfn-lint in process with the command line's configuration
(``cfn-lint --template PATH``: default rules and regions, any ``.cfnlintrc`` honoured) and keeps
the matches, keyed by the file's resolved path and its content, so an edited file is linted again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cfnlint.api import lint_file
from cfnlint.rules import Match


class Linter:
    def __init__(self) -> None:
        self._results: dict[tuple[Path, str], tuple[Match, ...]] = {}
        self.runs = 0

    def matches(self, path: Path) -> tuple[Match, ...]:
        """Every cfn-lint match (error, warning or informational) for the template at ``path``."""
        resolved = path.resolve()
        key = (resolved, hashlib.sha256(resolved.read_bytes()).hexdigest())
        if key not in self._results:
            self.runs += 1
            self._results[key] = tuple(lint_file(resolved))
        return self._results[key]

    def messages(self, path: Path) -> list[str]:
        """The matches as cfn-lint prints them (rule id, message, file and line), for assertions."""
        return [str(m) for m in self.matches(path)]
