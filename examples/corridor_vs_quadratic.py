"""A corridor against a quadratic: where GD, RK4 and momentum follow the gradient flow.

On a cone L = a‖θ − c‖ + b (a corridor: H∇L = 0 off the apex) the gradient flow is a
straight line, and GD, RK4 and heavy-ball momentum land on it exactly, whatever the
learning rate (Thm 3.1, A.2, Lemma A.1; momentum at its own speed). On a quadratic
(no corridor, Appendix C) the flow curves and the methods leave it, by (h²/2)H∇L per
GD step. Both landscapes have closed-form flows (`corridors.landscapes`), so the
distances below are exact up to round-off.

Writes `corridor_vs_quadratic_paths.png` (the paths over the level sets) and
`corridor_vs_quadratic_drift.png` (distance to the flow along the run) into `--out`
(default `examples/out/`).

Run: python examples/corridor_vs_quadratic.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: fewer steps)
"""

import argparse
import os
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

import corridors as cr
from corridors.landscapes import Cone, Quadratic

matplotlib.use("Agg")
import matplotlib.pyplot as plt

jax.config.update("jax_enable_x64", True)
SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"
BETA = 0.5


def matched_times(method, lr, n_steps):
    """Flow time after each step; momentum from rest moves Σ(1 − β^j)/(1 − β) faster."""
    k = np.arange(1, n_steps + 1)
    speed = (1 - BETA**k) / (1 - BETA) if method == "momentum" else np.ones(n_steps)
    return jnp.asarray(np.concatenate([[0.0], lr * np.cumsum(speed)]))


def run(method, landscape, params0, lr, n_steps):
    if method == "GD":
        path = cr.gd(landscape.loss, params0, lr, n_steps)
    elif method == "RK4":
        path = cr.runge_kutta(landscape.loss, params0, lr, n_steps, tableau="rk4")
    else:
        path = cr.momentum(landscape.loss, params0, lr, BETA, n_steps)
    ts = matched_times(method.lower(), lr, n_steps)
    flow = landscape.exact_flow(params0, ts)
    return np.asarray(path), np.asarray(flow), np.linalg.norm(path - flow, axis=-1)


def main(out: pathlib.Path) -> None:
    n_steps = 8 if SMALL else 15
    lr = 0.1
    problems = {
        "cone (corridor)": (
            Cone(center=jnp.array([-2.5, -1.5]), slope=1.0),  # apex off the plot
            jnp.array([2.5, 1.5]),
        ),
        "quadratic (no corridor)": (
            Quadratic(jnp.array([[2.0, -1.2], [-1.2, 1.0]])),
            jnp.array([0.5, 2.6]),
        ),
    }
    methods = ("GD", "RK4", "momentum")
    cone, cone_start = problems["cone (corridor)"]
    # The methods land on the flow until the step that would pass the apex: stop before.
    assert matched_times("momentum", lr, n_steps)[-1] < cone.apex_time(cone_start)
    results = {
        name: {m: run(m, land, p0, lr, n_steps) for m in methods}
        for name, (land, p0) in problems.items()
    }
    out.mkdir(parents=True, exist_ok=True)

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    colors = {"GD": "crimson", "RK4": "darkorange", "momentum": "purple"}
    for ax, (name, (landscape, params0)) in zip(axes, problems.items(), strict=True):
        grid = np.linspace(-1.0, 3.0, 200)
        X, Y = np.meshgrid(grid, grid)
        Z = jax.vmap(jax.vmap(landscape.loss))(jnp.stack([X, Y], axis=-1))
        levels = np.quantile(np.asarray(Z), np.linspace(0.01, 0.9, 15))
        ax.contour(X, Y, np.asarray(Z), levels=levels, colors="0.6", linewidths=0.7)
        horizon = float(matched_times("momentum", lr, n_steps)[-1])
        times = jnp.linspace(0.0, horizon, 400)
        dense = np.asarray(landscape.exact_flow(params0, times))
        ax.plot(dense[:, 0], dense[:, 1], "k-", lw=2.0, label="gradient flow (exact)")
        for method in methods:
            path = results[name][method][0]
            ax.plot(
                path[:, 0],
                path[:, 1],
                "o--",
                ms=3.5,
                lw=0.8,
                color=colors[method],
                label=f"{method}, h = {lr:g}",
            )
        ax.set_xlim(-1.0, 3.0)
        ax.set_ylim(-1.0, 3.0)
        ax.set_aspect("equal")
        ax.set_xlabel("θ₁ (parameter units)")
        ax.set_ylabel("θ₂ (parameter units)")
        ax.set_title(f"{name}: paths over the level sets")
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "corridor_vs_quadratic_paths.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, style in zip(problems, ("--", "-"), strict=True):
        for method in methods:
            distance = np.maximum(results[name][method][2][1:], 1e-17)
            ax.plot(
                np.arange(1, n_steps + 1),
                distance,
                style,
                marker="o",
                ms=3,
                color=colors[method],
                label=f"{name}: {method}",
            )
    ax.set_yscale("log")
    ax.set_ylim(1e-17, 10)
    ax.set_xlabel("step k")
    ax.set_ylabel("distance to the exact flow ‖θ_k − φ(t_k)‖ (parameter units)")
    ax.set_title(
        f"Drift from the gradient flow, h = {lr:g} (momentum β = {BETA:g}, matched time)"
    )
    ax.legend(fontsize=8, ncol=2, loc="center right")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "corridor_vs_quadratic_drift.png", dpi=120)
    plt.close(fig)

    print(f"{'landscape':<26}{'method':<10}{'max drift':>12}")
    for name in problems:
        for method in methods:
            print(f"{name:<26}{method:<10}{results[name][method][2].max():>12.2e}")
    print(f"figures in {out}/")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
