"""Import + init cost of an ONTAP REST client in a fresh python3.13 process: NetApp's
``netapp-ontap`` library next to ``shared.ontap`` (the UC1 decision in legal-compliance/README.md).

netapp-ontap is not a project dependency; install it into a throw-away directory first::

    python3.13 -m pip download -d /tmp/nao/wheels netapp-ontap==9.19.1.0
    python3.13 -m pip install --no-index --find-links /tmp/nao/wheels --target /tmp/nao/site netapp-ontap==9.19.1.0
    .venv/bin/python -m benchmarks.ontap_client_bench --netapp-site /tmp/nao/site [--runs 15]

Each sample is a new interpreter (``-I``, no user site) that times, with ``time.perf_counter``,
what a handler's init would do: import the client and its resources and create one connection
object (no request is sent). "after boto3" first imports what every UC1 function imports anyway
(boto3, urllib3, certifi and the rest of ``shared``) and times only the client itself: for
netapp-ontap its modules, for ``shared.ontap`` the module and the TLS context it builds at init
(the CA bundle is read then; requests reads it at the first request). The site directory is
appended to ``sys.path``, so urllib3 and certifi resolve to the project's versions, as in one
Lambda layer. Prints min / median / max in ms. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NETAPP = """
from netapp_ontap import HostConnection, config
from netapp_ontap.resources import CifsShare, FileDirectorySecurity, Svm, Volume
config.CONNECTION = HostConnection("192.0.2.10", username="audit-ro", password="x", verify=True)
"""
OURS = """
from shared import ontap
class _Secrets:
    def get_secret_value(self, *, SecretId):
        raise AssertionError("no request is sent")
ontap.OntapClient("192.0.2.10", ontap.SecretCredentials(_Secrets(), "arn:example"))
"""
PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
if {site!r}:
    sys.path.append({site!r})
if {after_boto3!r}:
    # What every UC1 function imports anyway, whichever ONTAP client it uses.
    import boto3, botocore.session, urllib3, certifi
    import shared.aws, shared.config, shared.errors, shared.retry, shared.runtime
start = time.perf_counter()
exec(compile({body!r}, "<client>", "exec"))
elapsed = (time.perf_counter() - start) * 1000
print(json.dumps({{"ms": elapsed, "modules": len(sys.modules)}}))
"""


def sample(body: str, *, site: str, after_boto3: bool) -> dict[str, float]:
    code = PROBE.format(root=str(ROOT), site=site, after_boto3=after_boto3, body=body)
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--netapp-site", required=True, help="directory netapp-ontap was installed into (--target)")
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per scenario (default 15)")
    args = parser.parse_args(argv)
    site = str(Path(args.netapp_site).resolve())
    if not (Path(site) / "netapp_ontap").is_dir():
        parser.error(f"{site} has no netapp_ontap package; see --help")
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    print(f"python {sys.version.split()[0]}, {args.runs} fresh processes per row")
    print(f"{'client':<24} {'':<18} {'min ms':>8} {'median':>8} {'max':>8} {'modules':>8}")
    for name, body, extra_site in (("netapp-ontap 9.19.1.0", NETAPP, site), ("shared.ontap (urllib3)", OURS, "")):
        for after_boto3 in (False, True):
            runs = [sample(body, site=extra_site, after_boto3=after_boto3) for _ in range(args.runs)]
            ms = [r["ms"] for r in runs]
            label = "after boto3+shared" if after_boto3 else "alone"
            print(
                f"{name:<24} {label:<18} {min(ms):8.1f} {statistics.median(ms):8.1f} {max(ms):8.1f}"
                f" {int(runs[-1]['modules']):8d}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
