"""The snapshot-safety properties, as checks that return what is wrong (empty = safe).

Used on the fixtures (good and known-bad) and on every real handler.
"""

from __future__ import annotations

from typing import Any

# Probe values the host draws after the after-restore hooks, and the keys a handler may return
# with the same meaning.
_UNIQUE_PROBES = ("random_bits", "temp_name", "uuid4")


def left_open_at_snapshot(init: dict[str, Any]) -> list[str]:
    """Module-scope clients that still hold connection pools when the snapshot is taken."""
    return [f"{c['name']} ({c['service']})" for c in init.get("clients_at_snapshot", []) if c["open_pools"]]


def unregistered_clients(init: dict[str, Any]) -> list[str]:
    """Module-scope clients not given to ``shared.runtime.register_client``."""
    return [f"{c['name']} ({c['service']})" for c in init["clients"] if not c["registered"]]


def pools_kept_after_restore(result: dict[str, Any]) -> list[str]:
    """Clients that enter the first invocation with a pool carried over from the snapshot."""
    return [f"{c['name']} ({c['service']})" for c in result["clients_after_restore"] if c["open_pools"]]


def ontap_kept_after_restore(result: dict[str, Any]) -> list[str]:
    """ONTAP clients (shared.ontap) that keep connections or cached credentials once the
    after-restore hooks ran again: a restored environment must connect and authenticate anew."""
    return [
        f"{c['name']} ({c['host']}): "
        + ", ".join(
            what
            for what, kept in (("pooled connections", c["open_pools"]), ("cached credentials", c["credentials_cached"]))
            if kept
        )
        for c in result.get("ontap_after_rehook", [])
        if c["open_pools"] or c["credentials_cached"]
    ]


def repeated_across_restores(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """Values that must be unique per execution environment but came out equal in two restores."""
    repeated = [f"host probe {key}" for key in _UNIQUE_PROBES if first[key] == second[key]]
    for a, b in zip(first["invocations"], second["invocations"], strict=True):
        if not (a["ok"] and b["ok"] and isinstance(a["result"], dict) and isinstance(b["result"], dict)):
            continue
        for key in _UNIQUE_PROBES:
            if key in a["result"] and a["result"][key] == b["result"].get(key):
                repeated.append(f"handler result {key} (invocation {a['index']})")
    return repeated


def varying_init_globals(first_init: dict[str, Any], second_init: dict[str, Any]) -> list[str]:
    """Module globals that two cold inits set differently: ids, timestamps or names made at init,
    which a snapshot would freeze and share between every restored environment."""
    a, b = first_init["globals"], second_init["globals"]
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


def failed_invocations(result: dict[str, Any]) -> list[str]:
    return [
        f"invocation {i['index']}: {i['error_type']}: {i['error']}\n{i.get('traceback', '')}"
        for i in [*result["invocations"], *result.get("rehooked_invocations", [])]
        if not i["ok"]
    ]
