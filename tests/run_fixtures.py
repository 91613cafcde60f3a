"""Generated training runs (run.json + metrics.jsonl) for the figure and report tests:
the shapes a real digits sweep produces, from closed forms, without training."""

import json
import pathlib

import numpy as np

STEPS = 200
STEPS_PER_EPOCH = 11


def write_run(
    folder: pathlib.Path,
    *,
    optimizer: str = "sgd",
    lr: float | None = 0.1,
    seed: int = 0,
    log_every: int = 10,
    measure_every: int = 20,
    sharpness_every: int = 40,
    snapshots: int = 10,
    sharpness_limit: float | None = None,
) -> pathlib.Path:
    """One run folder: losses decaying like 2/(1 + h·step), a corridor score and
    drift that shrink along the run, a sharpness rising towards 2/h, RSI/EB that
    blow up near the final iterate (as against x* they do). The sharpness tends to
    `sharpness_limit` (default 2/h)."""
    rng = np.random.default_rng([seed, int(1000 * (lr or 0))])
    folder.mkdir(parents=True, exist_ok=True)
    description = {
        "name": folder.name,
        "optimizer": optimizer,
        "lr": lr,
        "seed": seed,
        "max_lr": None,
        "model": "mlp",
        "dataset": "digits",
        "batch_size": 128,
        "steps": STEPS,
        "steps_per_epoch": STEPS_PER_EPOCH,
        "weight_decay": 0.0,
        "measure_batch": 256,
        "measure_every": measure_every,
        "sharpness_every": sharpness_every,
    }
    (folder / "run.json").write_text(json.dumps(description))
    h = 0.5 if lr is None else lr
    noise = lambda: 1 + 0.05 * rng.standard_normal()  # noqa: E731
    lines = []
    for step in range(0, STEPS + 1):
        epoch = step / STEPS_PER_EPOCH
        loss = 2.0 / (1 + h * step)
        if step and (step % log_every == 0 or step == STEPS):
            lines.append(
                {
                    "kind": "train",
                    "step": step,
                    "epoch": epoch,
                    "loss": loss * noise(),
                    "lr": h * noise(),
                }
            )
        if step % measure_every == 0 or step == STEPS:
            score = 3.0 * (1 + 3 * h) / (1 + step)
            grad_norm = np.sqrt(loss)
            record = {
                "kind": "measure",
                "step": step,
                "epoch": epoch,
                "loss": loss,
                "grad_norm": grad_norm,
                "lr": h * noise(),
                "corridor_score": score,
                "predicted_drift": 0.5 * h**2 * score * grad_norm,
                "drift": 2 * 0.5 * h**2 * score * grad_norm * noise(),
                "relative_drift": 2 * 0.5 * h * score * noise(),
            }
            if step % sharpness_every == 0 or step == STEPS:
                limit = 2 / h if sharpness_limit is None else sharpness_limit
                record["sharpness"] = limit * (1 - 0.8 * np.exp(-step / 50))
                # A spectrum with it: trace 10λ; blocks at 0.6λ, 0.3λ, one failed.
                record["hessian_trace"] = 10 * record["sharpness"]
                record["block_sharpness"] = {
                    "layer1/kernel": 0.6 * record["sharpness"],
                    "layer2/kernel": 0.3 * record["sharpness"],
                    "layer2/bias": None,
                }
            lines.append(record)
        if step % 50 == 0 and step:
            lines.append(
                {
                    "kind": "eval",
                    "step": step,
                    "epoch": epoch,
                    "eval_accuracy": 0.9 - 0.5 / (1 + h * step),
                }
            )
    every = STEPS // snapshots
    for step in range(0, STEPS, every):
        distance = (STEPS - step) / STEPS
        lines.append(
            {
                "kind": "path",
                "step": step,
                "rsi": 0.2 * h / distance**2,
                "eb": (1 + h) / distance,
            }
        )
    lines.append(
        {
            "kind": "summary",
            "step": STEPS,
            "final_loss": 2 / (1 + h * STEPS),
            "eval_accuracy": 0.88,
            "corrupt_images": 0,
        }
    )
    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    return folder


def write_sweep(root: pathlib.Path, *, lrs=(0.03, 0.3), seeds=(0, 1)) -> pathlib.Path:
    """A CLR family and an SGD sweep, `seeds` each, as `corridors train` lays out."""
    for seed in seeds:
        write_run(root / f"clr-seed{seed}", optimizer="clr", lr=None, seed=seed)
        for lr in lrs:
            write_run(root / f"sgd-lr{lr:g}-seed{seed}", lr=lr, seed=seed)
    return root
