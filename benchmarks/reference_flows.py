"""Cost of one unit of flow time for each reference flow, in gradient-equivalents.

For every reference (`gradient_flow`, `modified_flow` of orders 1-3, `principal_flow`
with all eigenpairs and with rank 4, `central_flow`) the warm time of a solve over
[0, T] is divided by T and by the warm time of one jitted gradient measured in the
same run: "gradient-equivalents per unit of flow time". The solver's step count is
printed beside it (the cost splits into steps × evaluations per step × cost of one
field evaluation).

Models (float64): the digits network of `examples/edge_of_stability.py` (tanh MLP
64-32-32-10, 3,466 parameters, 200 digits, MSE), and a 50,826-parameter tanh MLP
64→256→128→10 on 256 random inputs; lr = 0.6 on digits (the example's
edge-of-stability run) and 0.05 on the MLP, every solve from the initial point over
[0, T]. There the central flow is below the edge (Σ = 0): its row is the cost of
tracking the top eigenpairs and third derivatives; at the edge each evaluation adds
one Clarabel call (about a millisecond). The dense-Hessian principal flow is skipped
on the MLP (its Hessian would take 20 GB).

Run: `python benchmarks/reference_flows.py [--quick]`.
"""

import itertools
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

import corridors as cr
from _harness import parse_args, print_header, print_table
from _timing import clock, warm_time

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "examples"))
import edge_of_stability as example  # noqa: E402


def mlp_problem():
    keys = jax.random.split(jax.random.key(1), 5)
    sizes = (64, 256, 128, 10)
    params = [
        {"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}
        for k, (a, b) in zip(keys[:3], itertools.pairwise(sizes), strict=True)
    ]
    x = jax.random.normal(keys[3], (256, 64))
    y = jax.nn.one_hot(jax.random.randint(keys[4], (256,), 0, 10), 10)
    return params, (x, y)


def references(lr, size):
    """name -> solve(params0, ts, args) for the references that fit the model."""
    loss = example.loss
    rows = {
        "gradient_flow": lambda p, ts, a: cr.gradient_flow(loss, p, ts, a).params,
        "modified_flow order 1": lambda p, ts, a: (
            cr.modified_flow(loss, p, ts, lr, a).params
        ),
        "modified_flow order 2": lambda p, ts, a: (
            cr.modified_flow(loss, p, ts, lr, a, order=2).params
        ),
        "modified_flow order 3": lambda p, ts, a: (
            cr.modified_flow(loss, p, ts, lr, a, order=3).params
        ),
        "principal_flow rank=4": lambda p, ts, a: (
            cr.principal_flow(loss, p, ts, lr, a, rank=4).params
        ),
        "central_flow (k=2)": lambda p, ts, a: (
            cr.central_flow(loss, p, ts, lr, a, rtol=1e-5, atol=1e-7).params
        ),
    }
    if size <= 5000:
        rows["principal_flow (all eigenpairs)"] = lambda p, ts, a: (
            cr.principal_flow(loss, p, ts, lr, a).params
        )
    return rows


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("Reference flows: gradient-equivalents per unit of flow time", args)
    x, y, _ = example.load_data(200)
    digits = example.init_mlp(jax.random.key(0), (64, 32, 32, 10))
    cases = [("digits, 3,466 params", digits, (x, y), 0.6, 1.0 if args.quick else 3.0)]
    mlp, data = mlp_problem()
    cases.append(("MLP, 50,826 params", mlp, data, 0.05, 0.2 if args.quick else 0.5))
    rows = []
    for name, params, data, lr, horizon in cases:
        size = sum(leaf.size for leaf in jax.tree.leaves(params))
        grad = jax.jit(lambda p, data=data: jax.grad(example.loss)(p, *data))
        clock(lambda: grad(params))  # noqa: B023
        gradient = warm_time(lambda: grad(params), repeats=args.repeats)  # noqa: B023
        ts = jnp.array([0.0, horizon])
        for label, solve in references(lr, size).items():
            run = lambda solve=solve: solve(params, ts, data)  # noqa: B023, E731
            first = clock(run)
            warm = warm_time(run, repeats=max(1, args.repeats // 3), number=1)
            rows.append(
                [name, label, f"{warm / horizon / gradient:,.0f}",
                 f"{warm:.2f} s", f"{first - warm:.1f} s"]
            )  # fmt: skip
            print(rows[-1], flush=True)
    print_table(
        "cost of one unit of flow time",
        ["model", "reference", "gradient-equivalents / unit time", "warm solve",
         "compile"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
