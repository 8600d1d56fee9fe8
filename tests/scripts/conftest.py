"""Fixtures for the bash script tests: fake ``aws``/``sam`` executables first on PATH."""

from tests.support.fake_cli import fake_cli

__all__ = ["fake_cli"]
