"""Chebyshev step sizes: locally unstable steps that still converge, if ordered well.

On a quadratic with Hessian spectrum in [m, M], the T Chebyshev steps h = 1/r (r the
roots of the degree-T Chebyshev polynomial on [m, M]) shrink the error by
1/T_T((M + m)/(M − m)) ≈ 2·exp(−2T/√κ): accelerated, with plain gradient steps. Many of
them exceed the one-step stability limit 2/M, so the loss goes *up* at those steps.
In exact arithmetic their order is irrelevant; in floating point the sorted orders
amplify round-off by up to ~κ^(T/2), while the fractal order of Agarwal, Goel & Zhang
keeps every partial product below κ.

Writes `chebyshev_fractal_steps.png` (the schedule and the loss along it) and
`chebyshev_fractal_error.png` (distance to the minimizer for the three orders, plain
GD and the bound) into `--out` (default `examples/out/`).

Run: python examples/chebyshev_fractal.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: fast)
"""

import argparse
import os
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

import corridors as cr

matplotlib.use("Agg")
import matplotlib.pyplot as plt

jax.config.update("jax_enable_x64", True)
SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"


def run(schedule, a, x0, n_steps):
    """GD through optax.sgd(schedule) on ½xᵀAx; returns (‖x_t‖, loss_t) for t = 0..n."""
    loss = lambda x: 0.5 * x @ a @ x  # noqa: E731
    optimizer = optax.sgd(schedule)

    def step(carry, _):
        x, state = carry
        updates, state = optimizer.update(jax.grad(loss)(x), state, x)
        x = optax.apply_updates(x, updates)
        return (x, state), (jnp.linalg.norm(x), loss(x))

    _, (norms, losses) = jax.lax.scan(step, (x0, optimizer.init(x0)), None, n_steps)
    norms = jnp.concatenate([jnp.linalg.norm(x0)[None], norms])
    losses = jnp.concatenate([loss(x0)[None], losses])
    return np.asarray(norms), np.asarray(losses)


def main(out: pathlib.Path) -> None:
    m, M = 0.01, 1.0
    T, cycles, dim = (64, 2, 20) if SMALL else (128, 3, 100)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    spectrum = np.concatenate([[m, M], rng.uniform(m, M, dim - 2)])
    a = jnp.asarray((q * spectrum) @ q.T)  # dense: round-off mixes eigendirections
    x0 = jnp.asarray(rng.normal(size=dim))
    n_steps = cycles * T

    results = {}
    for order in ("fractal", "increasing", "decreasing"):
        results[order] = run(
            cr.lr.chebyshev_schedule(m, M, T, order=order), a, x0, n_steps
        )
    results["GD, h = 1/M"] = run(optax.constant_schedule(1.0 / M), a, x0, n_steps)
    steps = cr.lr.chebyshev_steps(m, M, T, order="fractal")
    bound = cr.lr.chebyshev_error_bound(m, M, T)
    out.mkdir(parents=True, exist_ok=True)

    # 1. The fractal schedule and the (non-monotone) loss along it.
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    t = np.arange(1, T + 1)
    unstable = steps > 2 / M
    top.bar(t[~unstable], steps[~unstable] * M, color="tab:blue", label="h_t·M ≤ 2")
    top.bar(
        t[unstable], steps[unstable] * M, color="tab:red", label="h_t·M > 2 (unstable)"
    )
    top.axhline(2.0, color="k", ls="--", lw=1, label="stability limit h = 2/M")
    top.set_yscale("log")
    top.set_ylabel("step size h_t · M")
    top.set_title(
        f"Fractal Chebyshev schedule, κ = {M / m:g}, T = {T}: "
        f"{unstable.sum()} of {T} steps exceed 2/M"
    )
    top.legend(fontsize=8)
    norms, losses = results["fractal"]
    bottom.semilogy(np.arange(T + 1), losses[: T + 1], "o-", ms=3, color="tab:purple")
    up = np.flatnonzero(np.diff(losses[: T + 1]) > 0) + 1
    bottom.semilogy(up, losses[up], "rx", ms=6, label="loss went up at this step")
    bottom.set_xlabel("step t")
    bottom.set_ylabel("loss ½ xᵀAx")
    bottom.set_title("Loss along one cycle: locally unstable, globally convergent")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "chebyshev_fractal_steps.png", dpi=120)
    plt.close(fig)

    # 2. Distance to the minimizer: the order matters in floating point.
    fig, ax = plt.subplots(figsize=(8, 4.8))
    styles = {
        "fractal": ("tab:green", 2.0),
        "increasing": ("tab:orange", 1.2),
        "decreasing": ("tab:red", 1.2),
        "GD, h = 1/M": ("tab:gray", 1.2),
    }
    for name, (norms, _) in results.items():
        color, width = styles[name]
        label = name if name.startswith("GD") else f"Chebyshev, {name} order"
        ax.semilogy(norms / norms[0], color=color, lw=width, label=label)
    cycle_ends = np.arange(1, cycles + 1) * T
    ax.semilogy(cycle_ends, bound ** np.arange(1, cycles + 1), "k*", ms=10,
                label="bound 1/T_T((M+m)/(M−m)) per cycle")  # fmt: skip
    ax.set_xlabel("step t")
    ax.set_ylabel("‖x_t − x*‖ / ‖x_0 − x*‖")
    ax.set_title(f"Same steps, different orders (float64, κ = {M / m:g}, T = {T})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "chebyshev_fractal_error.png", dpi=120)
    plt.close(fig)

    print(f"κ = {M / m:g}, T = {T}: bound per cycle {bound:.3e}")
    for name, (norms, _) in results.items():
        print(f"{name:<14} error after {cycles} cycles: {norms[-1] / norms[0]:.3e}")
    print(f"figures in {out}/")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
