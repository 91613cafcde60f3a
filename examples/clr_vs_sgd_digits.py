"""CLR against a sweep of fixed learning rates, on handwritten digits.

A tanh MLP classifies scikit-learn's embedded 8×8 digits (no download; without
scikit-learn, synthetic Gaussian classes) with minibatch SGD and softmax
cross-entropy, which the network can drive towards 0, CLR's f* = 0 assumption. CLR
(h = L_B/‖∇L_B‖², eq. 3, capped at 10) and SPS_max (Loizou et al., c = 1/2) need no
learning rate; each fixed-lr run does. All runs share the same batches.

Writes `clr_vs_sgd_digits.png` (training loss vs step; final test accuracy vs the
fixed learning rate, with CLR and SPS_max as horizontal lines) into `--out`
(default `examples/out/`).

Run: python examples/clr_vs_sgd_digits.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: seconds)
"""

import argparse
import itertools
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

SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"


def load_data(seed=0):
    """Shuffled (x_train, y_train, x_test, y_test) and a description."""
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
    x, y = jnp.asarray(x[order], jnp.float32), jnp.asarray(y[order])
    return x[:1400], y[:1400], x[1400:], y[1400:], name


def init_mlp(key, sizes):
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        w = jax.random.normal(sub, (fan_in, fan_out)) / np.sqrt(fan_in)
        params.append({"w": w, "b": jnp.zeros(fan_out)})
    return params


def logits(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()


def train(optimizer, params, data, batches):
    """Full training-set loss before each step (and after the last), test accuracy."""
    x, y, x_test, y_test = data

    def step(carry, index):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params, x[index], y[index])
        updates, state = optimizer.update(grads, state, params, value=value)
        return (optax.apply_updates(params, updates), state), loss(params, x, y)

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), batches)
    accuracy = jnp.mean(jnp.argmax(logits(params, x_test), -1) == y_test)
    return jnp.append(losses, loss(params, x, y)), accuracy


def main(out: pathlib.Path) -> None:
    n_steps, batch_size, hidden = (80, 32, 16) if SMALL else (1000, 64, 64)
    fixed_lrs = [0.1, 1.0] if SMALL else [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    *data, name = load_data()
    k_params, k_batches = jax.random.split(jax.random.key(0))
    params = init_mlp(k_params, (64, hidden, 10))
    batches = jax.random.randint(k_batches, (n_steps, batch_size), 0, data[0].shape[0])

    adaptive = {
        "CLR (max_lr=10)": cr.lr.clr(max_lr=10.0),
        "SPS_max (c=1/2, max_lr=10)": cr.lr.sps_max(0.5, 10.0),
    }
    runs = {
        label: jax.jit(lambda p, opt=opt: train(opt, p, data, batches))(params)
        for label, opt in adaptive.items()
    }
    # Every fixed learning rate at once: optax.sgd with a traced lr, vmapped.
    fixed = jax.jit(
        jax.vmap(
            lambda lr: train(
                optax.with_extra_args_support(optax.sgd(lr)), params, data, batches
            )
        )
    )(jnp.asarray(fixed_lrs))

    out.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.8))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(fixed_lrs)))
    steps = np.arange(n_steps + 1)
    for lr, losses, color in zip(fixed_lrs, np.asarray(fixed[0]), colors, strict=True):
        shown = np.where(np.isfinite(losses) & (losses < 1e3), losses, np.nan)
        left.plot(steps, shown, color=color, lw=1.1, label=f"SGD lr={lr:g}")
    styles = {"CLR (max_lr=10)": "crimson", "SPS_max (c=1/2, max_lr=10)": "black"}
    for label, (losses, accuracy) in runs.items():
        left.plot(steps, np.asarray(losses), color=styles[label], lw=2.0, label=label)
        right.axhline(
            100 * float(accuracy),
            color=styles[label],
            lw=2.0,
            label=f"{label}: {100 * float(accuracy):.1f}%",
        )
    right.plot(
        fixed_lrs, 100 * np.asarray(fixed[1]), "o-", color="tab:blue", label="fixed lr"
    )
    left.set_yscale("log")
    left.set_xlabel(f"SGD step (batch size {batch_size})")
    left.set_ylabel("full training-set loss (nats)")
    left.set_title(f"Training loss on {name}")
    left.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    right.set_xscale("log")
    right.set_xlabel("fixed learning rate (flow time per step)")
    right.set_ylabel("test accuracy after training (%)")
    right.set_title("Test accuracy: a tuned lr vs no lr at all")
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "clr_vs_sgd_digits.png", dpi=120, bbox_inches="tight")
    plt.close(fig)

    print(f"{'run':<30}{'final loss':>12}{'test acc':>10}")
    for label, (losses, accuracy) in runs.items():
        print(f"{label:<30}{float(losses[-1]):>12.4f}{100 * float(accuracy):>9.1f}%")
    for lr, losses, accuracy in zip(fixed_lrs, *map(np.asarray, fixed), strict=True):
        print(f"{f'SGD lr={lr:g}':<30}{losses[-1]:>12.4f}{100 * accuracy:>9.1f}%")
    print(f"figure in {out}/clr_vs_sgd_digits.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
