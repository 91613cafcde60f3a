"""Warm `corridors.gradient_flow` vs `scipy.integrate.solve_ivp(method="DOP853")`.

The same gradient flow θ' = −∇L(θ) of a small tanh MLP (8 → 32 → 32 → 1, 1,377
parameters, float64, mean squared error on 64 random points) over t ∈ [0, 20], saved at
11 times, at equal tolerance (rtol = 1e-10, atol = 1e-12) on both sides. The scipy
right-hand side is what users hand-roll: a jitted JAX gradient of the flattened
parameters, converted to NumPy at every evaluation.

Both solutions are compared with a reference solve at much tighter tolerance (scipy
DOP853, rtol = 1e-13, atol = 1e-15), so the speed-up is at equal accuracy. Target:
gradient_flow ≥ 3× faster warm; its compile time (first call minus a warm call) is
reported apart.

Run: `python benchmarks/flow_vs_scipy.py [--quick]`.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import corridors as cr  # noqa: E402
from _harness import (  # noqa: E402
    console,
    parse_args,
    print_header,
    print_table,
    seconds,
    verdict,
)
from _timing import clock, warm_times  # noqa: E402

TARGET = 3.0
RTOL, ATOL = 1e-10, 1e-12
REFERENCE_RTOL, REFERENCE_ATOL = 1e-13, 1e-15
SIZES = (8, 32, 32, 1)
HORIZON = 20.0
N_SAVES = 11
ACCURACY_FACTOR = 10.0  # final errors within this factor count as "the same accuracy"


def mlp_loss(params, x, y):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return 0.5 * jnp.mean((x @ w + b - y) ** 2)


def problem(key):
    keys = jax.random.split(key, len(SIZES) + 1)
    params = [
        (jax.random.normal(k, (n_in, n_out)) / jnp.sqrt(n_in), jnp.zeros(n_out))
        for k, n_in, n_out in zip(keys, SIZES[:-1], SIZES[1:], strict=False)
    ]
    x = jax.random.normal(keys[-2], (64, SIZES[0]))
    y = jnp.sin(x.sum(axis=1, keepdims=True))
    return params, (x, y)


def errors(solution, reference):
    """(error at the final time, error maximized over all saved times), max-abs."""
    difference = np.abs(solution - reference)
    return float(np.max(difference[-1])), float(np.max(difference))


def scipy_solver(params0, data):
    """The hand-rolled baseline: DOP853 on the flattened parameters."""
    flat0, unravel = ravel_pytree(params0)
    flat_grad = jax.jit(
        lambda f: ravel_pytree(jax.grad(mlp_loss)(unravel(f), *data))[0]
    )

    def rhs(t, theta):
        return -np.asarray(flat_grad(theta))

    def solve(ts, rtol, atol):
        solution = solve_ivp(
            rhs,
            (ts[0], ts[-1]),
            np.asarray(flat0),
            method="DOP853",
            t_eval=ts,
            rtol=rtol,
            atol=atol,
        )
        assert solution.success, solution.message
        return solution

    return solve


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("corridors.gradient_flow vs scipy DOP853", args)
    params0, data = problem(jax.random.key(0))
    n = ravel_pytree(params0)[0].size
    ts = np.linspace(0.0, HORIZON, N_SAVES)
    ts_jax = jnp.asarray(ts)
    scipy_solve = scipy_solver(params0, data)

    def flow():
        return cr.gradient_flow(mlp_loss, params0, ts_jax, data, rtol=RTOL, atol=ATOL)

    # The same call under the user's own jit: validation runs at trace time only.
    jitted_flow = jax.jit(
        lambda p, t, d: cr.gradient_flow(mlp_loss, p, t, d, rtol=RTOL, atol=ATOL)
    )

    # First calls (trace + compile + run), then interleaved warm repeats.
    first = {
        "scipy": clock(lambda: scipy_solve(ts, RTOL, ATOL).y),  # compiles the RHS
        "flow": clock(lambda: flow().params),
        "jitted": clock(lambda: jitted_flow(params0, ts_jax, data).params),
    }
    warm = warm_times(
        {
            "scipy": lambda: scipy_solve(ts, RTOL, ATOL).y,
            "flow": lambda: flow().params,
            "jitted": lambda: jitted_flow(params0, ts_jax, data).params,
        },
        repeats=args.repeats,
        number=1,
    )

    # Equal accuracy: both against a much tighter solve.
    reference = scipy_solve(ts, REFERENCE_RTOL, REFERENCE_ATOL).y.T
    result = flow()
    ours = np.asarray(jax.vmap(lambda p: ravel_pytree(p)[0])(result.params))
    theirs = scipy_solve(ts, RTOL, ATOL)
    final_ours, max_ours = errors(ours, reference)
    final_scipy, max_scipy = errors(theirs.y.T, reference)
    losses = (
        float(mlp_loss(params0, *data)),
        float(mlp_loss(jax.tree.map(lambda p: p[-1], result.params), *data)),
    )

    speedup = warm["scipy"] / warm["flow"]
    rows = [
        [
            "scipy DOP853 + jitted grad (baseline)",
            seconds(warm["scipy"]),
            "1.00",
            seconds(first["scipy"] - warm["scipy"]),
            f"{theirs.nfev:,}",
            f"{final_scipy:.1e}",
            f"{max_scipy:.1e}",
            "",
        ],
        [
            "cr.gradient_flow",
            seconds(warm["flow"]),
            f"{speedup:.2f}",
            seconds(first["flow"] - warm["flow"]),
            f"{int(result.stats['num_evaluations']):,}",
            f"{final_ours:.1e}",
            f"{max_ours:.1e}",
            verdict(speedup, TARGET, at_most=False),
        ],
        [
            "jax.jit(cr.gradient_flow)",
            seconds(warm["jitted"]),
            f"{warm['scipy'] / warm['jitted']:.2f}",
            seconds(first["jitted"] - warm["jitted"]),
            "",
            "",
            "",
            "",
        ],
    ]
    print_table(
        f"gradient flow of a {n:,}-parameter tanh MLP (float64), t ∈ [0, {HORIZON:g}],"
        f" rtol={RTOL:g}, atol={ATOL:g}",
        [
            "solver",
            "warm",
            "speed-up",
            "compile",
            "∇L evals",
            "final error",
            "max error",
            "target",
        ],
        rows,
    )
    ratio = max(final_ours, final_scipy) / max(min(final_ours, final_scipy), 1e-300)
    console.print(
        f"final error = max |θ(T) − reference(T)|, max error = the same over the "
        f"{N_SAVES} saved times; reference: DOP853 rtol={REFERENCE_RTOL:g}, "
        f"atol={REFERENCE_ATOL:g}; max |θ| = {np.max(np.abs(reference)):.2f}. "
        f"Same final accuracy (within {ACCURACY_FACTOR:g}×): "
        f"{'yes' if ratio <= ACCURACY_FACTOR else 'NO'} ({ratio:.1f}× apart). "
        f"Loss {losses[0]:.4f} → {losses[1]:.4f}. gradient_flow: "
        f"{int(result.stats['num_steps']):,} steps "
        f"({int(result.stats['num_rejected_steps']):,} rejected). The last row calls "
        "gradient_flow inside the user's own jax.jit, which skips its per-call input "
        "validation."
    )
    print(
        f"gradient_flow speed-up over scipy DOP853: {speedup:.2f}× (target ≥ {TARGET:g})"
    )


if __name__ == "__main__":
    main()
