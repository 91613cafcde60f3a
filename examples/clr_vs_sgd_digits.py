"""CLR against a sweep of fixed learning rates, on handwritten digits.

`corridors.train`'s tanh MLP (`init_mlp`, `fit_minibatches`) classifies scikit-learn's embedded 8×8 digits (no download; without
scikit-learn, synthetic images) with minibatch SGD and softmax
cross-entropy, which the network can drive towards 0, CLR's f* = 0 assumption. CLR
(h = L_B/‖∇L_B‖², eq. 3, capped at 10) and SPS_max (Loizou et al., c = 1/2) need no
learning rate; each fixed-lr run does. All runs share the same batches.

Writes `clr_vs_sgd_digits.png` (training loss vs step; final test accuracy vs the
fixed learning rate, with CLR and SPS_max as horizontal lines) into `--out`
(default `examples/out/`).

Run: python examples/clr_vs_sgd_digits.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: seconds)
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
import corridors.train as ct

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"


def main(out: pathlib.Path) -> None:
    n_steps, batch_size, hidden = (80, 32, 16) if SMALL else (1000, 64, 64)
    fixed_lrs = [0.1, 1.0] if SMALL else [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    features, _ = ct.load_features("digits", n_train=1500, n_test=297)
    name = features.name
    x, y = jnp.asarray(features.x_train, jnp.float32), jnp.asarray(features.y_train)
    x_test = jnp.asarray(features.x_test, jnp.float32)
    k_params, k_batches = jax.random.split(jax.random.key(0))
    params = ct.init_mlp(k_params, (features.n_features, hidden, features.n_classes))
    batches = jax.random.randint(k_batches, (n_steps, batch_size), 0, x.shape[0])

    def train(optimizer, params):
        """Full training-set loss before each step (and after the last), test accuracy."""
        params, losses, _ = ct.fit_minibatches(optimizer, params, x, y, batches)
        return losses, ct.mlp_accuracy(params, x_test, features.y_test)

    adaptive = {
        "CLR (max_lr=10)": cr.lr.clr(max_lr=10.0),
        "SPS_max (c=1/2, max_lr=10)": cr.lr.sps_max(0.5, 10.0),
    }
    runs = {
        label: jax.jit(lambda p, opt=opt: train(opt, p))(params)
        for label, opt in adaptive.items()
    }
    # Every fixed learning rate at once: optax.sgd with a traced lr, vmapped.
    fixed = jax.jit(
        jax.vmap(lambda lr: train(optax.with_extra_args_support(optax.sgd(lr)), params))
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
