"""shared.config: values are validated once and every error names the variable."""

from __future__ import annotations

import pytest

from shared import config
from shared.errors import ConfigurationError, PermanentError

pytestmark = pytest.mark.unit

AP_ARN = "arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn-eda-ap"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("X_STR", "X_INT", "X_BOOL", "X_LIST", "X_AP", "X_BUCKET"):
        monkeypatch.delenv(name, raising=False)


def _error(fn, *args, **kwargs) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        fn(*args, **kwargs)
    return info.value


class TestEnvStr:
    def test_returns_the_stripped_value(self, monkeypatch):
        monkeypatch.setenv("X_STR", "  bucket-a ")
        assert config.env_str("X_STR") == "bucket-a"

    @pytest.mark.parametrize("raw", [None, "", "   "])
    def test_missing_without_default_names_the_variable(self, monkeypatch, raw):
        if raw is not None:
            monkeypatch.setenv("X_STR", raw)
        err = _error(config.env_str, "X_STR")
        assert "X_STR" in err.message
        assert "required" in err.message
        assert err.details == {"variable": "X_STR"}
        assert isinstance(err, PermanentError)
        assert err.to_dict()["errorType"] == "ConfigurationError"

    @pytest.mark.parametrize("raw", [None, ""])
    def test_missing_or_empty_gives_default(self, monkeypatch, raw):
        # CloudFormation passes an optional parameter left at '' as an empty string.
        if raw is not None:
            monkeypatch.setenv("X_STR", raw)
        assert config.env_str("X_STR", "") == ""
        assert config.env_str("X_STR", "fallback", pattern=r"[a-z]+") == "fallback"

    def test_pattern_must_match_the_whole_value(self, monkeypatch):
        monkeypatch.setenv("X_STR", "abc1")
        assert config.env_str("X_STR", pattern=r"[a-z]+[0-9]") == "abc1"
        err = _error(config.env_str, "X_STR", pattern=r"[a-z]+")
        assert "X_STR='abc1'" in err.message
        assert "[a-z]+" in err.message

    def test_choices(self, monkeypatch):
        monkeypatch.setenv("X_STR", "serverless")
        assert config.env_str("X_STR", choices={"none", "serverless"}) == "serverless"
        monkeypatch.setenv("X_STR", "Serverless")
        err = _error(config.env_str, "X_STR", choices={"none", "serverless"})
        assert "X_STR" in err.message
        assert "one of none, serverless" in err.message


class TestEnvInt:
    @pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("42", 42), (" -7 ", -7), ("+3", 3)])
    def test_parses_decimal(self, monkeypatch, raw, expected):
        monkeypatch.setenv("X_INT", raw)
        assert config.env_int("X_INT") == expected

    @pytest.mark.parametrize("raw", ["1.5", "abc", "1_000", "0x10", "1e3", "١٢", "true"])
    def test_rejects_non_decimal(self, monkeypatch, raw):
        monkeypatch.setenv("X_INT", raw)
        err = _error(config.env_int, "X_INT")
        assert "X_INT" in err.message
        assert "decimal integer" in err.message

    def test_bounds(self, monkeypatch):
        monkeypatch.setenv("X_INT", "10")
        assert config.env_int("X_INT", minimum=10, maximum=10) == 10
        assert "between 11 and 20" in _error(config.env_int, "X_INT", minimum=11, maximum=20).message
        assert ">= 11" in _error(config.env_int, "X_INT", minimum=11).message
        assert "<= 9" in _error(config.env_int, "X_INT", maximum=9).message

    def test_default_and_missing(self):
        assert config.env_int("X_INT", 5, minimum=1) == 5
        err = _error(config.env_int, "X_INT", minimum=1)
        assert "X_INT" in err.message
        assert ">= 1" in err.message


