"""scripts/deploy-hooks.sh against a fake ``aws``: call order, dry run, archive contents, errors."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.fake_cli import Call, FakeCli, Reply

pytestmark = pytest.mark.scripts

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "deploy-hooks.sh"
RULE_FILES = sorted((REPO / "guard-rules").glob("*.guard"))
BUCKET = "fsxn-guard-hook-rulesbucket-1a2b3c"
HOOK_ARN = "arn:aws:cloudformation:eu-west-1:123456789012:type/hook/FsxnPipelines-Governance-GuardHook"
ROLE_ARN = "arn:aws:iam::123456789012:role/fsxn-guard-hook-HookExecutionRole-1A2B3C"
NOT_FOUND = "An error occurred (404) when calling the HeadObject operation: Not Found\n"
NO_STACK = (
    "An error occurred (ValidationError) when calling the DescribeStacks operation: "
    "Stack with id fsxn-guard-hook does not exist\n"
)
MUTATING = {("cloudformation", "deploy"), ("s3api", "put-object")}
HOOK_ARN_QUERY = r"cloudformation describe-stacks .*GuardHookArn"


def _hook_only_guard_check(folder: Path) -> Path:
    """A GUARD_CHECK that runs the real guard-check.sh, limited to the hook template.

    The repository-wide template validation belongs to scripts/test.sh; limiting it here keeps
    these tests independent of templates other teams are editing.
    """
    wrapper = folder / "guard-check-hook-only.sh"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        f'exec "{REPO}/scripts/guard-check.sh" --template "{REPO}/guard-rules/hook-template.yaml" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture
def live_guard_check(tmp_path: Path) -> Path:
    """The real hook-only guard check, run by each deploy-hooks.sh run of the test."""
    return _hook_only_guard_check(tmp_path)


@pytest.fixture(scope="session")
def guard_check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GUARD_CHECK that replays a real run of the hook-only guard check: the same stdout, stderr
    and exit status, without running cfn-guard again.

    The check reads only the rule files, their tests and the hook template, none of which a test
    here changes, so every run in the session prints the same; running it for real in each test
    cost most of this module's time. It is run once, here, and must pass. The tests that take
    ``live_guard_check`` run it for real on every deploy-hooks.sh run, and
    test_invalid_rules_stop_before_any_aws_call runs a real check that fails.
    """
    folder = tmp_path_factory.mktemp("guard-check")
    real = subprocess.run([_hook_only_guard_check(folder)], capture_output=True, text=True, check=False, timeout=300)
    assert real.returncode == 0, real.stdout + real.stderr
    assert "guard-check: OK" in real.stdout, real.stdout
    (folder / "stdout").write_text(real.stdout)
    (folder / "stderr").write_text(real.stderr)
    replay = folder / "guard-check-replay.sh"
    replay.write_text(
        f'#!/usr/bin/env bash\ncat "{folder}/stdout"\ncat "{folder}/stderr" >&2\nexit {real.returncode}\n'
    )
    replay.chmod(0o755)
    return replay


@pytest.fixture
def aws_account(fake_cli: FakeCli) -> FakeCli:
    """A fake account without the hook stack: the first describe-stacks finds none, the stack then
    deploys, the archive is not uploaded yet, and the hook's role may read the pinned version."""
    fake_cli.default("aws", stderr="unexpected aws call", exit_code=99)
    fake_cli.reply("aws", pattern=r"^(--region \S+ )?sts get-caller-identity", stdout="123456789012\n")
    fake_cli.reply("aws", pattern=r"^(--region \S+ )?cloudformation deploy ", stdout="Successfully deployed\n")
    fake_cli.reply("aws", pattern=r"cloudformation describe-stacks .*RulesBucketName", stdout=f"{BUCKET}\n")
    fake_cli.reply(
        "aws",
        pattern=HOOK_ARN_QUERY,
        sequence=[Reply(stderr=NO_STACK, exit_code=254), Reply(stdout=f"{HOOK_ARN}\n")],
    )
    fake_cli.reply("aws", pattern=r"cloudformation describe-stacks .*HookExecutionRoleArn", stdout=f"{ROLE_ARN}\n")
    fake_cli.reply("aws", pattern=r"s3api head-object ", stderr=NOT_FOUND, exit_code=254)
    fake_cli.reply("aws", pattern=r"s3api head-object .*--version-id", stdout="v2-3HL4kqtJlcpXroDTDmJ\n")
    fake_cli.reply("aws", pattern=r"s3api put-object ", stdout="v2-3HL4kqtJlcpXroDTDmJ\n")
    fake_cli.reply("aws", pattern=r"iam simulate-principal-policy ", stdout="\n")
    return fake_cli


