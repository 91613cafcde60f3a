"""Path geometry of a training run: RSI and EB along GD and SGD paths of a small MLP.

With x* the final iterate, RSI_k = ⟨g_k, x_k − x*⟩/‖x_k − x*‖² and
EB_k = ‖g_k‖/‖x_k − x*‖. If μ ≤ RSI_k and EB_k ≤ L along the path, the step μ/L²
contracts the distance to x* by √(1 − μ²/L²) per step; step by step, RSI_k/EB_k² is
the best step for the contraction bound. This script measures both along a full-batch
GD path and along a minibatch SGD path (with the minibatch gradients SGD used) and
compares the prescribed steps with the learning rate that was actually used.

Writes `path_geometry.png` into `--out` (default `examples/out/`).

Run: python examples/path_geometry.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: fast)
"""

import argparse
import itertools
import os
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

import corridors as cr

matplotlib.use("Agg")
import matplotlib.pyplot as plt

jax.config.update("jax_enable_x64", True)
SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"


def mlp(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss(params, x, y):
    return jnp.mean((mlp(params, x) - y) ** 2)


def main(out: pathlib.Path) -> None:
    n_steps, n, dim, batch_size, lr = (
        (200, 64, 3, 8, 0.1) if SMALL else (2000, 256, 6, 16, 0.1)
    )
    keys = jax.random.split(jax.random.key(1), 4)
    x = jax.random.normal(keys[0], (n, dim))
    y = jnp.sin(x @ jax.random.normal(keys[1], (dim, 1)))
    params = []
    for key, (fan_in, fan_out) in zip(
        jax.random.split(keys[2], 2), itertools.pairwise((dim, 32, 1)), strict=True
    ):
        w = jax.random.normal(key, (fan_in, fan_out)) / np.sqrt(fan_in)
        params.append({"w": w, "b": jnp.zeros(fan_out)})

    # Full-batch GD: gradients of the full loss at every iterate.
    gd_path = cr.gd(loss, params, lr, n_steps, (x, y))
    gd_grads = jax.vmap(jax.grad(loss), in_axes=(0, None, None))(gd_path, x, y)
    gd_rsi, gd_eb = cr.path_geometry(gd_path, gd_grads)
    # Minibatch SGD: the gradients SGD actually used (m batches, m + 1 iterates).
    index = jax.random.randint(keys[3], (n_steps, batch_size), 0, n)
    batches = (x[index], y[index])
    sgd_path = cr.sgd(loss, params, lr, batches)
    sgd_rsi, sgd_eb = cr.lr.measure_rsi_eb(loss, sgd_path, batches)

    gd_rsi, gd_eb = np.asarray(gd_rsi)[:-1], np.asarray(gd_eb)[:-1]  # last: x_k = x*
    sgd_rsi, sgd_eb = np.asarray(sgd_rsi), np.asarray(sgd_eb)
    steps = np.arange(n_steps)
    out.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, rsi, eb, color in (
        ("SGD", sgd_rsi, sgd_eb, "tab:orange"),
        ("GD", gd_rsi, gd_eb, "tab:blue"),
    ):
        left.plot(steps, eb, color=color, lw=1.0, label=f"EB_k ({name})")
        left.plot(steps, np.where(rsi > 0, rsi, np.nan), color=color, lw=1.0, ls="--",
                  label=f"RSI_k ({name}; gaps: RSI ≤ 0)")  # fmt: skip
        h = np.asarray(cr.lr.rsi_eb_schedule(jnp.asarray(rsi), jnp.asarray(eb)))
        right.plot(steps, np.where(h > 0, h, np.nan), color=color, lw=1.0,
                   label=f"RSI_k/EB_k² ({name})")  # fmt: skip
        positive = rsi[rsi > 0]
        if positive.size:
            mu, big_l = positive.min(), eb.max()
            right.axhline(mu / big_l**2, color=color, ls=":",
                          label=f"μ/L² ({name}, over steps with RSI > 0)")  # fmt: skip
    right.axhline(lr, color="k", ls="--", label=f"learning rate used ({lr:g})")
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_xlabel("step k")
        ax.legend(fontsize=7)
    left.set_ylabel("RSI_k, EB_k")
    left.set_title("Path geometry relative to the final iterate")
    right.set_ylabel("step size")
    right.set_title("Steps prescribed by path geometry vs the step used")
    fig.tight_layout()
    fig.savefig(out / "path_geometry.png", dpi=120)
    plt.close(fig)

    for name, rsi, eb in (("GD", gd_rsi, gd_eb), ("SGD", sgd_rsi, sgd_eb)):
        share = np.mean(rsi > 0)
        print(
            f"{name}: RSI > 0 at {share:.0%} of steps, median RSI {np.median(rsi):.3g}, "
            f"median EB {np.median(eb):.3g}, max EB {eb.max():.3g}"
        )
    print(f"figure in {out}/")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
