"""The fake CLI harness itself: recording, reply matching, sequences, file capture, PATH."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.fake_cli import FakeCli, Reply

pytestmark = pytest.mark.scripts


def _sh(fake_cli: FakeCli, script: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return fake_cli.run(["bash", "-c", script], **kwargs)


def test_fixture_puts_fakes_first_on_path(fake_cli: FakeCli) -> None:
    assert shutil.which("aws") == str(fake_cli.bin_dir / "aws")
    assert shutil.which("sam") == str(fake_cli.bin_dir / "sam")


def test_records_argv_without_program_name_and_stdin(fake_cli: FakeCli) -> None:
    result = _sh(fake_cli, "aws s3 ls 's3://b/with space' && echo hello | sam local invoke Fn", input="")
    assert result.returncode == 0, result.stderr
    assert fake_cli.calls("aws") == [["s3", "ls", "s3://b/with space"]]
    assert fake_cli.calls("sam") == [["local", "invoke", "Fn"]]
    assert fake_cli.calls() == [["s3", "ls", "s3://b/with space"], ["local", "invoke", "Fn"]]
    assert fake_cli.invocations("sam")[0].stdin == "hello\n"
    # The log is JSON lines with the documented keys.
    first = json.loads((fake_cli.root / "calls.jsonl").read_text().splitlines()[0])
    assert set(first) == {"program", "argv", "stdin", "cwd", "env", "files"}


def test_default_reply_is_empty_success_and_can_be_changed(fake_cli: FakeCli) -> None:
    assert _sh(fake_cli, "aws sts get-caller-identity").returncode == 0
    fake_cli.default("aws", stderr="unexpected call", exit_code=99)
    result = _sh(fake_cli, "aws sts get-caller-identity")
    assert (result.returncode, result.stdout, result.stderr) == (99, "", "unexpected call")


def test_prefix_reply_with_json_stdout(fake_cli: FakeCli) -> None:
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stdout={"Stacks": [{"StackName": "s"}]})
    result = _sh(fake_cli, "aws cloudformation describe-stacks --stack-name s")
    assert json.loads(result.stdout) == {"Stacks": [{"StackName": "s"}]}
    # A longer argv than the prefix still matches; a different command does not.
    assert _sh(fake_cli, "aws cloudformation list-stacks").stdout == ""


def test_pattern_reply_and_exit_code(fake_cli: FakeCli) -> None:
    fake_cli.reply("aws", pattern=r"--stack-name missing\b", stderr="does not exist", exit_code=254)
    result = _sh(fake_cli, "aws --region eu-west-1 cloudformation describe-stacks --stack-name missing")
    assert (result.returncode, result.stderr) == (254, "does not exist")
    assert _sh(fake_cli, "aws cloudformation describe-stacks --stack-name other").returncode == 0


def test_prefix_and_pattern_must_both_match(fake_cli: FakeCli) -> None:
    fake_cli.reply("aws", ["s3api", "put-object"], pattern="--key a.zip", stdout="both")
    assert _sh(fake_cli, "aws s3api put-object --key a.zip").stdout == "both"
    assert _sh(fake_cli, "aws s3api put-object --key b.zip").stdout == ""
    assert _sh(fake_cli, "aws s3api get-object --key a.zip").stdout == ""


def test_latest_matching_rule_wins(fake_cli: FakeCli) -> None:
    fake_cli.reply("aws", ["cloudformation"], stdout="general")
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stdout="specific")
    assert _sh(fake_cli, "aws cloudformation describe-stacks").stdout == "specific"
    assert _sh(fake_cli, "aws cloudformation deploy").stdout == "general"


def test_sequence_replies_in_order_then_repeats_last(fake_cli: FakeCli) -> None:
    fake_cli.reply(
        "aws",
        ["cloudformation", "describe-stacks"],
        sequence=[Reply(stderr="throttled", exit_code=255), Reply(stdout="one"), Reply(stdout="two")],
    )
    outputs = [
        (r.returncode, r.stdout)
        for r in (_sh(fake_cli, "aws cloudformation describe-stacks") for _ in range(4))
    ]
    assert outputs == [(255, ""), (0, "one"), (0, "two"), (0, "two")]
    fake_cli.clear()
    assert fake_cli.calls() == []
    assert _sh(fake_cli, "aws cloudformation describe-stacks").returncode == 255


def test_programs_are_independent(fake_cli: FakeCli) -> None:
    fake_cli.reply("sam", ["build"], stdout="built")
    assert _sh(fake_cli, "aws build").stdout == ""
    assert _sh(fake_cli, "sam build").stdout == "built"


def test_captures_file_arguments_at_call_time(fake_cli: FakeCli, tmp_path: Path) -> None:
    body = tmp_path / "rules.zip"
    body.write_bytes(b"archive-bytes")
    script = (
        f"aws s3api put-object --bucket b --key k --body {body} && "
        f"aws cloudformation deploy --template-file file://{body} && rm {body}"
    )
    assert _sh(fake_cli, script).returncode == 0
    put, deploy = fake_cli.invocations("aws")
    assert put.option("--body") == str(body)
    assert put.captured(str(body)).read_bytes() == b"archive-bytes"
    assert deploy.captured(f"file://{body}").read_bytes() == b"archive-bytes"
    assert not body.exists()
    with pytest.raises(KeyError, match="named no existing file"):
        put.captured("k")


def test_option_reads_both_spellings_and_missing(fake_cli: FakeCli) -> None:
    _sh(fake_cli, "aws deploy --region=eu-west-1 --stack-name s")
    call = fake_cli.invocations("aws")[0]
    assert call.option("--region") == "eu-west-1"
    assert call.option("--stack-name") == "s"
    assert call.option("--missing") is None


def test_records_aws_environment_and_cwd(fake_cli: FakeCli, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "AWS_REGION": "ap-northeast-1", "UNRELATED": "x"}
    assert fake_cli.run(["aws", "sts", "get-caller-identity"], env=env, cwd=tmp_path).returncode == 0
    call = fake_cli.invocations("aws")[0]
    assert call.env == {"AWS_REGION": "ap-northeast-1"}
    assert call.cwd == str(tmp_path)


def test_concurrent_calls_are_all_recorded(fake_cli: FakeCli) -> None:
    result = _sh(fake_cli, 'for i in $(seq 1 8); do aws s3 ls "s3://b/$i" & done; wait')
    assert result.returncode == 0
    assert sorted(argv[2] for argv in fake_cli.calls("aws")) == sorted(f"s3://b/{i}" for i in range(1, 9))


def test_extra_programs_and_invalid_rules(fake_cli: FakeCli) -> None:
    fake_cli.install("jq-fake")
    fake_cli.reply("jq-fake", ["."], stdout="ok")
    assert _sh(fake_cli, "jq-fake .").stdout == "ok"
    with pytest.raises(ValueError, match="prefix, a pattern"):
        fake_cli.reply("aws")
    with pytest.raises(ValueError, match="at least one"):
        fake_cli.reply("aws", ["x"], sequence=[])
    with pytest.raises(ValueError, match="plain program name"):
        fake_cli.install("../escape")