class TestEnvBool:
    @pytest.mark.parametrize("raw", ["true", "TRUE", "True", "1", "yes", "on"])
    def test_true(self, monkeypatch, raw):
        monkeypatch.setenv("X_BOOL", raw)
        assert config.env_bool("X_BOOL") is True

    @pytest.mark.parametrize("raw", ["false", "FALSE", "0", "no", "off"])
    def test_false(self, monkeypatch, raw):
        monkeypatch.setenv("X_BOOL", raw)
        assert config.env_bool("X_BOOL", True) is False

    @pytest.mark.parametrize("raw", ["maybe", "2", "t", "enabled"])
    def test_rejects_other_words(self, monkeypatch, raw):
        monkeypatch.setenv("X_BOOL", raw)
        err = _error(config.env_bool, "X_BOOL", False)
        assert f"X_BOOL={raw!r}" in err.message

    def test_default_and_missing(self):
        assert config.env_bool("X_BOOL", False) is False
        assert "X_BOOL" in _error(config.env_bool, "X_BOOL").message


class TestEnvList:
    def test_splits_and_strips(self, monkeypatch):
        monkeypatch.setenv("X_LIST", " .gds, .oas ,,.GDS2 ")
        assert config.env_list("X_LIST") == (".gds", ".oas", ".GDS2")

    def test_default(self):
        assert config.env_list("X_LIST", [".gds"]) == (".gds",)
        assert config.env_list("X_LIST", ()) == ()

    def test_missing_and_itemless(self, monkeypatch):
        assert "X_LIST" in _error(config.env_list, "X_LIST").message
        monkeypatch.setenv("X_LIST", " , ,")
        err = _error(config.env_list, "X_LIST", (".gds",))
        assert "at least one item" in err.message

    def test_custom_separator(self, monkeypatch):
        monkeypatch.setenv("X_LIST", "a;b")
        assert config.env_list("X_LIST", separator=";") == ("a", "b")


class TestEnvAccessPoint:
    def test_parses_arn(self, monkeypatch):
        monkeypatch.setenv("X_AP", AP_ARN)
        ap = config.env_access_point("X_AP")
        assert ap.arn == AP_ARN
        assert ap.name == "fsxn-eda-ap"

    def test_alias_is_refused_with_the_variable_named(self, monkeypatch):
        monkeypatch.setenv("X_AP", "fsxn-eda-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-ext-s3alias")
        err = _error(config.env_access_point, "X_AP")
        assert err.message.startswith("environment variable X_AP is invalid")
        assert "alias" in err.message
        assert err.__cause__ is not None

    def test_malformed(self, monkeypatch):
        monkeypatch.setenv("X_AP", "arn:aws:s3:::my-bucket")
        assert "X_AP" in _error(config.env_access_point, "X_AP").message

    def test_missing(self):
        err = _error(config.env_access_point, "X_AP")
        assert "X_AP" in err.message
        assert "access point ARN" in err.message


class TestEnvBucket:
    @pytest.mark.parametrize("name", ["abc", "pipeline-output-bucket", "a.b-c.1", "1" * 63, "my.bucket.2026"])
    def test_valid_names(self, monkeypatch, name):
        monkeypatch.setenv("X_BUCKET", f" {name} ")
        assert config.env_bucket("X_BUCKET") == name

    @pytest.mark.parametrize(
        "name",
        ["ab", "a" * 64, "Upper", "under_score", "-start", "end-", ".start", "end.", "two..dots", "192.168.5.4",
         "xn--punycode", "sthree-x", "x-s3alias", "x--ol-s3", "x.mrap", "x--x-s3", "s3://bucket", "a/b"],
    )
    def test_names_s3_refuses_name_the_variable(self, monkeypatch, name):
        monkeypatch.setenv("X_BUCKET", name)
        error = _error(config.env_bucket, "X_BUCKET")
        assert error.details["variable"] == "X_BUCKET"
        assert repr(name) in error.message

    def test_missing_with_and_without_default(self, monkeypatch):
        monkeypatch.setenv("X_BUCKET", "  ")
        assert config.env_bucket("X_BUCKET", "fallback-bucket") == "fallback-bucket"
        assert "required" in _error(config.env_bucket, "X_BUCKET").message
