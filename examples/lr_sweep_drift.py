"""How GD's drift from the gradient flow grows with the learning rate, on a network.

`corridors.sweep_drift` runs, for each lr, n = ⌊T/lr⌋ GD steps and measures
‖θ_n − φ(n·lr)‖ against ONE shared gradient-flow solve; the GD runs are vmapped, so
a whole sweep compiles once. Global order 1 predicts drift ∝ lr at a fixed flow time
T; the constant depends on T (here it shrinks: the flow contracts towards a minimum
and damps the errors of the early steps). Next to it, the one-step prediction (h²/2)‖H∇L‖ at the
start (`corridors.predicted_step_drift`) against the measured one-step drift.

Problem: `corridors.landscapes.MLPRegression`, a tanh teacher–student network (no
data download).

Writes `lr_sweep_drift.png` into `--out` (default `examples/out/`).

Run: python examples/lr_sweep_drift.py [--out DIR]   (CORRIDORS_EXAMPLE_SMALL=1: smaller)
"""

import argparse
import os
import pathlib
import time

import jax
import matplotlib
import numpy as np

import corridors as cr
from corridors.landscapes import MLPRegression

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

jax.config.update("jax_enable_x64", True)
SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"


def main(out: pathlib.Path) -> None:
    widths, n = ((4, 16, 1), 64) if SMALL else ((8, 32, 1), 256)
    horizons = (0.5, 2.0) if SMALL else (0.5, 1.0, 2.0, 4.0)
    lrs = np.geomspace(0.02, 0.32, 4 if SMALL else 9)
    problem = MLPRegression(widths, jax.random.key(0), n)
    params0 = problem.init(jax.random.key(1))
    print(
        f"sharpness at the start: {float(cr.sharpness(problem.loss, params0)[0]):.3f}"
    )

    sweeps, seconds = {}, []
    for horizon in horizons:
        start = time.perf_counter()
        sweep = cr.sweep_drift(problem.loss, params0, lrs, horizon, batch_size=4)
        sweeps[horizon] = np.asarray(sweep)
        seconds.append(time.perf_counter() - start)
    # One-step drift: measured by a single GD step against the flow, and predicted.
    one_step = np.array(
        [
            float(cr.measure_drift(problem.loss, params0, lr, 1).distance[-1])
            for lr in lrs
        ]
    )
    predicted = np.array(
        [float(cr.predicted_step_drift(problem.loss, params0, lr)) for lr in lrs]
    )

    out.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(horizons)))
    for (horizon, drift), color in zip(sweeps.items(), colors, strict=True):
        slope = cr.drift_order(lrs, drift).order
        left.plot(
            lrs, drift, "o-", color=color, label=f"T = {horizon:g}: slope {slope:.2f}"
        )
    left.plot(
        lrs,
        sweeps[horizons[-1]][0] * lrs / lrs[0],
        "k:",
        lw=1.0,
        label="slope 1 (global order 1)",
    )
    left.set_title("GD after ⌊T/h⌋ steps vs the flow at T\n(one flow solve per T)")
    right.plot(lrs, one_step, "o-", color="crimson", label="measured, one GD step")
    right.plot(
        lrs, predicted, "k--", label="predicted (h²/2)‖H∇L‖ (slope 2, leading order)"
    )
    right.set_title("One step: measured vs predicted drift")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate h (flow time per step)")
        ax.set_ylabel("distance to the flow ‖θ − φ‖₂ (parameter units)")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ticks = [0.02, 0.05, 0.1, 0.2, 0.3]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"MLPRegression {widths}, {n} samples: drift vs learning rate")
    fig.tight_layout()
    fig.savefig(out / "lr_sweep_drift.png", dpi=120)
    plt.close(fig)

    print(
        f"{'T':>5}{'slope':>8}{'seconds':>9}   (the first sweep includes compilation)"
    )
    for (horizon, drift), took in zip(sweeps.items(), seconds, strict=True):
        slope = cr.drift_order(lrs, drift).order
        print(f"{horizon:>5g}{slope:>8.2f}{took:>9.2f}")
    ratio = one_step / predicted
    print(f"one step: measured / predicted = {ratio.min():.3f} … {ratio.max():.3f}")
    print(f"figure in {out}/lr_sweep_drift.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("examples/out")
    )
    main(parser.parse_args().out)
