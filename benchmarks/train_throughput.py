"""Training throughput: `corridors.train`'s step vs plain flax + optax steps.

Our step is the compiled step `corridors.train.run` uses (data-parallel shardings,
non-finite guard, loss accumulators, lr bookkeeping), measurements off. The baselines,
written here for the same model, batch and optimizer (SGD):

- "nnx.jit": the idiomatic Flax NNX step (`nnx.Optimizer`, `nnx.value_and_grad`,
  `nnx.jit`);
- "functional": `nnx.split` once, then a `jax.jit` step that merges, steps with the
  NNX API and returns the new state (Flax's documented low-overhead pattern).

Both get the same uint8 batch and normalize it inside the step, as ours does.
Reports images/s (min over repeats of the mean over `--steps` chained steps) and
the ratio ours / best baseline; target ≥ 0.95.

Run: python benchmarks/train_throughput.py [--quick] [--model resnet18 --width 16
     --batch 64 --image-size 32 --precision float32]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import corridors.train as ct
from _harness import console, machine, print_table, verdict
from corridors.train._network import normalize
from corridors.train._sharding import global_batch
from corridors.train._trainer import Trainer


def parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument(
        "--precision", default="float32", choices=["float32", "bfloat16"]
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="chained steps per repeat"
    )
    args = parser.parse_args()
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.steps = args.steps or (3 if args.quick else 10)
    return args


def timed(step_fn, state, steps: int, repeats: int) -> tuple[float, float]:
    """(compile seconds ≈ first call − warm call, best seconds per step)."""
    start = time.perf_counter()
    state = jax.block_until_ready(step_fn(state))
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            state = step_fn(state)
        jax.block_until_ready(state)
        best = min(best, (time.perf_counter() - start) / steps)
    return first - best, best


def main():
    args = parse()
    console.rule("[bold]train_throughput")
    console.print(f"machine: {machine()}")
    size = args.image_size
    config = ct.TrainConfig(
        model=args.model,
        width=args.width,
        dataset="synthetic",
        synthetic_shape=(size, size, 3),
        synthetic_size=max(args.batch, 256),
        batch_size=args.batch,
        steps=1,
        precision=args.precision,
        measure_every=0,
        snapshots=0,
        quiet=True,
        out="/tmp/corridors-bench-unused",
    )
    console.print(
        f"{args.model} width {args.width}, batch {args.batch} of {size}×{size}×3, "
        f"{args.precision}, SGD lr 0.01; {args.steps} chained steps per repeat, "
        f"{args.repeats} repeats (min kept)"
    )
    trainer = Trainer(config)
    dataset = trainer.dataset
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.batch).astype(np.int32)
    batch = global_batch({"image": images, "label": labels}, trainer.mesh)

    # -- ours ---------------------------------------------------------------------------
    state = trainer.initial_state(0, 0.01)

    def ours(state):
        return trainer.train_step(state, batch["image"], batch["label"])

    # -- baselines ----------------------------------------------------------------------
    dtype = jnp.bfloat16 if args.precision == "bfloat16" else None
    mean, std = dataset.mean, dataset.std
    tx = optax.sgd(0.01)

    def fresh_model():  # the same initialization for every baseline
        return ct.build_model(
            args.model,
            num_classes=10,
            image_shape=(size, size, 3),
            width=args.width,
            dtype=dtype,
            seed=jax.random.key(0, impl="rbg"),
        )

    model = fresh_model()
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    def cross_entropy(logits, y):
        return optax.softmax_cross_entropy_with_integer_labels(
            logits.astype(jnp.float32), y
        ).mean()

    @nnx.jit
    def nnx_step(model, optimizer, x, y):
        def loss_fn(model):
            return cross_entropy(model(normalize(x, mean, std)), y)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    x, y = jnp.asarray(images), jnp.asarray(labels)

    def nnx_baseline(_):
        return nnx_step(model, optimizer, x, y)

    # Flax's documented fast path: split once, `jax.jit` a function that merges,
    # steps with the NNX API and returns the new state.
    functional_model = fresh_model()
    graphdef, carry = nnx.split(
        (functional_model, nnx.Optimizer(functional_model, tx, wrt=nnx.Param))
    )

    @jax.jit
    def functional_step(carry, x, y):
        model, optimizer = nnx.merge(graphdef, carry)

        def loss_fn(model):
            return cross_entropy(model(normalize(x, mean, std)), y)

        _, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer))

    def functional(carry):
        return functional_step(carry, x, y)

    results = {}
    for name, fn, init in (
        ("corridors.train", ours, state),
        ("nnx.jit", nnx_baseline, None),
        ("functional", functional, carry),
    ):
        results[name] = timed(fn, init, args.steps, args.repeats)
    best_baseline = min(results["nnx.jit"][1], results["functional"][1])
    rows = []
    for name, (compile_s, seconds) in results.items():
        rows.append(
            [
                name,
                f"{args.batch / seconds:,.0f}",
                f"{seconds * 1e3:.1f} ms",
                f"{compile_s:.1f} s",
                f"{best_baseline / seconds:.3f}",
            ]
        )
    print_table(
        "images/s (higher is better)",
        ["step", "images/s", "per step", "compile", "vs best baseline"],
        rows,
    )
    ratio = best_baseline / results["corridors.train"][1]
    console.print(
        f"ours / best baseline: {ratio:.3f} — {verdict(ratio, 0.95, at_most=False)}"
    )


if __name__ == "__main__":
    main()
