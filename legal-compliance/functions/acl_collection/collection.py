"""NTFS ACLs of one Distributed Map batch of files, read through the ONTAP REST API.

Every item (an access point object, ``ObjectInfo``) is named to ONTAP by its SVM namespace path,
the volume's junction path + the object key, and its security descriptor is read with
``GET /api/protocols/file-security/permissions/{svm.uuid}/{path}``. Each item yields exactly one
record through the shared failure boundary (``shared.batch.item_record``): ``SUCCEEDED`` with the
owner, group, control flags, whether inheritance is disabled and the ACEs, or ``FAILED`` with a
typed error (``NotFoundError``: the file was deleted after the listing; ``AccessDeniedError``;
``InvalidFileError``: a descriptor ONTAP returned in a shape we cannot read).

The batch's records are written as one JSONL object, ``results/execution_id=<id>/batch-<digest>.jsonl``,
the digest taken over the batch's keys, so a rerun of the same batch replaces its own object and
nothing else. Transient errors (429 storms, 5xx, timeouts, the time budget — also when the
first file of the invocation used it all up) are raised before anything is written, so the Map's
Retry reruns the batch. Errors that are not about one file
(the credentials refused, a certificate that does not verify, configuration) abort the batch too:
recording them against every file would hide the cause.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.aws import mapped_errors
from shared.batch import FAILED, SUCCEEDED, Batch, item_record
from shared.errors import (
    AuthenticationError,
    CertificateVerificationError,
    ConfigurationError,
    InvalidFileError,
    InvalidInputError,
)
from shared.ontap import OntapSettings, file_path

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.ontap import OntapClient
    from shared.retry import Deadline
    from shared.s3ap import ObjectInfo

RESULTS_PREFIX = "results"
# Windows security descriptor control flag: the DACL does not inherit from the parent.
SE_DACL_PROTECTED = 0x1000
MAX_ACES = 1000  # an ACL longer than this is recorded truncated (ace_count keeps the real size)
# Not about one file: the batch fails instead of recording them per file.
SYSTEMIC_ERRORS = (AuthenticationError, CertificateVerificationError, ConfigurationError)


@dataclass(frozen=True)
class Scope:
    """What the Map's BatchInput adds: where the files live in ONTAP."""

    svm_uuid: str
    volume_path: str
    ontap: OntapSettings


def parse_scope(batch: Batch) -> Scope:
    svm_uuid = batch.batch_input.get("svm_uuid")
    volume_path = batch.batch_input.get("volume_path")
    if not isinstance(svm_uuid, str) or not 1 <= len(svm_uuid) <= 64:
        raise InvalidInputError("BatchInput.svm_uuid must be the SVM UUID", field="BatchInput.svm_uuid")
    if not isinstance(volume_path, str) or not volume_path.startswith("/"):
        raise InvalidInputError(
            "BatchInput.volume_path must be the volume's junction path", field="BatchInput.volume_path"
        )
    return Scope(svm_uuid, volume_path, OntapSettings.parse(batch.batch_input.get("ontap"), field="BatchInput.ontap"))


def batch_key(execution_id: str, keys: list[str]) -> str:
    digest = hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()[:32]
    return f"{RESULTS_PREFIX}/execution_id={execution_id}/batch-{digest}.jsonl"