@pytest.fixture
def existing_hook(aws_account: FakeCli) -> FakeCli:
    """The same account after a first deployment: the stack has an enabled hook on version v1."""
    aws_account.reply("aws", pattern=HOOK_ARN_QUERY, stdout=f"{HOOK_ARN}\n")
    aws_account.reply("aws", pattern=r"s3api head-object ", stdout="v1-old\t" + "0" * 64 + "\n")
    aws_account.reply("aws", pattern=r"s3api head-object .*--version-id", stdout="v2-3HL4kqtJlcpXroDTDmJ\n")
    return aws_account


def run(fake_cli: FakeCli, guard_check: Path, tmp_path: Path, *args: str):
    env = {"GUARD_CHECK": str(guard_check), "DEPLOY_HOOKS_BUILD_DIR": str(tmp_path / "build")}
    return fake_cli.run([SCRIPT, *args], env=fake_cli.env() | env)


def operation(call: Call) -> tuple[str, str]:
    """(service, operation) of an aws call, skipping global options such as --region."""
    words = [arg for arg in call.argv if not arg.startswith("--")]
    region = call.option("--region")
    if region is not None and words and words[0] == region:
        words = words[1:]
    return words[0], words[1]


def parameter_overrides(call: Call) -> dict[str, str]:
    start = call.argv.index("--parameter-overrides") + 1
    values: dict[str, str] = {}
    for arg in call.argv[start:]:
        if arg.startswith("--"):
            break
        key, _, value = arg.partition("=")
        values[key] = value
    return values


def test_deploys_in_order_disabled_upload_then_enabled_on_the_new_version(aws_account, live_guard_check, tmp_path):
    result = run(aws_account, live_guard_check, tmp_path, "--region", "eu-west-1", "--stack-name", "guard-hook")

    assert result.returncode == 0, result.stdout + result.stderr
    calls = aws_account.invocations("aws")
    assert [operation(call) for call in calls] == [
        ("sts", "get-caller-identity"),
        ("cloudformation", "describe-stacks"),
        ("cloudformation", "deploy"),
        ("cloudformation", "describe-stacks"),
        ("s3api", "head-object"),
        ("s3api", "put-object"),
        ("cloudformation", "deploy"),
        ("cloudformation", "describe-stacks"),
        ("s3api", "head-object"),
        ("cloudformation", "describe-stacks"),
        ("iam", "simulate-principal-policy"),
        ("iam", "simulate-principal-policy"),
    ]
    assert all(call.option("--region") == "eu-west-1" for call in calls)
    disable, enable = (call for call in calls if operation(call) == ("cloudformation", "deploy"))
    for deploy in (disable, enable):
        assert deploy.option("--stack-name") == "guard-hook"
        assert deploy.option("--template-file") == str(REPO / "guard-rules" / "hook-template.yaml")
        assert deploy.option("--capabilities") == "CAPABILITY_IAM"
        assert "--no-fail-on-empty-changeset" in deploy.argv
    assert parameter_overrides(disable) == {
        "HookStatus": "DISABLED",
        "FailureMode": "WARN",
        "Alias": "FsxnPipelines::Governance::GuardHook",
        "RulesObjectKey": "guard-rules/rules.tar.gz",
    }
    assert parameter_overrides(enable) == parameter_overrides(disable) | {
        "HookStatus": "ENABLED",
        "RulesObjectVersionId": "v2-3HL4kqtJlcpXroDTDmJ",
    }
    put = next(call for call in calls if operation(call) == ("s3api", "put-object"))
    assert (put.option("--bucket"), put.option("--key")) == (BUCKET, "guard-rules/rules.tar.gz")
    assert HOOK_ARN in result.stdout


