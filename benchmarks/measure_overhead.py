"""Measurement overhead of `corridors.train` at the default cadence (target ≤ 10%).

Two views, both with the defaults of `TrainConfig` (measurement batch 256, bosh3 flow
at flow_tol 1e-3, 4 micro-batches for the SGD terms, 30 Lanczos iterations, the
automatic cadence of `TrainConfig.cadence`, 16 snapshots):

- steady state (default): warm times of one training step, one measurement, one
  measurement with sharpness and one snapshot, combined at the default cadence:
  overhead = (t_measure + (t_sharp − t_measure)·m/s)/(m·t_step), m = measure_every,
  s = sharpness_every, plus snapshots;
- end to end (`--end-to-end`): wall time of `run` with the default measurements vs
  with measurements and snapshots off, same data and steps, each run after a warm-up
  run of the same trainer (so compile time is excluded), min over repeats.

Run: python benchmarks/measure_overhead.py [--quick] [--model cnn --width 16
     --batch 256 --image-size 16]   |   ... --end-to-end --model mlp --batch 4096
(The defaults fit a 2-core CPU; on a GPU use --model resnet18 --width 64 --batch 1024
--image-size 32.)
"""

import argparse
import os
import pathlib
import shutil
import tempfile
import time

import jax
import numpy as np

import corridors.train as ct
from _harness import console, machine, print_table, verdict
from corridors.train._loop import train
from corridors.train._sharding import global_batch, to_host
from corridors.train._snapshots import save_snapshot
from corridors.train._trainer import Trainer


def parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="end-to-end run length")
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    return args


def config_for(args, out, **settings) -> ct.TrainConfig:
    size = args.image_size
    return ct.TrainConfig(
        model=args.model,
        width=args.width,
        dataset="synthetic",
        synthetic_shape=(size, size, 3),
        synthetic_size=max(2 * args.batch, 512),
        batch_size=args.batch,
        lr=(0.02,),
        quiet=True,
        log_every=50,
        checkpoint_every=0,
        eval_every=0,
        out=str(out),
        **settings,
    )


def best(fn, repeats: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def steady_state(args, out):
    config = config_for(args, out, steps=1)
    trainer = Trainer(config)
    m_every, s_every = trainer.plan.measure_every, trainer.plan.sharpness_every
    state = trainer.initial_state(0, 0.02)
    rng = np.random.default_rng(0)
    shape = trainer.dataset.image_shape
    images = rng.integers(0, 256, (args.batch, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, args.batch).astype(np.int32)
    batch = global_batch({"image": images, "label": labels}, trainer.mesh)
    t_step = best(
        lambda: trainer.train_step(state, batch["image"], batch["label"]), args.repeats
    )

    def measure(sharp):
        key = jax.random.PRNGKey(0) if sharp else None
        return trainer.measurer.measure(
            state.params, state.batch_stats, state.opt_state,
            trainer.measure_images, trainer.measure_labels, sharpness_key=key,
        )  # fmt: skip

    record = measure(False)
    t_measure = best(lambda: measure(False) and jax.numpy.zeros(()), args.repeats)
    t_sharp = best(lambda: measure(True) and jax.numpy.zeros(()), args.repeats)
    t_grad = best(
        lambda: trainer.measurer.gradient(
            state.params, state.batch_stats, trainer.measure_images,
            trainer.measure_labels,
        ),
        args.repeats,
    )  # fmt: skip
    t_snap = best(
        lambda: (
            save_snapshot(out / "snap", 0, to_host(state.params))
            and jax.numpy.zeros(())
        ),
        args.repeats,
    )
    snapshots_per_step = config.snapshots / max(1, 10 * m_every)
    per_step = (t_measure + (t_sharp - t_measure) * m_every / s_every) / m_every
    overhead = (per_step + t_snap * snapshots_per_step) / t_step
    console.print(
        f"{args.model} width {args.width}, batch {args.batch}, measurement batch "
        f"{config.measure_batch}: default cadence measure_every={m_every}, "
        f"sharpness_every={s_every}; drift solve took {record.get('flow_evaluations')} "
        "gradient evaluations"
    )
    print_table(
        "warm times (min over repeats)",
        ["piece", "time", "≈ training steps", "≈ measurement-batch gradients"],
        [
            ["training step", f"{t_step * 1e3:.1f} ms", "1", f"{t_step / t_grad:.1f}"],
            ["gradient, measurement batch", f"{t_grad * 1e3:.1f} ms", f"{t_grad / t_step:.2f}", "1"],
            ["measurement", f"{t_measure:.3f} s", f"{t_measure / t_step:.1f}", f"{t_measure / t_grad:.0f}"],
            ["measurement + sharpness", f"{t_sharp:.3f} s", f"{t_sharp / t_step:.1f}", f"{t_sharp / t_grad:.0f}"],
            ["snapshot (npz)", f"{t_snap * 1e3:.1f} ms", f"{t_snap / t_step:.2f}", ""],
        ],
    )  # fmt: skip
    console.print(
        f"steady-state overhead at the default cadence (snapshots over a run of "
        f"{10 * m_every} steps): {overhead:.1%} — {verdict(overhead, 0.10, at_most=True, percent=True)}"
    )


def end_to_end(args, out):
    steps = args.steps or 500
    timings = {}
    for label, settings in (
        ("measurements off", {"measure_every": 0, "snapshots": 0}),
        ("default measurements", {}),
    ):
        config = config_for(
            args, out / label.replace(" ", "_"), steps=steps, **settings
        )
        trainer = Trainer(config)
        times = []
        for repeat in range(args.repeats + 1):  # the first run compiles
            folder = pathlib.Path(config.out)
            shutil.rmtree(folder, ignore_errors=True)
            start = time.perf_counter()
            train(trainer, 0.02, 0)
            if repeat:
                times.append(time.perf_counter() - start)
        timings[label] = (
            min(times),
            trainer.plan.measure_every,
            trainer.plan.sharpness_every,
        )
        console.print(f"{label}: {min(times):.2f} s for {steps} steps")
    off = timings["measurements off"][0]
    on, m_every, s_every = timings["default measurements"]
    ratio = on / off - 1
    print_table(
        f"end to end, {steps} steps of {args.model}, batch {args.batch}",
        ["run", "wall time", "measure_every", "sharpness_every"],
        [
            ["measurements off", f"{off:.2f} s", "0", "0"],
            ["default measurements", f"{on:.2f} s", str(m_every), str(s_every)],
        ],
    )
    console.print(
        f"overhead: {ratio:.1%} — {verdict(ratio, 0.10, at_most=True, percent=True)}"
    )


def main():
    args = parse()
    console.rule("[bold]measure_overhead")
    console.print(f"machine: {machine()}")
    if hasattr(os, "getloadavg"):
        console.print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    out = pathlib.Path(tempfile.mkdtemp(prefix="corridors-overhead-"))
    try:
        if args.end_to_end:
            end_to_end(args, out)
        else:
            steady_state(args, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
