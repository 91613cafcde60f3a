"""Measuring your own training loop: a flax nnx MLP on digits, Adam vs heavy ball.

A plain loop (flax nnx for the model, optax for the optimizer, nothing from
corridors in the step) trains a tanh MLP on scikit-learn's embedded 8×8 digits (no
download; without scikit-learn, synthetic Gaussian classes) twice: with `optax.adam`
and with `optax.sgd(momentum=0.9)`. Every N steps a `corridors.Monitor` measures the
step the optimizer actually took: its drift from the gradient flow (at the flow time
nearest to it), the drift a plain GD step of the same size would have had, the
corridor score ‖H∇L‖/‖∇L‖, the minibatch step's drift from the full-batch flow, SGD's
two implicit regularizers on micro-batches and, every few measurements, the
sharpness. The monitor never raises in the loop: a failed solve is a status.

Writes `own_training_loop.png` into `--out` (default `examples/out/`).

Run: python examples/own_training_loop.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: seconds)
"""

import argparse
import os
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from flax import nnx

import corridors as cr

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"
STEPS = 60 if SMALL else 1500
EVERY = 10 if SMALL else 50  # measure every EVERY steps
BATCH = 64
LR = {"adam": 1e-3, "momentum": 0.02}


def load_data(seed=0):
    """Shuffled float32 (x, y) and a description."""
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y, name = digits.data / 16.0, digits.target, "digits"
    except ImportError:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 10, 1797)
        x = (rng.normal(size=(10, 64))[y] + 1.5 * rng.normal(size=(1797, 64))) / 4
        name = "Gaussian classes (scikit-learn not installed)"
    order = np.random.default_rng(seed).permutation(len(x))
    return jnp.asarray(x[order], jnp.float32), jnp.asarray(y[order]), name


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, 32, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def make_loss(graphdef):
    """`loss(params, x, y)`: mean cross-entropy of the nnx model with state `params`."""

    def loss(params, xb, yb):
        logits = nnx.merge(graphdef, params)(xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    return loss


def train(name, optimizer, loss, x, y, params0):
    """One run of a plain optax loop; a list of (step, record dict) measurements."""

    @jax.jit
    def step(params, state, xb, yb):
        grads = jax.grad(loss)(params, xb, yb)
        update, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, update), state, update

    monitor = cr.Monitor(loss, sharpness_every=4, microbatches=4, drift_time="nearest")
    full = (x[:512], y[:512])  # the "full batch" whose flow the minibatch steps chase
    params, state = params0, optimizer.init(params0)
    measured = []
    n_batches = len(x) // BATCH
    for k in range(STEPS + 1):
        i = k % n_batches
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        new_params, new_state, update = step(params, state, xb, yb)
        if k % EVERY == 0:
            record = monitor(
                params, (xb, yb), update=update, lr=LR[name], full_batch=full
            )
            measured.append((k, record.to_dict()))
            for failed, message in record.failures().items():
                print(f"  {name} step {k}: {failed} failed: {message}")
        params, state = new_params, new_state
    return measured


def main(out: pathlib.Path) -> None:
    x, y, data_name = load_data()
    graphdef, params0 = nnx.split(MLP(nnx.Rngs(0)))
    optimizers = {
        "adam": optax.adam(LR["adam"]),
        "momentum": optax.sgd(LR["momentum"], momentum=0.9),
    }
    loss = make_loss(graphdef)  # one loss for both runs: the monitor compiles once
    runs = {
        name: train(name, opt, loss, x, y, params0) for name, opt in optimizers.items()
    }
    print(f"{data_name}: {STEPS} steps, batch {BATCH}, measured every {EVERY} steps")
    print(f"{'run':>9} {'step':>5} {'loss':>8} {'drift':>10} {'gd_drift':>10} "
          f"{'rel.drift':>9} {'score':>7} {'mb_drift':>10} {'sharpness':>9}")  # fmt: skip
    for name, measured in runs.items():
        for k, r in measured[:: max(1, len(measured) // 4)]:
            sharp = f"{r['sharpness']:9.3f}" if "sharpness" in r else " " * 9
            print(
                f"{name:>9} {k:5d} {r['loss']:8.4f} {r['drift']:10.3e} "
                f"{r['gd_drift']:10.3e} {r['relative_drift']:9.2e} "
                f"{r['corridor_score']:7.3f} {r['minibatch_drift']:10.3e} {sharp}"
            )

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, measured in runs.items():
        steps = [k for k, _ in measured]
        records = [r for _, r in measured]
        get = lambda key, records=records: [r.get(key, np.nan) for r in records]  # noqa: E731
        (line,) = axes[0].plot(steps, get("loss"), label=name)
        axes[1].semilogy(steps, get("relative_drift"), color=line.get_color(),
                         label=f"{name}: step taken")  # fmt: skip
        gd_relative = np.array(get("gd_drift")) / (
            LR[name] * np.array(get("grad_norm"))
        )
        axes[1].semilogy(steps, gd_relative, "--", color=line.get_color(),
                         label=f"{name}: GD step, same lr")  # fmt: skip
        sharp_steps = [k for k, r in measured if "sharpness" in r]
        sharp = [r["sharpness"] * LR[name] for _, r in measured if "sharpness" in r]
        axes[2].plot(sharp_steps, sharp, "o-", color=line.get_color(), label=name)
    axes[0].set(xlabel="step", ylabel="minibatch loss", title=data_name)
    axes[1].set(xlabel="step", ylabel="drift / ‖step‖",
                title="distance from the gradient-flow path")  # fmt: skip
    axes[2].set(
        xlabel="step", ylabel="lr · sharpness", title="lr · λ_max (GD: 2 = edge)"
    )
    for ax in axes:
        ax.legend(fontsize=8)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "own_training_loop.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'own_training_loop.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
