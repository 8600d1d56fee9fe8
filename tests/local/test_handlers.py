"""local.handlers: the one handler loader (runner, tests, sam tier, CRIU host)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from local.handlers import HandlerInitError, function_imports, load_handler
from tests.support.functions import load_function_from


def _function(root: Path, name: str, marker: str) -> Path:
    code = root / name
    code.mkdir()
    (code / "fxhelper.py").write_text(f"MARKER = {marker!r}\n")
    (code / "handler.py").write_text("import fxhelper\n\ndef handler(event, context):\n    return fxhelper.MARKER\n")
    return code


def test_two_functions_with_the_same_module_names_keep_their_own(tmp_path):
    first = _function(tmp_path, "first", "one")
    second = _function(tmp_path, "second", "two")
    _, handle_first = load_handler(first, "handler.handler")
    _, handle_second = load_handler(second, "handler.handler")
    assert handle_first({}, None) == "one"
    assert handle_second({}, None) == "two"
    assert "fxhelper" not in sys.modules
    assert str(first) not in sys.path
    assert str(second) not in sys.path


def test_a_module_of_the_same_name_imported_before_is_restored(tmp_path, monkeypatch):
    outside = types.ModuleType("fxhelper")
    monkeypatch.setitem(sys.modules, "fxhelper", outside)
    code = _function(tmp_path, "fn", "inside")
    _, handle = load_handler(code, "handler.handler")
    assert handle({}, None) == "inside"
    assert sys.modules["fxhelper"] is outside


def test_the_tests_loader_shares_siblings_inside_one_window(tmp_path):
    code = _function(tmp_path, "fn", "shared")
    loaded = load_function_from(code, "handler", prefix="t")
    assert loaded.handler.fxhelper is loaded.fxhelper
    assert loaded.handler.__name__ == "t_fn_handler"
    assert "fxhelper" not in sys.modules
    assert "t_fn_handler" not in sys.modules


def test_inside_the_window_the_folder_comes_first(tmp_path):
    code = _function(tmp_path, "fn", "x")
    with function_imports(code):
        assert sys.path[0] == str(code.resolve())
    assert str(code.resolve()) not in sys.path


@pytest.mark.parametrize(
    ("handler", "source", "error_type"),
    [
        ("nohandler", "", "Runtime.MalformedHandlerName"),
        ("missing.handler", "", "Runtime.ImportModuleError"),
        ("handler.handler", "import not_a_module_anywhere\n", "Runtime.ImportModuleError"),
        ("handler.handler", "def handler(:\n", "Runtime.UserCodeSyntaxError"),
        ("handler.handler", "raise KeyError('boom')\n", "KeyError"),
        ("handler.other", "def handler(e, c):\n    return 1\n", "Runtime.HandlerNotFound"),
    ],
)
def test_init_failures_are_typed_as_lambda_reports_them(tmp_path, handler, source, error_type):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "handler.py").write_text(source)
    with pytest.raises(HandlerInitError) as raised:
        load_handler(code, handler)
    assert raised.value.error_type == error_type
    assert "handler" not in sys.modules


def test_not_isolated_keeps_the_folder_on_sys_path_as_lambda_does(tmp_path, monkeypatch):
    code = _function(tmp_path, "fn", "kept")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    module, handle = load_handler(code, "handler.handler", isolated=False)
    assert handle({}, None) == "kept"
    assert sys.path[0] == str(code.resolve())
    assert sys.modules["handler"] is module
