"""`corridors.sweep_drift` over 16 learning rates vs 16 separate `measure_drift` calls.

Fixed-horizon drift of gradient descent from the gradient flow of a small tanh MLP
(4 → 16 → 16 → 1, 369 parameters, float64, mean squared error on 32 random points): for
each of 16 learning rates in [0.01, 0.1] (log-spaced), n = floor(horizon / lr) GD steps
with horizon 2 and the distance ‖θ_n − φ(n·lr)‖. The baseline loops over the learning
rates calling `measure_drift(loss, params0, lr, n)` and keeps `.distance[-1]`; it
compiles once per distinct n, so every one of its 16 programs is compiled before
timing. `sweep_drift` shares one flow solve and vmaps the GD runs (all at once, or in
batches of 4 learning rates sorted by step count: `batch_size=4`).

Both give the same distances (max abs difference ≤ 1e-9 is asserted). Target:
sweep_drift ≥ 8× faster warm; compile times are reported apart.

Run: `python benchmarks/sweep.py [--quick]`.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import corridors as cr  # noqa: E402
from _harness import (  # noqa: E402
    console,
    parse_args,
    print_header,
    print_table,
    seconds,
    verdict,
)
from _timing import clock, warm_times  # noqa: E402

TARGET = 8.0
TOLERANCE = 1e-9
SIZES = (4, 16, 16, 1)
HORIZON = 2.0
LRS = np.geomspace(0.01, 0.1, 16)


def mlp_loss(params, x, y):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return 0.5 * jnp.mean((x @ w + b - y) ** 2)


def problem(key):
    keys = jax.random.split(key, len(SIZES) + 1)
    params = [
        (jax.random.normal(k, (n_in, n_out)) / jnp.sqrt(n_in), jnp.zeros(n_out))
        for k, n_in, n_out in zip(keys, SIZES[:-1], SIZES[1:], strict=False)
    ]
    x = jax.random.normal(keys[-2], (32, SIZES[0]))
    y = jnp.sin(x.sum(axis=1, keepdims=True))
    return params, (x, y)


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("corridors.sweep_drift vs a loop of measure_drift", args)
    params0, data = problem(jax.random.key(0))
    n_params = sum(leaf.size for leaf in jax.tree.leaves(params0))
    steps = [int(np.floor(HORIZON / lr)) for lr in LRS]

    def sweep():
        return cr.sweep_drift(mlp_loss, params0, LRS, HORIZON, data).distance

    def sweep_batched():
        return cr.sweep_drift(
            mlp_loss, params0, LRS, HORIZON, data, batch_size=4
        ).distance

    def loop():
        return jnp.stack(
            [
                cr.measure_drift(mlp_loss, params0, lr, n, data).distance[-1]
                for lr, n in zip(LRS, steps, strict=True)
            ]
        )

    # First calls: the loop compiles 16 programs, one per distinct n.
    first = {
        "sweep": clock(sweep),
        "batched": clock(sweep_batched),
        "loop": clock(loop),
    }
    warm = warm_times(
        {"loop": loop, "sweep": sweep, "batched": sweep_batched},
        repeats=args.repeats,
        number=1,
    )

    result = cr.sweep_drift(mlp_loss, params0, LRS, HORIZON, data)
    assert np.array_equal(np.asarray(result.n_steps), steps), "step counts differ"
    difference = float(np.max(np.abs(np.asarray(result) - np.asarray(loop()))))
    speedup = warm["loop"] / warm["sweep"]
    batched_speedup = warm["loop"] / warm["batched"]

    rows = [
        [
            "16 × cr.measure_drift (baseline)",
            seconds(warm["loop"]),
            "1.00",
            seconds(first["loop"] - warm["loop"]),
            "",
        ],
        [
            "cr.sweep_drift",
            seconds(warm["sweep"]),
            f"{speedup:.2f}",
            seconds(first["sweep"] - warm["sweep"]),
            verdict(speedup, TARGET, at_most=False),
        ],
        [
            "cr.sweep_drift(batch_size=4)",
            seconds(warm["batched"]),
            f"{batched_speedup:.2f}",
            seconds(first["batched"] - warm["batched"]),
            verdict(batched_speedup, TARGET, at_most=False),
        ],
    ]
    print_table(
        f"GD drift at horizon {HORIZON:g}, 16 lrs in [{LRS[0]:g}, {LRS[-1]:g}], "
        f"{n_params:,}-parameter tanh MLP (float64)",
        ["method", "warm", "speed-up", "compile", "target"],
        rows,
    )
    console.print(
        f"GD steps per lr: {steps[0]} … {steps[-1]} ({sum(steps):,} in all). Distances "
        f"{float(np.min(result)):.2e} … {float(np.max(result)):.2e}; "
        f"max |sweep − loop| = {difference:.1e} (tolerance {TOLERANCE:g})."
    )
    print(
        f"sweep_drift speed-up over 16 measure_drift calls: {speedup:.2f}× "
        f"(batch_size=4: {batched_speedup:.2f}×; target ≥ {TARGET:g})"
    )
    assert difference <= TOLERANCE, (
        f"sweep_drift and measure_drift disagree by {difference:.2e} > {TOLERANCE:g}"
    )


if __name__ == "__main__":
    main()