def test_uploaded_archive_holds_exactly_the_rule_files(aws_account, guard_check, tmp_path):
    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 0, result.stdout + result.stderr
    put = next(call for call in aws_account.invocations("aws") if operation(call) == ("s3api", "put-object"))
    body = put.option("--body")
    assert body is not None
    assert body.endswith(".tar.gz")
    archive = put.captured(body).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members = tar.getmembers()
        assert sorted(member.name for member in members) == [path.name for path in RULE_FILES]
        assert all(member.isfile() for member in members)
        for path in RULE_FILES:
            extracted = tar.extractfile(path.name)
            assert extracted is not None
            assert extracted.read() == path.read_bytes()
    assert put.option("--metadata") == f"sha256={hashlib.sha256(archive).hexdigest()}"


def test_rerun_with_unchanged_rules_reuses_the_uploaded_version(aws_account, guard_check, tmp_path):
    first = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")
    assert first.returncode == 0, first.stdout + first.stderr
    uploaded = next(c for c in aws_account.invocations("aws") if operation(c) == ("s3api", "put-object"))
    sha256 = uploaded.option("--metadata").removeprefix("sha256=")
    aws_account.clear()
    aws_account.reply("aws", pattern=r"s3api head-object ", stdout=f"v1-current\t{sha256}\n")

    second = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert second.returncode == 0, second.stdout + second.stderr
    calls = aws_account.invocations("aws")
    assert ("s3api", "put-object") not in [operation(call) for call in calls]
    enable = [call for call in calls if operation(call) == ("cloudformation", "deploy")][-1]
    assert parameter_overrides(enable)["RulesObjectVersionId"] == "v1-current"
    assert parameter_overrides(enable)["HookStatus"] == "ENABLED"


def test_changed_rules_upload_a_new_version(aws_account, guard_check, tmp_path):
    aws_account.reply("aws", pattern=r"s3api head-object ", stdout="v1-old\t" + "0" * 64 + "\n")

    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 0, result.stdout + result.stderr
    enable = [c for c in aws_account.invocations("aws") if operation(c) == ("cloudformation", "deploy")][-1]
    assert parameter_overrides(enable)["RulesObjectVersionId"] == "v2-3HL4kqtJlcpXroDTDmJ"


@pytest.mark.parametrize("stack_exists", [True, False])
def test_dry_run_makes_no_mutating_call(aws_account, guard_check, tmp_path, stack_exists):
    if not stack_exists:
        aws_account.reply(
            "aws",
            pattern=r"cloudformation describe-stacks",
            stderr="An error occurred (ValidationError) when calling the DescribeStacks operation: "
            "Stack with id fsxn-guard-hook does not exist\n",
            exit_code=254,
        )

    result = run(aws_account, guard_check, tmp_path, "--dry-run", "--failure-mode", "FAIL")

    assert result.returncode == 0, result.stdout + result.stderr
    operations = [operation(call) for call in aws_account.invocations("aws")]
    assert not MUTATING & set(operations), operations
    would_run = [line for line in result.stdout.splitlines() if "[dry-run] would run: aws" in line]
    assert [line.split("would run: aws ")[1].split()[:2] for line in would_run] == [
        ["cloudformation", "deploy"],
        ["s3api", "put-object"],
        ["cloudformation", "deploy"],
    ]
    assert "HookStatus=DISABLED" in would_run[0]
    assert "FailureMode=FAIL" in would_run[0]
    assert "HookStatus=ENABLED" in would_run[2]
    assert (BUCKET in would_run[1]) is stack_exists


