"""SGD as a stochastic flow: SGD vs its stochastic modified equation vs gradient flow.

A tanh MLP classifies scikit-learn's embedded 8×8 digits (no download; without
scikit-learn, synthetic Gaussian classes) with softmax cross-entropy, in float32. For
one learning rate, many SGD runs (`cr.sgd_paths`, batches drawn with replacement) are
compared with paths of the order-1 and order-2 SME (`cr.sgd_sde`) and with the
gradient flow (`cr.gradient_flow`): the mean full-batch loss over flow time t = k·lr,
with bands holding the middle 80% of the paths. Then, for several learning rates, the
weak error |E L(θ_k) − E L(Θ(k·lr))| at the horizon (`cr.weak_error`, with its 99%
Monte Carlo interval) on a log-log plot, with the slopes fitted by `cr.drift_order`
(theory: 1 for order 1, 2 for order 2), fitted over the errors the Monte Carlo
resolves.

Writes `sgd_as_sde.png` into `--out` (default `examples/out/`) and prints the table.

Run: python examples/sgd_as_sde.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: seconds)
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


def load_data(n, seed=0):
    """n shuffled examples (x, y) and a description."""
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y, name = digits.data / 16.0, digits.target, "digits"
    except ImportError:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 10, 1797)
        x = (rng.normal(size=(10, 64))[y] + 1.5 * rng.normal(size=(1797, 64))) / 4
        name = "Gaussian classes (scikit-learn not installed)"
    order = np.random.default_rng(seed).permutation(len(x))[:n]
    return (jnp.asarray(x[order], jnp.float32), jnp.asarray(y[order])), name


def init_mlp(key, sizes):
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        w = jax.random.normal(sub, (fan_in, fan_out)) / np.sqrt(fan_in)
        params.append({"w": w, "b": jnp.zeros(fan_out)})
    return params


def loss(params, batch):
    x, y = batch
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    logits = x @ params[-1]["w"] + params[-1]["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def main(out: pathlib.Path) -> None:
    n, hidden, batch_size, paths = (128, 8, 8, 32) if SMALL else (384, 16, 16, 128)
    lrs = [0.1, 0.5] if SMALL else [0.05, 0.1, 0.25, 0.5]  # 2/lr divisible by 4
    shown_lr, horizon = lrs[-1], 2.0
    data, name = load_data(n)
    params0 = init_mlp(jax.random.key(0), (64, hidden, 10))
    full = lambda p: loss(p, data)  # noqa: E731

    # One SME step size for every lr: the time grid (and so the compiled solve) is then
    # the same for all of them, and dt = min(lrs)/4 is fine enough for each.
    dt = min(lrs) / 4
    rows, curves = [], {}
    for lr in lrs:
        steps = round(horizon / lr)
        runs = cr.sgd_paths(
            loss,
            params0,
            lr,
            data,
            batch_size=batch_size,
            n_steps=steps,
            key=jax.random.key(1),
            n_paths=paths,
            every=steps // 4,
        )
        row = {"lr": lr}
        for order in (1, 2):
            sme = cr.sgd_sde(
                loss,
                params0,
                runs.ts,
                lr,
                data,
                batch_size=batch_size,
                order=order,
                key=jax.random.key(2),
                n_paths=paths,
                dt=dt,
            )
            err = cr.weak_error(runs, sme, "loss")
            row[order] = (float(err.error[-1]), float(err.half_width[-1]))
            if lr == shown_lr:
                curves[f"SME order {order}"] = sme
        if lr == shown_lr:
            curves["SGD"] = runs
        rows.append(row)

    print(f"{name}: N={n}, hidden={hidden}, B={batch_size}, {paths} paths, t={horizon}")
    print(" lr      |E L_SGD − E L_SME1| (±99%)   |E L_SGD − E L_SME2| (±99%)")
    for row in rows:
        (e1, w1), (e2, w2) = row[1], row[2]
        print(f" {row['lr']:<6g}  {e1:.2e} (±{w1:.1e})          {e2:.2e} (±{w2:.1e})")
    # Fit only the errors the Monte Carlo resolves (error above its 99% half-width).
    slopes = {}
    for order in (1, 2):
        resolved = [
            (row["lr"], row[order][0]) for row in rows if row[order][0] > row[order][1]
        ]
        if len(resolved) >= 2:
            fit = cr.drift_order(*zip(*resolved, strict=True))
            slopes[order] = f"{fit.order:.2f} ± {fit.stderr:.2f} ({len(resolved)} lrs)"
        else:
            slopes[order] = "unresolved (below the Monte Carlo floor)"
        print(f"fitted slope, order {order}: {slopes[order]}")

    out.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.8))
    ts = np.asarray(curves["SGD"].ts)
    flow = cr.gradient_flow(
        full, params0, np.linspace(0.0, horizon, 41), rtol=1e-6, atol=1e-8
    )
    left.plot(
        flow.ts, jax.vmap(full)(flow.params), "k--", lw=1.5, label="gradient flow"
    )
    colors = {"SGD": "crimson", "SME order 1": "tab:blue", "SME order 2": "tab:green"}
    for label, result in curves.items():
        losses = np.asarray(result.loss)
        low, high = np.percentile(losses, [10, 90], axis=0)
        left.plot(ts, losses.mean(0), "o-", color=colors[label], label=label)
        left.fill_between(ts, low, high, color=colors[label], alpha=0.2)
    left.set(
        xlabel="flow time t = k·lr",
        ylabel="full-batch loss",
        title=f"lr = {shown_lr:g}: mean over {paths} paths, 10–90% band",
    )
    left.legend()
    for order, color in ((1, "tab:blue"), (2, "tab:green")):
        errors = np.array([row[order][0] for row in rows])
        widths = np.array([row[order][1] for row in rows])
        right.errorbar(
            lrs,
            errors,
            yerr=widths,
            fmt="o-",
            color=color,
            capsize=3,
            label=f"order {order}: slope {slopes[order]}",
        )
    right.plot(
        lrs,
        [row[1][1] for row in rows],
        ":",
        color="gray",
        label="Monte Carlo 99% half-width",
    )
    right.set(
        xscale="log",
        yscale="log",
        xlabel="learning rate",
        ylabel=f"|E L(SGD) − E L(SME)| at t = {horizon:g}",
        title="weak error of the SME",
    )
    right.legend()
    fig.suptitle(f"SGD as an SDE on {name}")
    fig.tight_layout()
    fig.savefig(out / "sgd_as_sde.png", dpi=120)
    print(f"wrote {out / 'sgd_as_sde.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
