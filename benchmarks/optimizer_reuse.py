"""Repeat calls of `cr.measure_drift` with a user's optimizer: warm time per call / the
built-in "gd".

A researcher measures drift every N steps with the SAME optax object (or step
function); each call brings new parameters. The call must reuse its compiled program,
as the built-in methods do: the ratio is then near 1. (When each call wrapped the
optimizer in a fresh closure, every call recompiled: seconds instead of milliseconds.)
Tanh MLP 8→16→1 on 64 points, 20 steps, float64. Compile time (first call − warm) is
reported apart.

Run: `python benchmarks/optimizer_reuse.py [--quick]`.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import corridors as cr  # noqa: E402
from _harness import parse_args, print_header, print_table, seconds  # noqa: E402
from _timing import clock, warm_times  # noqa: E402


def loss(params, x, y):
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return 0.5 * jnp.mean((hidden @ params["w2"] - y) ** 2)


def sgd_step(params, state, grads):
    return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), state


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("measure_drift with the same optimizer object, called again", args)
    keys = jax.random.split(jax.random.key(0), 4)
    x = jax.random.normal(keys[0], (64, 8))
    y = jnp.sin(x[:, :1])
    params = {
        "w1": jax.random.normal(keys[1], (8, 16)) / 3,
        "b1": jnp.zeros(16),
        "w2": jax.random.normal(keys[2], (16, 1)) / 4,
    }
    methods = {
        '"gd" (baseline)': "gd",
        "optax.sgd(0.1, momentum=0.9)": optax.sgd(0.1, momentum=0.9),
        "optax.adam(0.01)": optax.adam(0.01),
        "step function": sgd_step,
    }
    calls, compile_times = {}, {}
    for name, method in methods.items():
        # New parameters on every call, as along training.
        shift = iter(range(1, 10**9))

        def call(method=method, shift=shift):
            start = jax.tree.map(lambda p: p * (1 + 1e-3 * next(shift)), params)
            return cr.measure_drift(
                loss, start, 0.1, 20, (x, y), method=method
            ).distance

        first = clock(call)
        calls[name] = call
        compile_times[name] = first - clock(call)
    warm = warm_times(calls, repeats=args.repeats, number=3)
    baseline = warm['"gd" (baseline)']
    rows = [
        [name, seconds(time), f"{time / baseline:.2f}", seconds(compile_times[name])]
        for name, time in warm.items()
    ]
    print_table("warm time per call", ["method", "per call", "÷ gd", "compile"], rows)


if __name__ == "__main__":
    main()