def test_failure_mode_fail_only_when_given(aws_account, guard_check, tmp_path):
    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1", "--failure-mode", "FAIL")

    assert result.returncode == 0, result.stdout + result.stderr
    deploys = [c for c in aws_account.invocations("aws") if operation(c) == ("cloudformation", "deploy")]
    assert [parameter_overrides(c)["FailureMode"] for c in deploys] == ["FAIL", "FAIL"]


def test_invalid_rules_stop_before_any_aws_call(aws_account, tmp_path):
    bad_template = tmp_path / "bad-template.yaml"
    bad_template.write_text("Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n")
    failing_check = tmp_path / "guard-check-bad.sh"
    failing_check.write_text(f'#!/usr/bin/env bash\nexec "{REPO}/scripts/guard-check.sh" --template "{bad_template}"\n')
    failing_check.chmod(0o755)

    result = run(aws_account, failing_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 1
    assert "S3_BUCKET_ENCRYPTION_CONFIGURED" in result.stdout
    assert "nothing was deployed" in result.stderr
    assert aws_account.calls("aws") == []


def test_failed_upload_does_not_enable_the_hook(aws_account, guard_check, tmp_path):
    aws_account.reply("aws", pattern=r"s3api put-object ", stderr="AccessDenied\n", exit_code=1)

    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode != 0
    deploys = [c for c in aws_account.invocations("aws") if operation(c) == ("cloudformation", "deploy")]
    assert [parameter_overrides(c)["HookStatus"] for c in deploys] == ["DISABLED"]


def test_unversioned_upload_does_not_enable_the_hook(aws_account, guard_check, tmp_path):
    aws_account.reply("aws", pattern=r"s3api put-object ", stdout="None\n")

    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 1
    assert "no VersionId" in result.stderr
    deploys = [c for c in aws_account.invocations("aws") if operation(c) == ("cloudformation", "deploy")]
    assert len(deploys) == 1


def test_head_object_errors_other_than_not_found_stop_the_run(aws_account, guard_check, tmp_path):
    aws_account.reply(
        "aws",
        pattern=r"s3api head-object ",
        stderr="An error occurred (403) when calling the HeadObject operation: Forbidden\n",
        exit_code=254,
    )

    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 1
    assert "Forbidden" in result.stderr
    assert ("s3api", "put-object") not in [operation(c) for c in aws_account.invocations("aws")]


def test_failed_stack_deploy_stops_the_run(aws_account, guard_check, tmp_path):
    aws_account.reply(
        "aws",
        pattern=r"cloudformation deploy ",
        sequence=[Reply(stderr="Failed to create/update the stack\n", exit_code=255)],
    )

    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode != 0
    operations = [operation(c) for c in aws_account.invocations("aws")]
    assert operations == [
        ("sts", "get-caller-identity"),
        ("cloudformation", "describe-stacks"),
        ("cloudformation", "deploy"),
    ]


def hook_statuses(fake: FakeCli) -> list[str]:
    deploys = [c for c in fake.invocations("aws") if operation(c) == ("cloudformation", "deploy")]
    return [parameter_overrides(c)["HookStatus"] for c in deploys]


def test_rerun_swaps_the_rules_version_with_the_hook_enabled(existing_hook, guard_check, tmp_path):
    result = run(existing_hook, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 0, result.stdout + result.stderr
    assert hook_statuses(existing_hook) == ["ENABLED"]
    deploy = next(c for c in existing_hook.invocations("aws") if operation(c) == ("cloudformation", "deploy"))
    assert parameter_overrides(deploy)["RulesObjectVersionId"] == "v2-3HL4kqtJlcpXroDTDmJ"
    assert "readable by its role" in result.stdout


@pytest.mark.parametrize(
    ("failing", "reply"),
    [
        (r"s3api put-object ", Reply(stderr="AccessDenied\n", exit_code=1)),
        (r"cloudformation describe-stacks .*RulesBucketName", Reply(stderr="Throttling\n", exit_code=254)),
        (r"cloudformation deploy ", Reply(stderr="Failed to update the stack\n", exit_code=255)),
        (r"iam simulate-principal-policy ", Reply(stdout="s3:ListBucket\n")),
    ],
    ids=["upload", "bucket-output", "enable-deploy", "verification"],
)
def test_rerun_never_disables_the_hook_even_when_a_later_step_fails(
    existing_hook, guard_check, tmp_path, failing, reply
):
    existing_hook.reply("aws", pattern=failing, sequence=[reply])

    result = run(existing_hook, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode != 0
    assert "DISABLED" not in hook_statuses(existing_hook)
    assert all(status == "ENABLED" for status in hook_statuses(existing_hook))


def test_dry_run_of_a_rerun_never_disables_the_hook(existing_hook, guard_check, tmp_path):
    result = run(existing_hook, guard_check, tmp_path, "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "HookStatus=DISABLED" not in result.stdout
    would_run = [line for line in result.stdout.splitlines() if "[dry-run] would run: aws" in line]
    assert [line.split("would run: aws ")[1].split()[:2] for line in would_run] == [
        ["s3api", "put-object"],
        ["cloudformation", "deploy"],
    ]


def test_a_role_that_cannot_list_the_bucket_fails_the_run(aws_account, guard_check, tmp_path):
    aws_account.reply(
        "aws", pattern=r"iam simulate-principal-policy .*s3:ListBucket", stdout="s3:ListBucket\n"
    )

    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 1
    assert "is not allowed: s3:ListBucket" in result.stderr
    assert "done:" not in result.stdout
    simulations = [c for c in aws_account.invocations("aws") if operation(c) == ("iam", "simulate-principal-policy")]
    assert {c.option("--policy-source-arn") for c in simulations} == {ROLE_ARN}
    assert {c.option("--resource-arns") for c in simulations} == {
        f"arn:aws:s3:::{BUCKET}",
        f"arn:aws:s3:::{BUCKET}/guard-rules/rules.tar.gz",
    }


def test_an_unreadable_pinned_version_fails_the_run(aws_account, guard_check, tmp_path):
    aws_account.reply(
        "aws",
        pattern=r"s3api head-object .*--version-id",
        stderr="An error occurred (403) when calling the HeadObject operation: Forbidden\n",
        exit_code=254,
    )

    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 1
    assert "is not readable" in result.stderr
    head = [c for c in aws_account.invocations("aws") if operation(c) == ("s3api", "head-object")][-1]
    assert head.option("--version-id") == "v2-3HL4kqtJlcpXroDTDmJ"


def test_describe_errors_other_than_a_missing_stack_stop_before_any_deploy(aws_account, guard_check, tmp_path):
    aws_account.reply("aws", pattern=HOOK_ARN_QUERY, stderr="AccessDenied\n", exit_code=254)

    result = run(aws_account, guard_check, tmp_path, "--region", "eu-west-1")

    assert result.returncode == 1
    assert hook_statuses(aws_account) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--failure-mode"], "--failure-mode needs a value"),
        (["--failure-mode", "warn"], "must be WARN or FAIL"),
        (["--failure-mode", "--dry-run"], "--failure-mode needs a value"),
        (["--region"], "--region needs a value"),
        (["--region", "Ireland"], "is not an AWS Region name"),
        (["--stack-name", ""], "--stack-name needs a value"),
        (["--stack-name", "1-stack"], "is not a valid stack name"),
        (["--alias"], "--alias needs a value"),
        (["--alias", "AWS::Guard::Hook"], "must not start with AWS"),
        (["--alias", "aws2::Guard::Hook"], "must not start with AWS"),
        (["--alias", "Guard::Hook"], "Part::Part::Part"),
        (["--alias", "Org::Guard-Rules::Hook"], "Part::Part::Part"),
        (["--bogus"], "unknown option '--bogus'"),
        (["--dry-run", "extra"], "unknown option 'extra'"),
    ],
)
def test_option_errors_exit_2_with_a_clear_message(aws_account, guard_check, tmp_path, args, message):
    result = run(aws_account, guard_check, tmp_path, *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert aws_account.calls("aws") == []


def test_help_describes_the_options_and_calls_nothing(aws_account, guard_check, tmp_path):
    result = run(aws_account, guard_check, tmp_path, "--help")

    assert result.returncode == 0
    for option in ("--failure-mode", "--region", "--stack-name", "--alias", "--dry-run"):
        assert option in result.stdout
    assert aws_account.calls("aws") == []


def test_fake_aws_rejects_unexpected_calls(aws_account, guard_check, tmp_path):
    """The default reply fails, so a call the script should not make cannot pass silently."""
    result = aws_account.run(["aws", "cloudformation", "delete-stack", "--stack-name", "x"])
    assert (result.returncode, result.stderr) == (99, "unexpected aws call")
    assert json.loads(json.dumps(aws_account.calls("aws"))) == [["cloudformation", "delete-stack", "--stack-name", "x"]]


# --- --stack-set: the hook across accounts and Regions -------------------------------------------
HOOK_TEMPLATE = REPO / "guard-rules" / "hook-template.yaml"
STACKSET_TEMPLATE = REPO / "guard-rules" / "hook-stackset-template.yaml"
STACK_SET_ARGS = ("--stack-set", "--region", "eu-west-1", "--regions", "eu-west-1,us-east-1",
                  "--org-units", "ou-ab12-11111111,ou-ab12-22222222")


@pytest.fixture
def organization(aws_account: FakeCli) -> FakeCli:
    """The management account: an organization, no hook template uploaded, instances succeed."""
    aws_account.reply("aws", pattern=r"organizations describe-organization ", stdout="o-abcdef1234\n")
    aws_account.reply("aws", pattern=r"s3api head-object .*hook-template\.yaml", stderr=NOT_FOUND, exit_code=254)
    aws_account.reply("aws", pattern=r"s3api put-object .*hook-template\.yaml", stdout="t1-template\n")
    aws_account.reply(
        "aws", pattern=r"cloudformation describe-stacks .*StackSetName", stdout="guard-hook-stackset-guard-hook\n"
    )
    aws_account.reply("aws", pattern=r"cloudformation list-stack-instances ", stdout="\n")
    return aws_account


def deploys(fake: FakeCli) -> list[Call]:
    return [c for c in fake.invocations("aws") if operation(c) == ("cloudformation", "deploy")]


def test_stack_set_rolls_the_pinned_rules_out_to_the_organization(organization, live_guard_check, tmp_path):
    result = run(organization, live_guard_check, tmp_path, *STACK_SET_ARGS, "--stack-name", "guard-hook")

    assert result.returncode == 0, result.stdout + result.stderr
    central_create, central_enable, stack_set = deploys(organization)
    assert parameter_overrides(central_create)["OrganizationId"] == "o-abcdef1234"
    assert parameter_overrides(central_enable)["OrganizationId"] == "o-abcdef1234"
    assert stack_set.option("--stack-name") == "guard-hook-stackset"
    assert stack_set.option("--template-file") == str(STACKSET_TEMPLATE)
    assert parameter_overrides(stack_set) == {
        "HookTemplateUrl": f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/guard-rules/hook-template.yaml?versionId=t1-template",
        "OrganizationalUnitIds": "ou-ab12-11111111,ou-ab12-22222222",
        "Regions": "eu-west-1,us-east-1",
        "CallAs": "SELF",
        "FailureMode": "WARN",
        "Alias": "FsxnPipelines::Governance::GuardHook",
        "RulesBucketName": BUCKET,
        "RulesObjectKey": "guard-rules/rules.tar.gz",
        "RulesObjectVersionId": parameter_overrides(central_enable)["RulesObjectVersionId"],
    }
    template_put = [c for c in organization.invocations("aws") if operation(c) == ("s3api", "put-object")][-1]
    assert template_put.option("--key") == "guard-rules/hook-template.yaml"
    assert template_put.captured(template_put.option("--body")).read_bytes() == HOOK_TEMPLATE.read_bytes()
    listing = [c for c in organization.invocations("aws") if operation(c) == ("cloudformation", "list-stack-instances")]
    assert [c.option("--stack-set-name") for c in listing] == ["guard-hook-stackset-guard-hook"]
    assert "rolled out the hook" in result.stdout


def test_stack_set_rerun_is_idempotent_and_never_disables(organization, guard_check, tmp_path):
    sha = hashlib.sha256(HOOK_TEMPLATE.read_bytes()).hexdigest()
    organization.reply("aws", pattern=HOOK_ARN_QUERY, stdout=f"{HOOK_ARN}\n")
    organization.reply("aws", pattern=r"s3api head-object .*hook-template\.yaml", stdout=f"t1-template\t{sha}\n")

    result = run(organization, guard_check, tmp_path, *STACK_SET_ARGS)

    assert result.returncode == 0, result.stdout + result.stderr
    puts = [c.option("--key") for c in organization.invocations("aws") if operation(c) == ("s3api", "put-object")]
    assert "guard-rules/hook-template.yaml" not in puts
    assert [parameter_overrides(c).get("HookStatus") for c in deploys(organization)] == ["ENABLED", None]
    assert "versionId=t1-template" in parameter_overrides(deploys(organization)[-1])["HookTemplateUrl"]


def test_stack_set_instances_that_did_not_succeed_fail_the_run(organization, guard_check, tmp_path):
    organization.reply(
        "aws", pattern=r"cloudformation list-stack-instances ", stdout="111122223333\tus-east-1\tFAILED\n"
    )

    result = run(organization, guard_check, tmp_path, *STACK_SET_ARGS)

    assert result.returncode == 1
    assert "111122223333\tus-east-1\tFAILED" in result.stderr
    assert "done:" not in result.stdout


def test_stack_set_dry_run_makes_no_mutating_call(organization, guard_check, tmp_path):
    result = run(organization, guard_check, tmp_path, *STACK_SET_ARGS, "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert not MUTATING & {operation(c) for c in organization.invocations("aws")}
    would_run = [line.split("would run: aws ")[1] for line in result.stdout.splitlines() if "would run: aws" in line]
    assert [line.split()[2:4] for line in would_run] == [
        ["cloudformation", "deploy"],
        ["s3api", "put-object"],
        ["cloudformation", "deploy"],
        ["s3api", "put-object"],
        ["cloudformation", "deploy"],
    ]
    assert "hook-stackset-template.yaml" in would_run[-1]
    assert "Regions=eu-west-1,us-east-1" in would_run[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack-set", "--region", "eu-west-1", "--org-units", "ou-ab12-11111111"], "--stack-set needs --regions"),
        (["--stack-set", "--region", "eu-west-1", "--regions", "eu-west-1"], "--stack-set needs --org-units"),
        (["--stack-set", "--regions", "eu-west-1", "--org-units", "ou-ab12-11111111"], "needs --region"),
        ([*STACK_SET_ARGS[:-1], "ou-ab12-11111111,engineering"], "'engineering' is not an OU id"),
        ([*STACK_SET_ARGS[:4], "eu-west-1,Frankfurt", *STACK_SET_ARGS[5:]], "'Frankfurt' is not an AWS Region"),
        (["--regions", "eu-west-1"], "--regions and --org-units need --stack-set"),
        ([*STACK_SET_ARGS, "--call-as", "ADMIN"], "--call-as must be SELF or DELEGATED_ADMIN"),
    ],
)
def test_stack_set_option_errors_exit_2(organization, guard_check, tmp_path, args, message):
    result = run(organization, guard_check, tmp_path, *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert organization.calls("aws") == []
