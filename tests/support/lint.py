"""cfn-lint results shared by every test that lints a template file (one lint per file per process,
and a clean result kept across runs).

Several layers check the same templates (every match at all; W2530 alone; the hook template);
each used to start its own cfn-lint, and the lint of a use-case template is the most expensive
step of those tests. ``Linter`` runs cfn-lint in process with the command line's configuration
(``cfn-lint --template PATH``: default rules and regions, any ``.cfnlintrc`` honoured) and keeps
the matches, keyed by the file's resolved path and its content, so an edited file is linted again.

With a ``cache_dir``, a lint that found nothing is also remembered there, as an empty file named by
a digest of everything cfn-lint reads for it: the template's bytes and suffix (the decoder), the
cfn-lint version and its installed folder, the Python version, and each configuration file it
looks for (``~/.cfnlintrc``, ``.cfnlintrc`` in the working folder). A later run linting the same
bytes under the same tool gets the same empty result without linting again (the template, guard
and packaging tests: 26.6 CPU-s of linting -> 3.7 s, what is left being templates with findings,
measured on a second run). Only a clean
result is kept: anything cfn-lint reports is found afresh every time, with the messages for this
path. Where cfn-lint would read schemas a user updated (``~/.cache/aws/cfn-lint``), nothing is kept.
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib.metadata import version
from pathlib import Path

import cfnlint
from cfnlint.api import lint_file
from cfnlint.rules import Match

# Where cfn-lint looks for configuration and user-updated schemas (cfnlint/config.py, cfnlint/schema).
_CONFIG_NAMES = (".cfnlintrc", ".cfnlintrc.yaml", ".cfnlintrc.yml")
_USER_SCHEMAS = Path("~/.cache/aws/cfn-lint")
_KEY_FORMAT = b"clean-lint-v1"


class Linter:
    def __init__(self, cache_dir: Path | None = None) -> None:
        self._results: dict[tuple[Path, str], tuple[Match, ...]] = {}
        self._cache_dir = cache_dir
        self.runs = 0

    def matches(self, path: Path) -> tuple[Match, ...]:
        """Every cfn-lint match (error, warning or informational) for the template at ``path``."""
        resolved = path.resolve()
        content = resolved.read_bytes()
        key = (resolved, hashlib.sha256(content).hexdigest())
        if key not in self._results:
            self._results[key] = self._lint(resolved, content)
        return self._results[key]

    def messages(self, path: Path) -> list[str]:
        """The matches as cfn-lint prints them (rule id, message, file and line), for assertions."""
        return [str(m) for m in self.matches(path)]

    def _lint(self, path: Path, content: bytes) -> tuple[Match, ...]:
        marker = self._clean_marker(path, content)
        if marker is not None and marker.is_file():
            return ()
        self.runs += 1
        found = tuple(lint_file(path))
        if marker is not None and not found:
            marker.parent.mkdir(parents=True, exist_ok=True)
            partial = marker.with_name(f".{marker.name}.{os.getpid()}.partial")
            partial.touch()
            partial.replace(marker)  # atomic: a worker beside this one sees it whole or not at all
        return found

    def _clean_marker(self, path: Path, content: bytes) -> Path | None:
        if self._cache_dir is None or _USER_SCHEMAS.expanduser().exists():
            return None
        digest = hashlib.sha256(_KEY_FORMAT)
        parts = [path.suffix.encode(), version("cfn-lint").encode(), cfnlint.__file__.encode(), sys.version.encode()]
        for folder in (Path.home(), Path.cwd()):
            for name in _CONFIG_NAMES:
                config = folder / name
                parts.append(str(config).encode() + (b"=" + config.read_bytes() if config.is_file() else b" absent"))
        for part in (*parts, content):
            digest.update(b"%d:%s" % (len(part), part))
        return self._cache_dir / f"{digest.hexdigest()[:40]}.clean"
