"""Sample file server for UC1: documents behind the access point, their NTFS ACLs on a fake ONTAP.

``generate(s3, access_point_arn, objects=N, seed=S)`` writes N small documents through the access
point (the volume ``vol_legal``, junction path ``/legal``) and returns a ``SampleSet`` whose
``ontap`` is the matching ``OntapDataset``: one SVM, two volumes, CIFS shares and a security
descriptor for every file, in the shapes ONTAP returns them. ``local_services(session, samples)``
serves that dataset on a loopback HTTPS fake ONTAP (``local.emulators.ontap``), stores the
read-only user's credentials in (emulated) Secrets Manager and yields the template parameters
that point the stack at them.

The first files are the audit's test cases, each finding rule with a positive and a negative case
(``CASES``; ``expected_findings`` lists exactly what the analysis must report); the rest are
ordinary documents with the ACL a well-run share has (administrators full control, the legal team
modify, everything inherited). Keys include spaces, ``&``, ``#`` and non-ASCII letters, so the
ONTAP path must be URL-encoded correctly for every file to be found.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local.emulators.ontap import FakeOntap, OntapDataset, OntapFault

SVM_UUID = "6f1b3c2e-5d4a-11ef-9b8e-005056bb7e3a"
SVM_NAME = "svm-legal"
VOLUME_NAME = "vol_legal"
JUNCTION_PATH = "/legal"
USERNAME = "fsxn-audit-ro"
PASSWORD = "local-only-password"  # noqa: S105 (the fake server's, on loopback)
SECRET_NAME = "local/fsxn-audit-ro"  # noqa: S105 (a name, not a secret)

ADMINS = "BUILTIN\\Administrators"
LEGAL_TEAM = "CORP\\Legal-Team"
EVERYONE = "Everyone"
AUTH_USERS = "NT AUTHORITY\\Authenticated Users"
DOMAIN_USERS = "CORP\\Domain Users"
ORPHAN_SID = "S-1-5-21-3623811015-3361044348-30300820-1013"
ORPHAN_OWNER_SID = "S-1-5-21-3623811015-3361044348-30300820-1107"
DOMAIN_ADMINS = "CORP\\Domain Admins"
# A resolved group whose name carries the SID it had in a migrated domain: not a bare SID.
MIGRATED_GROUP = "CORP\\S-1-5-21-1004336348-1177238915-682003330-1105 (migrated)"
INHERITED_FLAGS = "0x8014"  # self-relative, DACL and SACL present
PROTECTED_FLAGS = "0x9014"  # ... and SE_DACL_PROTECTED (0x1000): inheritance disabled

_FULL = {
    "append_data": True,
    "delete": True,
    "delete_child": True,
    "execute_file": True,
    "full_control": True,
    "read_attr": True,
    "read_data": True,
    "read_ea": True,
    "read_perm": True,
    "synchronize": True,
    "write_attr": True,
    "write_data": True,
    "write_ea": True,
    "write_owner": True,
    "write_perm": True,
}
_MODIFY = {**_FULL, "full_control": False, "delete_child": False, "write_owner": False, "write_perm": False}
_READ = {k: k in {"read_data", "read_attr", "read_ea", "read_perm", "execute_file", "synchronize"} for k in _FULL}
_ADVANCED = {"full_control": _FULL, "modify": _MODIFY, "read_and_execute": _READ, "read": _READ}


def ace(user: str, rights: str, *, access: str = "access_allow", inherited: bool = True) -> dict[str, Any]:
    """One ACE as ONTAP returns it (rights + advanced_rights, apply_to, inherited)."""
    return {
        "user": user,
        "access": access,
        "rights": rights,
        "advanced_rights": dict(_ADVANCED.get(rights, _READ)),
        "apply_to": {"files": True, "sub_folders": True, "this_folder": True},
        "inherited": inherited,
    }


def advanced_ace(user: str, *rights: str, inherited: bool = False) -> dict[str, Any]:
    """An ACE of advanced rights only: ONTAP then returns ``advanced_rights`` and no ``rights``."""
    return {
        "user": user,
        "access": "access_allow",
        "advanced_rights": {k: k in rights for k in _FULL},
        "apply_to": {"files": True, "sub_folders": True, "this_folder": True},
        "inherited": inherited,
    }


def descriptor(
    acls: list[dict[str, Any]], *, owner: str = ADMINS, group: str = "CORP\\Domain Admins", protected: bool = False
) -> dict[str, Any]:
    return {
        "owner": owner,
        "group": group,
        "control_flags": PROTECTED_FLAGS if protected else INHERITED_FLAGS,
        "effective_style": "ntfs",
        "acls": acls,
    }


def _baseline(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [ace(ADMINS, "full_control"), ace(LEGAL_TEAM, "modify"), *extra]


@dataclass(frozen=True)
class Case:
    key: str
    descriptor: dict[str, Any]
    # (rule id, principal) pairs the analysis must report for this file; empty for a negative case.
    findings: tuple[tuple[str, str], ...] = ()
    why: str = ""
    # For a negative case: the rules it is built to come close to without triggering.
    negative_for: tuple[str, ...] = ()


# Default template parameters the cases are written against (see the template's defaults).
SENSITIVE_PATH_PATTERN = "^(hr|finance|litigation)/"
SYSTEM = "NT AUTHORITY\\SYSTEM"
ALLOWED_OWNERS = (ADMINS, SYSTEM)

CASES: tuple[Case, ...] = (
    Case(
        "contracts/2026/msa acme.docx",
        descriptor(_baseline(ace(EVERYONE, "full_control", inherited=False))),
        (("BROAD_GROUP_FULL_OR_CHANGE", EVERYONE),),
        "Everyone has full control",
    ),
    Case(
        "contracts/2026/nda-globex.pdf",
        descriptor(_baseline(ace(AUTH_USERS, "modify"))),
        (("BROAD_GROUP_FULL_OR_CHANGE", AUTH_USERS),),
        "Authenticated Users can change",
    ),
    Case(
        "hr/payroll/salaries 2026.xlsx",
        descriptor(_baseline(ace(DOMAIN_USERS, "modify", inherited=False)), protected=True),
        (("BROAD_GROUP_FULL_OR_CHANGE", DOMAIN_USERS), ("INHERITANCE_DISABLED", "-")),
        "Domain Users can change a payroll file whose inheritance is disabled",
    ),
    Case(
        "contracts/2026/shared drafts/term sheet.docx",
        descriptor(_baseline(advanced_ace(DOMAIN_USERS, "read_data", "write_data", "append_data", "delete"))),
        (("BROAD_GROUP_FULL_OR_CHANGE", DOMAIN_USERS),),
        "Domain Users can change through advanced rights (write and delete, no standard rights)",
    ),
    Case(
        "public/drop box/upload form.txt",
        descriptor(_baseline(advanced_ace(EVERYONE, "write_data", "append_data"))),
        (),
        "negative: Everyone may write into the drop box but not delete: no change right",
        negative_for=("BROAD_GROUP_FULL_OR_CHANGE",),
    ),
    Case(
        "public/handbook.pdf",
        descriptor(_baseline(ace(EVERYONE, "read_and_execute"))),
        (),
        "negative: Everyone may only read",
        negative_for=("BROAD_GROUP_FULL_OR_CHANGE",),
    ),
    Case(
        "public/locked #1.txt",
        descriptor(_baseline(ace(EVERYONE, "full_control", access="access_deny", inherited=False))),
        (),
        "negative: a deny entry for Everyone grants nothing",
        negative_for=("BROAD_GROUP_FULL_OR_CHANGE",),
    ),
    Case(
        "finance/q4/forecast & budget.xlsx",
        descriptor(_baseline(), protected=True),
        (("INHERITANCE_DISABLED", "-"),),
        "inheritance disabled under a sensitive path",
    ),
    Case(
        "projects/alpha/notes.txt",
        descriptor(_baseline(), protected=True),
        (),
        "negative: inheritance disabled outside the sensitive paths",
        negative_for=("INHERITANCE_DISABLED",),
    ),
    Case(
        "litigation/case-001/brief.docx",
        descriptor(_baseline()),
        (),
        "negative: a sensitive path that inherits its ACL",
        negative_for=("INHERITANCE_DISABLED",),
    ),
    Case(
        "litigation/case-001/evidence.msg",
        descriptor(_baseline(ace(ORPHAN_SID, "read"))),
        (("UNRESOLVED_SID", ORPHAN_SID),),
        "an ACE for an account that no longer resolves",
    ),
    Case(
        "contracts/2026/draft m&a.docx",
        descriptor(_baseline(), owner="CORP\\jdoe"),
        (("OWNER_NOT_ALLOWED", "CORP\\jdoe"),),
        "owned by an individual, not an allowed owner",
    ),
    Case(
        "contracts/archive/orphan owner.docx",
        descriptor(_baseline(), owner=ORPHAN_OWNER_SID),
        (("UNRESOLVED_SID", ORPHAN_OWNER_SID), ("OWNER_NOT_ALLOWED", ORPHAN_OWNER_SID)),
        "the owner's SID no longer resolves (and is not an allowed owner)",
    ),
    Case(
        "contracts/2026/Übersicht Verträge.docx",
        descriptor(_baseline(), owner=SYSTEM),
        (),
        "negative: owned by an allowed owner (not the first in the list), baseline ACL",
        negative_for=("OWNER_NOT_ALLOWED",),
    ),
    Case(
        "hr/policies/leave policy.pdf",
        descriptor(_baseline(ace(AUTH_USERS, "read"), ace(DOMAIN_USERS, "read_and_execute"))),
        (),
        "negative: Authenticated Users and Domain Users may only read a sensitive, inheriting file",
        negative_for=("BROAD_GROUP_FULL_OR_CHANGE", "INHERITANCE_DISABLED"),
    ),
    Case(
        "contracts/templates/engagement letter.dotx",
        descriptor(_baseline(ace(DOMAIN_ADMINS, "full_control"), ace(MIGRATED_GROUP, "modify"))),
        (),
        "negative: Domain Admins is not Domain Users, and a name that contains a SID is a resolved name",
        negative_for=("BROAD_GROUP_FULL_OR_CHANGE", "UNRESOLVED_SID"),
    ),
    Case(
        "litigation/case-002/exhibit a.pdf",
        descriptor(_baseline(), owner="nt authority\\system"),
        (),
        "negative: owner names are compared case-insensitively, and every account resolves",
        negative_for=("OWNER_NOT_ALLOWED", "UNRESOLVED_SID"),
    ),
)


@dataclass(frozen=True)
class SampleSet:
    keys: tuple[str, ...]
    valid: tuple[str, ...]
    corrupt: tuple[str, ...]
    ignored: tuple[str, ...]
    ontap: OntapDataset
    # (rule id, source key, principal), sorted: exactly what the analysis must find.
    expected_findings: tuple[tuple[str, str, str], ...] = ()
    cases: tuple[Case, ...] = field(default_factory=tuple)


def ontap_path(key: str) -> str:
    return f"{JUNCTION_PATH}/{key}"


def _dataset() -> OntapDataset:
    svm = {"uuid": SVM_UUID, "name": SVM_NAME}
    return OntapDataset(
        svms=[svm, {"uuid": "0c8f9a44-5d4a-11ef-9b8e-005056bb7e3a", "name": "svm-engineering"}],
        volumes=[
            {
                "uuid": "8e3c1a90-5d4b-11ef-9b8e-005056bb7e3a",
                "name": VOLUME_NAME,
                "svm": svm,
                "nas": {"path": JUNCTION_PATH, "security_style": "ntfs"},
            },
            {
                "uuid": "9a1d2b33-5d4b-11ef-9b8e-005056bb7e3a",
                "name": "vol_home",
                "svm": svm,
                "nas": {"path": "/home", "security_style": "ntfs"},
            },
        ],
        shares=[
            {"svm": svm, "name": "legal$", "path": JUNCTION_PATH, "volume": {"name": VOLUME_NAME}},
            {"svm": svm, "name": "contracts", "path": f"{JUNCTION_PATH}/contracts", "volume": {"name": VOLUME_NAME}},
            {"svm": svm, "name": "hr", "path": f"{JUNCTION_PATH}/hr", "volume": {"name": VOLUME_NAME}},
            {"svm": svm, "name": "home", "path": "/home", "volume": {"name": "vol_home"}},
        ],
    )


def generate(s3: Any, access_point_arn: str, *, objects: int, seed: int = 0) -> SampleSet:
    """Write ``objects`` documents: the audit cases first, then ordinary files with a baseline ACL."""
    if objects < 0:
        raise ValueError("objects must be >= 0")
    rng = random.Random(seed)
    dataset = _dataset()
    cases = CASES[:objects]
    keys: list[str] = []
    for case in cases:
        keys.append(case.key)
        dataset.files[(SVM_UUID, ontap_path(case.key))] = json.loads(json.dumps(case.descriptor))
    folders = ("contracts/clients", "projects/beta", "correspondence/2026", "templates")
    for i in range(objects - len(cases)):
        key = f"{folders[i % len(folders)]}/document {i:04d}.{('docx', 'pdf', 'xlsx', 'txt')[rng.randrange(4)]}"
        keys.append(key)
        dataset.files[(SVM_UUID, ontap_path(key))] = descriptor(_baseline())
    for key in keys:
        s3.put_object(Bucket=access_point_arn, Key=key, Body=f"sample document {key}\n".encode())
    # A folder marker, as SMB clients leave them: listing skips keys ending in "/".
    s3.put_object(Bucket=access_point_arn, Key="contracts/", Body=b"")
    expected = sorted((rule, case.key, principal) for case in cases for rule, principal in case.findings)
    return SampleSet(
        keys=tuple(keys),
        valid=tuple(keys),
        corrupt=(),
        ignored=("contracts/",),
        ontap=dataset,
        expected_findings=tuple(expected),
        cases=cases,
    )


@dataclass
class LocalServices:
    """What ``local_services`` started: template parameters for the stack, the server, its counters."""

    parameters: dict[str, str]
    server: FakeOntap

    def emulated(self) -> dict[str, int]:
        return {"ontap REST (fake, HTTPS on loopback)": len(self.server.requests)}


# The template parameters local_services yields, with values of the same shape: the runner
# validates a run's parameters with these before the fake ONTAP starts (local.runner.run).
SERVICE_PARAMETER_EXAMPLES: dict[str, str] = {
    "OntapManagementEndpoint": "127.0.0.1:8443",
    "OntapSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:local/fsxn-audit-ro-AbCdEf",
    "OntapCaBundlePath": "/tmp/fake-ontap/ca/ca.pem",  # noqa: S108 (an example path, never opened)
    "OntapSvmName": SVM_NAME,
    "OntapVolumeName": VOLUME_NAME,
    # Required by the template; the local runner does not emulate VPC networking.
    "VpcId": "vpc-0a1b2c3d4e5f60718",
    "SubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0b1c2d3e4f5a60719",
    "SecurityGroupIds": "sg-0a1b2c3d4e5f60718",
}


def stack_parameter_values() -> dict[str, str]:
    """Values of the shape ``local_services`` provides, without starting anything (for validating
    a run's parameters before it starts)."""
    return dict(SERVICE_PARAMETER_EXAMPLES)


@contextmanager
def local_services(
    session: Any,
    samples: SampleSet,
    *,
    ontap_faults: list[OntapFault] | None = None,
    ontap_deleted: tuple[str, ...] = (),
    ontap_password: str = PASSWORD,
    ontap_wrong_ca: bool = False,
    ontap_port: int = 0,
) -> Iterator[LocalServices]:
    """Serve ``samples.ontap`` on a fake ONTAP and yield the parameters that point the stack at it.

    Test knobs: ``ontap_faults`` (429 storms, 5xx, delays), ``ontap_deleted`` (keys whose file is
    gone when its ACL is read: 404), ``ontap_password`` (the secret's password; another value than
    the server's makes every request 401), ``ontap_wrong_ca`` (the stack trusts another CA) and
    ``ontap_port`` (a fixed port instead of a free one: the sam tier's events name 127.0.0.1:8443).
    """
    with FakeOntap(samples.ontap, username=USERNAME, password=PASSWORD, faults=ontap_faults, port=ontap_port) as server:
        for key in ontap_deleted:
            server.delete(SVM_UUID, ontap_path(key))
        secret_arn = session.client("secretsmanager").create_secret(
            Name=SECRET_NAME, SecretString=json.dumps({"username": USERNAME, "password": ontap_password})
        )["ARN"]
        yield LocalServices(
            parameters={
                **SERVICE_PARAMETER_EXAMPLES,
                "OntapManagementEndpoint": server.host,
                "OntapSecretArn": secret_arn,
                "OntapCaBundlePath": server.other_ca_file if ontap_wrong_ca else server.ca_file,
            },
            server=server,
        )


def sam_service_options(parameters: dict[str, Any]) -> dict[str, Any]:
    """``local_services`` options for the sam and CRIU tiers, from the stack's parameters (the
    ``local_invoke`` overrides in samconfig.sample.toml): the fake ONTAP listens where
    ``OntapManagementEndpoint`` says (the events name it: they are passed as written)."""
    endpoint = str(parameters.get("OntapManagementEndpoint", ""))
    host, _, port = endpoint.rpartition(":")
    if host != "127.0.0.1" or not port.isdigit():
        raise ValueError(f"OntapManagementEndpoint {endpoint!r}: the fake ONTAP serves 127.0.0.1:<port> only")
    return {"ontap_port": int(port)}
