"""Wall-clock timing for the benchmarks: the minimum over repeats of warm calls.

Compile time is measured by the scripts as the first call (`clock`) minus a warm one.

Every timed callable takes no arguments and returns JAX arrays (or a pytree of them);
the clock stops only after `jax.block_until_ready` on its result, so asynchronous
dispatch never flatters a measurement.
"""

import time
from collections.abc import Callable
from typing import Any

import jax


def clock(fn: Callable[[], Any]) -> float:
    """Seconds for one call of `fn`, waiting for its result to be computed."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def calls_per_repeat(fn: Callable[[], Any], *, budget: float) -> int:
    """How many back-to-back calls of a warm `fn` fill about `budget` seconds (≥ 1).

    Fast functions (a jitted gradient takes well under a millisecond) are timed over
    a batch of calls so that the timer's resolution and Python jitter wash out.
    """
    single = max(clock(fn), 1e-7)
    return max(1, round(budget / single))


def warm_time(
    fn: Callable[[], Any], *, repeats: int, number: int | None = None, budget=0.2
) -> float:
    """Minimum over `repeats` of the mean seconds per call of an already-warm `fn`.

    `number` calls form one repeat (default: enough to fill `budget` seconds). Each
    call is waited for before the next starts: latency, not pipelined throughput
    (JAX's CPU runtime may overlap independent asynchronous calls).
    """
    number = calls_per_repeat(fn, budget=budget) if number is None else number
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            jax.block_until_ready(fn())
        best = min(best, (time.perf_counter() - start) / number)
    return best


def warm_times(
    fns: dict[str, Callable[[], Any]],
    *,
    repeats: int,
    number: int | None = None,
    budget=0.2,
) -> dict[str, float]:
    """`warm_time` of several warm callables, interleaved: each repeat times them all.

    A baseline and its competitor then see the same machine load in every repeat, so
    their ratio drifts less when the load changes during a run.
    """
    numbers = {
        name: calls_per_repeat(fn, budget=budget) if number is None else number
        for name, fn in fns.items()
    }
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            seconds = warm_time(fn, repeats=1, number=numbers[name])
            best[name] = min(best[name], seconds)
    return best
