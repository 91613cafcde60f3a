"""CLR against a sweep of fixed learning rates on a small network.

A student tanh MLP fits a teacher network (so the data can be interpolated and
f* = 0, CLR's assumption) with minibatch SGD. CLR (a Polyak step with f* = 0, capped
at 10 as in the paper's ImageNet runs) needs no learning rate; the fixed-lr runs do.

Writes `clr_vs_sgd_loss.png` (full-data loss vs step) and `clr_vs_sgd_lr.png`
(learning rate vs step) into `--out` (default `examples/out/`).

Run: python examples/clr_vs_sgd.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: a few seconds)
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
import itertools

import matplotlib.pyplot as plt

SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"


def init_mlp(key, sizes, *, scale=1.0):
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        w = scale * jax.random.normal(sub, (fan_in, fan_out)) / np.sqrt(fan_in)
        params.append({"w": w, "b": jnp.zeros(fan_out)})
    return params


def mlp(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss(params, x, y):
    return jnp.mean((mlp(params, x) - y) ** 2)


def make_data(key, n, dim):
    k_teacher, k_x = jax.random.split(key)
    teacher = init_mlp(k_teacher, (dim, 16, 1), scale=2.0)
    x = jax.random.normal(k_x, (n, dim))
    return x, mlp(teacher, x)


def train(optimizer, params, x, y, batches):
    """Minibatch training; returns (full-data loss before each step, lr per step)."""

    def step(carry, index):
        params, state = carry
        xb, yb = x[index], y[index]
        value, grads = jax.value_and_grad(loss)(params, xb, yb)
        updates, state = optimizer.update(grads, state, params, value=value)
        lr = getattr(state, "lr", jnp.nan)
        return (optax.apply_updates(params, updates), state), (loss(params, x, y), lr)

    _, (losses, lrs) = jax.lax.scan(step, (params, optimizer.init(params)), batches)
    return losses, lrs


def main(out: pathlib.Path) -> None:
    n_steps, n, dim, batch_size = (150, 128, 4, 16) if SMALL else (2000, 512, 8, 32)
    fixed_lrs = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    key = jax.random.key(0)
    k_data, k_params, k_batches = jax.random.split(key, 3)
    x, y = make_data(k_data, n, dim)
    params = init_mlp(k_params, (dim, 64, 1))
    batches = jax.random.randint(k_batches, (n_steps, batch_size), 0, n)

    runs = {}
    clr_losses, clr_lrs = jax.jit(
        lambda p: train(cr.lr.clr(max_lr=10.0), p, x, y, batches)
    )(params)
    clr_losses, clr_lrs = np.asarray(clr_losses), np.asarray(clr_lrs)
    runs["CLR (max_lr=10)"] = (clr_losses, clr_lrs)
    # All fixed learning rates at once: optax.sgd with a traced lr, vmapped.
    sweep = jax.jit(jax.vmap(lambda lr: train(_fixed(lr), params, x, y, batches)[0]))(
        jnp.asarray(fixed_lrs)
    )
    for lr, losses in zip(fixed_lrs, np.asarray(sweep), strict=True):
        blown = np.flatnonzero(~np.isfinite(losses) | (losses > 1e3 * losses[0]))
        name = f"SGD lr={lr:g}" + (
            f" (diverged, step {blown[0]})" if blown.size else ""
        )
        runs[name] = (losses, np.full(n_steps, lr))

    out.mkdir(parents=True, exist_ok=True)
    steps = np.arange(n_steps)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(fixed_lrs)))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (name, (losses, _)), color in zip(list(runs.items())[1:], colors, strict=True):
        ax.plot(steps, _clip(losses), color=color, lw=1.2, label=name)
    ax.plot(steps, clr_losses, color="crimson", lw=2.0, label="CLR (max_lr=10)")
    ax.set_yscale("log")
    ax.set_ylim(top=10 * clr_losses[0])
    ax.set_xlabel("step")
    ax.set_ylabel("full-data training loss (MSE)")
    ax.set_title("CLR vs fixed learning rates (minibatch SGD, teacher–student MLP)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "clr_vs_sgd_loss.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(steps, clr_lrs, color="crimson", lw=0.6, alpha=0.6, label="CLR step h_k")
    window = max(1, n_steps // 50)
    smooth = np.convolve(clr_lrs, np.ones(window) / window, mode="valid")
    ax.plot(
        steps[window - 1 :], smooth, color="darkred", lw=2.0, label="CLR, running mean"
    )
    for lr, color in zip(fixed_lrs, colors, strict=True):
        ax.axhline(lr, color=color, lw=1.0, ls="--", label=f"fixed lr={lr:g}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate chosen by CLR, h = L_B / ‖∇L_B‖² (capped at 10)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "clr_vs_sgd_lr.png", dpi=120)
    plt.close(fig)

    best = min(runs.items(), key=lambda item: _final(item[1][0]))
    print(f"{'run':<36}{'final loss':>12}")
    for name, (losses, _) in runs.items():
        print(f"{name:<36}{_final(losses):>12.3e}")
    print(f"best: {best[0]}; figures in {out}/")


def _fixed(lr):
    """optax.sgd accepting (and ignoring) the `value` keyword."""
    return optax.with_extra_args_support(optax.sgd(lr))


def _clip(losses):
    """Diverged runs (NaN/huge) drawn up to where they blow up."""
    losses = np.where(np.isfinite(losses), losses, np.nan)
    return np.where(losses < 1e6, losses, np.nan)


def _final(losses):
    tail = losses[-max(1, len(losses) // 20) :]
    return float(np.mean(tail)) if np.all(np.isfinite(tail)) else float("inf")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
