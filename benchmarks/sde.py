"""Cost of one SME path (`cr.sgd_sde`) over T = 1 flow time vs the same SGD steps.

Float32, scikit-learn's 8×8 digits (N = 1797; synthetic Gaussian classes without
scikit-learn), a tanh MLP 64 → 16 → 10 (1,210 parameters), softmax cross-entropy,
batch B = 32, lr = 0.1: T = 1 is 10 SGD steps (`cr.sgd_paths`, one path: the baseline).

The SME needs every example at every evaluation, so its cost is set by arithmetic,
counted in per-example gradients: an SGD step costs B; a default SME step (Heun on the
Stratonovich form, dt = lr/4) evaluates the drift twice — the full gradient (N) plus
the gradient of the per-batch correction (h·c/4)·tr Σ, reverse over per-example
reverse (≈ 3N) — and the diffusion twice (N each): ≈ 10N per step, 4 steps per SGD
step. The expected ratio is then 40·N/B ≈ 2,250; the TARGET is at most 2× that, i.e.
no more than 2× overhead from diffrax, the Brownian tree and the vmaps over examples.
Euler–Maruyama (Itô, no correction: ≈ 2N per step) is shown for comparison, and
`noise_examples=256` (the diffusion from a subset; the drift's correction too).

Paths per second: 8 paths vmapped in one call vs one path; the TARGET is that
vmapping costs no more per path than a single path (≥ 1× speed-up).

A sweep over lr compiles once: the default SME is then called at a second lr, 0.05
(twice the steps over T = 1); the TARGET is that its first call costs at most 1.5× its
warm call, i.e. no compile (one is ≈ 10 s, far above the warm call).

Run: `python benchmarks/sde.py [--quick]`.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

import corridors as cr
from _harness import parse_args, print_header, print_table, seconds, verdict
from _timing import clock, warm_times

LR, LR2, BATCH, PATHS = 0.1, 0.05, 32, 8
OVERHEAD_TARGET = 2.0
VMAP_TARGET = 1.0
RECOMPILE_TARGET = 1.5


def load_digits():
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.data / 16.0, digits.target
    except ImportError:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 10, 1797)
        x = (rng.normal(size=(10, 64))[y] + 1.5 * rng.normal(size=(1797, 64))) / 4
    return jnp.asarray(x, jnp.float32), jnp.asarray(y)


def loss(params, batch):
    (w1, b1, w2, b2), (x, y) = params, batch
    logits = jnp.tanh(x @ w1 + b1) @ w2 + b2
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("sgd_sde: one SME path vs the same SGD steps (float32)", args)
    data = load_digits()
    n = data[0].shape[0]
    k1, k2 = jax.random.split(jax.random.key(0))
    params0 = (
        jax.random.normal(k1, (64, 16)) / 8.0,
        jnp.zeros(16),
        jax.random.normal(k2, (16, 10)) / 4.0,
        jnp.zeros(10),
    )
    ts = jnp.array([0.0, 1.0])
    steps = round(1.0 / LR)
    common = dict(batch_size=BATCH, key=jax.random.key(1))
    fns = {
        "SGD, 10 steps (baseline)": lambda: (
            cr.sgd_paths(
                loss, params0, LR, data, n_steps=steps, n_paths=1, **common
            ).params
        ),
        "SME, Heun (default)": lambda: (
            cr.sgd_sde(loss, params0, ts, LR, data, **common).params
        ),
        "SME, Euler–Maruyama": lambda: (
            cr.sgd_sde(
                loss, params0, ts, LR, data, solver=diffrax.Euler(), **common
            ).params
        ),
        "SME, Heun, noise_examples=256": lambda: (
            cr.sgd_sde(loss, params0, ts, LR, data, noise_examples=256, **common).params
        ),
        f"SME, Heun, {PATHS} paths vmapped": lambda: (
            cr.sgd_sde(loss, params0, ts, LR, data, n_paths=PATHS, **common).params
        ),
    }
    first = {name: clock(fn) for name, fn in fns.items()}
    warm = warm_times(fns, repeats=args.repeats, budget=0.5)
    base = warm["SGD, 10 steps (baseline)"]
    rows = []
    for name, seconds_per_call in warm.items():
        per_path = seconds_per_call / (PATHS if "vmapped" in name else 1)
        rows.append(
            [
                name,
                seconds(seconds_per_call),
                seconds(first[name] - seconds_per_call),
                f"{per_path / base:,.0f}×",
                f"{1.0 / per_path:,.1f}",
            ]
        )
    print_table(
        f"N = {n}, B = {BATCH}, lr = {LR}, T = 1 (warm, min of {args.repeats})",
        ["", "warm", "compile", "per path / SGD", "paths/s"],
        rows,
    )
    expected = 40 * n / BATCH
    ratio = warm["SME, Heun (default)"] / base
    print(f"counted arithmetic 40·N/B = {expected:,.0f}; measured {ratio:,.0f}×:")
    print(
        "overhead over the count:",
        f"{ratio / expected:.2f}×",
        verdict(ratio / expected, OVERHEAD_TARGET, at_most=True),
    )
    speedup = warm["SME, Heun (default)"] / (
        warm[f"SME, Heun, {PATHS} paths vmapped"] / PATHS
    )
    print(
        f"vmapped speed-up per path: {speedup:.2f}×",
        verdict(speedup, VMAP_TARGET, at_most=False),
    )

    # After every program above is compiled: a new lr must not compile again.
    second = lambda: cr.sgd_sde(loss, params0, ts, LR2, data, **common).params  # noqa: E731
    first_call = clock(second)
    warm_call = warm_times({"lr2": second}, repeats=args.repeats, budget=0.5)["lr2"]
    print(
        f"second lr {LR2}: first call {seconds(first_call)}, warm {seconds(warm_call)}",
        f"(lr {LR}: compile {seconds(first['SME, Heun (default)'] - warm['SME, Heun (default)'])});",
        f"first / warm = {first_call / warm_call:.2f}×",
        verdict(first_call / warm_call, RECOMPILE_TARGET, at_most=True),
    )


if __name__ == "__main__":
    main()
