"""Overhead of `corridors.Monitor` in a plain flax nnx + optax loop on digits.

The loop: a tanh MLP 64→128→10 (flax nnx, split/merge `jax.jit` step) trained with
`optax.adam` on scikit-learn's digits, batch 128, float32. With the monitor, every
50th step is measured (update, lr and a full batch of 512 given; 4 micro-batches;
drift at the nearest flow time) and every 250th adds the sharpness.

Two measurements, both interleaved repeat by repeat with the baseline:
- steady state: warm times of one training step, of one measurement without and
  with sharpness, and of one jitted gradient of the measurement batch; the overhead
  at the cadence is (4·t_measure + t_sharpness)/(250·t_step);
- end to end: wall time of 500 loop steps with the monitor vs without.

Run: python benchmarks/monitor_overhead.py [--quick] [--repeats N]
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import corridors as cr
from _harness import parse_args, print_header, print_table, seconds, verdict
from _timing import clock, warm_times

EVERY, SHARPNESS_EVERY, STEPS, BATCH = 50, 250, 500, 128


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(64, 128, rngs=rngs)
        self.out = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("Monitor overhead in a plain nnx + optax loop", args)
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = jnp.asarray(digits.data / 16.0, jnp.float32)
    y = jnp.asarray(digits.target)
    graphdef, params0 = nnx.split(MLP(nnx.Rngs(0)))

    def loss(params, xb, yb):
        logits = nnx.merge(graphdef, params)(xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    optimizer = optax.adam(1e-3)

    @jax.jit
    def step(params, state, xb, yb):
        grads = jax.grad(loss)(params, xb, yb)
        update, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, update), state, update

    monitor = cr.Monitor(loss, microbatches=4, drift_time="nearest")
    # Repeated at one point, a warm start would begin at the converged eigenvector:
    # the steady-state timings solve cold (an upper bound); the loop below warm-starts
    # along training, as a user's loop does.
    cold = cr.Monitor(loss, microbatches=4, drift_time="nearest", warm_start=False)
    full = (x[:512], y[:512])
    n_batches = len(x) // BATCH
    batches = [
        (x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH])
        for i in range(n_batches)
    ]
    state0 = optimizer.init(params0)
    _, _, update0 = step(params0, state0, *batches[0])
    grad = jax.jit(jax.grad(loss))

    def measure(due):
        return lambda: cold(
            params0, batches[0], update=update0, lr=1e-3, full_batch=full,
            sharpness=due,
        ).loss  # fmt: skip

    fns = {
        "training step": lambda: step(params0, state0, *batches[0])[0],
        "gradient (batch)": lambda: grad(params0, *batches[0]),
        "measurement": measure(False),
        "measurement + sharpness": measure(True),
    }
    compile_rows = []
    for name, fn in fns.items():
        first = clock(fn)
        compile_rows.append([name, seconds(first - clock(fn))])
    warm = warm_times(fns, repeats=args.repeats)
    t_step, t_grad = warm["training step"], warm["gradient (batch)"]
    n_measure = STEPS // EVERY
    n_sharp = STEPS // SHARPNESS_EVERY
    overhead = (
        (n_measure - n_sharp) * warm["measurement"]
        + n_sharp * warm["measurement + sharpness"]
    ) / (STEPS * t_step)
    evaluations = int(
        cr.step_drift(loss, params0, update0, "nearest", batches[0]).stats[
            "num_evaluations"
        ]
    )
    rows = [[name, seconds(t), f"{t / t_grad:.1f}"] for name, t in warm.items()]
    print_table("warm times (min over repeats)", ["", "time", "gradients"], rows)
    print_table("compile (first call − warm)", ["", "seconds"], compile_rows)
    print(
        f"drift solve of the step taken (time='nearest'): {evaluations} gradient "
        "evaluations; a GD step's drift: 28; H∇L: one HVP"
    )
    print(
        f"steady-state overhead at every {EVERY} steps (sharpness every "
        f"{SHARPNESS_EVERY}): {overhead:.1%} — {verdict(overhead, 0.10, at_most=True, percent=True)}"
    )

    def loop(measured):
        def run():
            params, state = params0, state0
            for k in range(STEPS):
                xb, yb = batches[k % n_batches]
                new_params, state, update = step(params, state, xb, yb)
                if measured and k % EVERY == 0:
                    monitor(
                        params, (xb, yb), update=update, lr=1e-3, full_batch=full,
                        sharpness=k % SHARPNESS_EVERY == 0,
                    )  # fmt: skip
                params = new_params
            return params

        return run

    loops = {"plain loop": loop(False), "with Monitor": loop(True)}
    for fn in loops.values():
        fn()
    ends = warm_times(loops, repeats=max(1, args.repeats // 3), number=1)
    ratio = ends["with Monitor"] / ends["plain loop"] - 1
    print_table(
        f"end to end, {STEPS} steps (min over repeats)",
        ["", "wall time"],
        [[name, seconds(t)] for name, t in ends.items()],
    )
    print(
        f"end-to-end overhead: {ratio:.1%} — "
        f"{verdict(ratio, 0.10, at_most=True, percent=True)}"
    )
    np.testing.assert_(np.isfinite(overhead))


if __name__ == "__main__":
    main()