def parse_control_flags(value: Any) -> int:
    """ONTAP returns control_flags as hexadecimal text ("0x8014"); decimal text is accepted too."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return int(text, 16) if text.startswith("0x") else int(text, 10)
        except ValueError:
            pass
    raise InvalidFileError(f"control_flags {value!r} is not a number")


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidFileError(f"{name} must be a boolean, got {type(value).__name__}")
    return value


def parse_ace(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidFileError(f"an ACE must be an object, got {type(raw).__name__}")
    user, access = raw.get("user"), raw.get("access")
    if not isinstance(user, str) or not user or not isinstance(access, str) or not access:
        raise InvalidFileError("an ACE needs the string fields user and access")
    rights = raw.get("rights")
    if rights is not None and not isinstance(rights, str):
        raise InvalidFileError("ACE rights must be a string")
    advanced = raw.get("advanced_rights") or {}
    if not isinstance(advanced, Mapping):
        raise InvalidFileError("ACE advanced_rights must be an object")
    full_control = _flag(advanced.get("full_control"), "advanced_rights.full_control") or rights == "full_control"
    write_data = _flag(advanced.get("write_data"), "advanced_rights.write_data")
    delete = _flag(advanced.get("delete"), "advanced_rights.delete")
    return {
        "user": user,
        "access": access,
        "rights": rights,
        "full_control": full_control,
        "write_data": write_data,
        # "Change" (Windows' Modify): the standard rights modify or full control, or an ACE of
        # advanced rights only (ONTAP then returns no ``rights``) that may both write and delete.
        "change": full_control or rights == "modify" or (write_data and delete),
        "inherited": _flag(raw.get("inherited"), "inherited"),
    }


def descriptor_fields(descriptor: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The record fields of one security descriptor (``InvalidFileError`` when it is unusable)."""
    acls = descriptor.get("acls")
    if acls is None:
        acls = []
    if not isinstance(acls, list):
        raise InvalidFileError(f"{path}: acls must be a list")
    owner, group = descriptor.get("owner"), descriptor.get("group")
    if owner is not None and not isinstance(owner, str):
        raise InvalidFileError(f"{path}: owner must be a string")
    if group is not None and not isinstance(group, str):
        raise InvalidFileError(f"{path}: group must be a string")
    flags = parse_control_flags(descriptor.get("control_flags"))
    aces = [parse_ace(a) for a in acls[:MAX_ACES]]
    return {
        "ontap_path": path,
        "owner": owner,
        "owner_group": group,
        "control_flags": f"0x{flags:04x}",
        "inheritance_disabled": bool(flags & SE_DACL_PROTECTED),
        "effective_style": descriptor.get("effective_style")
        if isinstance(descriptor.get("effective_style"), str)
        else None,
        "ace_count": len(acls),
        "aces": aces,
        "aces_truncated": len(acls) > MAX_ACES,
    }


@dataclass(frozen=True)
class CollectionResult:
    processed: int
    succeeded: int
    failed: int
    results_key: str

    def to_dict(self, execution_id: str) -> dict[str, Any]:
        return {
            "execution_id": execution_id,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "results_key": self.results_key,
        }


def collect(
    s3: S3Client,
    ontap: OntapClient,
    *,
    output_bucket: str,
    batch: Batch,
    scope: Scope,
    deadline: Deadline,
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
) -> CollectionResult:
    """One record per item, written as one JSONL object; see the module docstring."""
    systemic: list[BaseException] = []

    def work(item: ObjectInfo, facts: dict[str, Any]) -> Mapping[str, Any]:
        path = file_path(scope.volume_path, item.key)
        facts["ontap_path"] = path
        try:
            descriptor = ontap.file_permissions(scope.svm_uuid, path, deadline)
        except SYSTEMIC_ERRORS as e:
            systemic.append(e)
            raise
        return descriptor_fields(descriptor, path)

    lines: list[bytes] = []
    succeeded = failed = 0
    for item in batch.items:
        deadline.check(f"reading the ACL of {item.key}")
        # One ACL read is one small request: running out of time on it, even as the first file of
        # the invocation, means ONTAP was slow or throttling (a 429 storm, replies past the read
        # timeout), which a later invocation can get through. So it is never the file's permanent
        # BudgetExceededError: the DeadlineExceededError goes to the Map's Retry.
        record, body = item_record(item, work, whole_budget=False)
        if systemic:
            raise systemic[0]
        lines.append(body.rstrip(b"\n"))
        if record["status"] == SUCCEEDED:
            succeeded += 1
        elif record["status"] == FAILED:
            failed += 1
        if on_record is not None:
            on_record(record)
    key = batch_key(batch.execution_id, [item.key for item in batch.items])
    with mapped_errors("PutObject"):
        s3.put_object(Bucket=output_bucket, Key=key, Body=b"\n".join(lines) + b"\n", ContentType="application/x-ndjson")
    return CollectionResult(len(lines), succeeded, failed, key)
