"""shared.runtime.TtlCache: a value is loaded again exactly when it is absent, expired or cleared by a restore."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import runtime
from tests.support.lambda_context import ManualClock

pytestmark = pytest.mark.property

steps = st.lists(
    st.one_of(
        st.tuples(st.just("get"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("advance"), st.floats(0, 20, allow_nan=False)),
        st.tuples(st.just("restore"), st.none()),
    ),
    max_size=40,
)


@given(st.floats(0.5, 15, allow_nan=False), steps)
def test_loads_follow_a_model_of_expiry_and_restores(ttl: float, ops: list[tuple[str, object]]) -> None:
    clock = ManualClock()
    cache: runtime.TtlCache[str, int] = runtime.TtlCache(ttl, clock=clock)
    loads = 0
    expected_loads = 0
    expiry: dict[str, float] = {}  # the model: key -> time the cached value stops being valid
    values: dict[str, int] = {}

    def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    for op, arg in ops:
        if op == "get":
            key = str(arg)
            if key not in expiry or expiry[key] <= clock.now:
                expected_loads += 1
                expiry[key] = clock.now + ttl
                values[key] = expected_loads
            assert cache.get(key, load) == values[key]
        elif op == "advance":
            clock.advance(float(arg))  # type: ignore[arg-type]
        else:
            runtime.run_after_restore_hooks()
            expiry.clear()
        assert loads == expected_loads
