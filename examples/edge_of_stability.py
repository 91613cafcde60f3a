"""Edge of stability: full-batch GD drives the sharpness to 2/lr, and the central flow
models what GD does there.

GD on a quadratic is stable only while the top Hessian eigenvalue (the sharpness)
stays below 2/lr. On a network trained with full-batch GD and a squared loss the
sharpness first rises ("progressive sharpening") and then hovers at about 2/lr
(Cohen et al., 2021): the training loss keeps falling, non-monotonically, while
the classical stability bound says GD should diverge. `corridors.sharpness`
(Lanczos on Hessian-vector products) tracks it along training.

Part two reproduces the headline of the central-flow paper (Cohen, Damian, Talwalkar,
Kolter & Lee, ICLR 2025) with `corridors.central_flow`: GD's non-monotone loss against
the central flow's predicted time-averaged loss L(θ̄) + ½⟨Σ, H⟩, the central flow's
sharpness held at 2/lr, and GD's distance to the central flow against its distance
to the gradient flow.

Data: scikit-learn's digits (standardized pixels, one-hot targets, MSE); without
scikit-learn, synthetic Gaussian classes. Network: tanh MLP (64, 32, 32, 10).

Writes `edge_of_stability.png` (sharpness vs step with the 2/lr lines, and the
training loss) and `central_flow.png` (loss, sharpness, distances) into `--out`
(default `examples/out/`).

Run: python examples/edge_of_stability.py [--out DIR]
(CORRIDORS_EXAMPLE_SMALL=1: one learning rate, fewer steps, a short central flow)
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


def load_data(n):
    """(x, one-hot y, description): standardized digits, or Gaussian classes."""
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, labels, name = digits.data[:n], digits.target[:n], "digits"
    except ImportError:
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 10, n)
        x = rng.normal(size=(10, 64))[labels] + rng.normal(size=(n, 64))
        name = "Gaussian classes (scikit-learn not installed)"
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return jnp.asarray(x), jax.nn.one_hot(labels, 10), name


def init_mlp(key, sizes, scale=0.57735):
    """PyTorch-like init scale (std 1/√(3·fan_in)): a small initial sharpness."""
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
    return 0.5 * jnp.mean(jnp.sum((mlp(params, x) - y) ** 2, axis=-1))


batched_loss = jax.jit(jax.vmap(loss, in_axes=(0, None, None)))


def top_eigenvalue(params, x, y):
    """λ_max(H) to 0.1% (plenty for a plot); a short Krylov space compiles faster."""
    return float(cr.sharpness(loss, params, (x, y), tol=1e-3, max_iter=100)[0])


def train(params, lr, n_steps, every, x, y):
    """GD in chunks of `every` steps (one compile); sharpness after each chunk."""
    steps, sharpness, losses = [0], [top_eigenvalue(params, x, y)], []
    for start in range(0, n_steps, every):
        iterates = cr.gd(loss, params, lr, every, (x, y))
        losses.extend(np.asarray(batched_loss(iterates, x, y))[:-1])
        params = jax.tree.map(lambda leaf: leaf[-1], iterates)
        steps.append(start + every)
        sharpness.append(top_eigenvalue(params, x, y))
    losses.append(float(loss(params, x, y)))
    return np.array(steps), np.array(sharpness), np.array(losses)


def main(out: pathlib.Path) -> None:
    n, n_steps, every = (200, 200, 50) if SMALL else (500, 800, 25)
    lrs = [0.6] if SMALL else [0.6, 0.4, 0.25]
    x, y, name = load_data(n)
    params = init_mlp(jax.random.key(0), (x.shape[1], 32, 32, 10))
    runs = {lr: train(params, lr, n_steps, every, x, y) for lr in lrs}

    out.mkdir(parents=True, exist_ok=True)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    colors = plt.cm.viridis(np.linspace(0.0, 0.8, len(lrs)))
    for (lr, (steps, sharp, losses)), color in zip(runs.items(), colors, strict=True):
        top.plot(steps, sharp, "o-", ms=3, color=color, label=f"sharpness, lr = {lr:g}")
        top.axhline(2 / lr, color=color, ls="--", lw=1.2, label=f"2/lr = {2 / lr:.2f}")
        bottom.plot(np.arange(losses.size), losses, color=color, label=f"lr = {lr:g}")
    top.set_ylabel("sharpness λ_max(H) (1 / flow-time units)")
    top.set_title(
        f"Edge of stability: full-batch GD, tanh MLP (64, 32, 32, 10), MSE on {name}"
    )
    top.legend(fontsize=8, ncol=2)
    bottom.set_yscale("log")
    bottom.set_xlabel("GD step")
    bottom.set_ylabel("training loss (MSE, squared target units)")
    bottom.set_title("training loss keeps falling, non-monotonically, at the edge")
    bottom.legend(fontsize=8)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "edge_of_stability.png", dpi=120)
    plt.close(fig)

    print(f"{'lr':>6}{'2/lr':>8}{'initial':>10}{'max':>8}{'final':>8}  sharpness")
    for lr, (_, sharp, _) in runs.items():
        print(
            f"{lr:>6g}{2 / lr:>8.2f}{sharp[0]:>10.2f}{sharp.max():>8.2f}{sharp[-1]:>8.2f}"
        )
    print(f"figure in {out}/edge_of_stability.png")
    central_part(out, x[:200], y[:200], params, name)


def tree_distance(a, b):
    """‖a_k − b_k‖₂ over all leaves, for every k of the leading axis."""
    squares = [jnp.sum((u - v) ** 2, axis=tuple(range(1, u.ndim))) for u, v in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]  # fmt: skip
    return np.sqrt(np.asarray(sum(squares)))


def window_mean(values, width):
    """Mean over the `width` steps centred on each step (where the window fits)."""
    kernel = np.ones(width) / width
    return np.convolve(values, kernel, mode="valid")


def central_part(out, x, y, params, name, lr=0.6):
    """GD at the edge of stability against the central flow and the gradient flow."""
    # By step ~140 three eigenvalues sit at 2/lr (hence k = 3); a fourth from ~280.
    n_steps, width = (20, 10) if SMALL else (250, 20)
    every = 10  # flow results saved every `every` GD steps
    ts = lr * np.arange(0, n_steps + 1, every, dtype=float)
    iterates = cr.gd(loss, params, lr, n_steps, (x, y))
    gd_loss = np.asarray(batched_loss(iterates, x, y))
    central = cr.central_flow(loss, params, ts, lr, (x, y), k=3, rtol=1e-5, atol=1e-7)
    flow = cr.gradient_flow(loss, params, ts, (x, y), rtol=1e-8, atol=1e-10)
    at_ts = jax.tree.map(lambda leaf: leaf[::every], iterates)
    to_central = tree_distance(at_ts, central.params)
    to_flow = tree_distance(at_ts, flow.params)
    gd_sharpness = [top_eigenvalue(jax.tree.map(lambda leaf, k=k: leaf[k], iterates),
                                   x, y) for k in range(0, n_steps + 1, every)]  # fmt: skip
    steps = ts / lr

    fig, (ax_loss, ax_sharp, ax_dist) = plt.subplots(3, 1, figsize=(8, 10), sharex=True)
    ax_loss.plot(gd_loss, color="0.6", lw=0.8, label="GD loss")
    averaged = window_mean(gd_loss, width)
    ax_loss.plot(np.arange(averaged.size) + (width - 1) / 2, averaged, color="k",
                 label=f"GD loss, {width}-step average")  # fmt: skip
    ax_loss.plot(steps, central.predicted_loss, "o-", ms=3, color="C3",
                 label="central flow: predicted loss L(θ̄) + ½⟨Σ, H⟩")  # fmt: skip
    ax_loss.plot(steps, batched_loss(flow.params, x, y), "--", color="C0",
                 label="gradient flow: loss")  # fmt: skip
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training loss (MSE)")
    ax_loss.set_title(f"GD at lr = {lr:g} on {name}: central flow vs gradient flow")
    ax_sharp.plot(steps, gd_sharpness, "o-", ms=3, color="0.4", label="GD")
    ax_sharp.plot(
        steps, central.sharpness, "o-", ms=3, color="C3", label="central flow"
    )
    ax_sharp.axhline(2 / lr, color="k", ls="--", lw=1, label="2/lr")
    ax_sharp.set_ylabel("sharpness λ_max(H)")
    ax_dist.plot(
        steps, to_central, "o-", ms=3, color="C3", label="‖θ_k − central flow‖"
    )
    ax_dist.plot(steps, to_flow, "o-", ms=3, color="C0", label="‖θ_k − gradient flow‖")
    ax_dist.set_ylabel("distance in parameter space")
    ax_dist.set_xlabel("GD step k (flow time k·lr)")
    for ax in (ax_loss, ax_sharp, ax_dist):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "central_flow.png", dpi=120)
    plt.close(fig)
    np.savez(out / "central_flow.npz", ts=ts, gd_loss=gd_loss,
             predicted=np.asarray(central.predicted_loss),
             flow_loss=np.asarray(batched_loss(flow.params, x, y)),
             central_sharpness=np.asarray(central.sharpness),
             gd_sharpness=np.asarray(gd_sharpness), to_central=to_central,
             to_flow=to_flow)  # fmt: skip
    print(
        f"central flow: max sharpness / (2/lr) = {central.sharpness.max() * lr / 2:.5f}"
    )
    print(f"final distance of GD to the central flow {to_central[-1]:.4f}, to the "
          f"gradient flow {to_flow[-1]:.4f} (ratio {to_flow[-1] / to_central[-1]:.2f})")  # fmt: skip
    print(f"figure in {out}/central_flow.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
