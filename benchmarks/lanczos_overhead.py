"""Per-product overhead of `cr.sharpness`'s Lanczos: its time ÷ the same number of bare
Hessian-vector products.

For each case `cr.sharpness(..., return_result=True)` is timed warm (inside one
`jax.jit`, so the call's validation is traced once), its products are counted from
`.hvps`, and the baseline is a jitted `lax.fori_loop` of exactly that many products
(`jax.linearize` of the gradient, as the solver uses) on the same parameters. The
ratio is what the eigensolver adds around its products: the reorthogonalization
against the basis, the projected matrix, the convergence tests (`eigh`s). Cases: a
tanh MLP 64 → 32 → 32 → 10 on 200 random inputs with MSE (3,466 parameters, float64,
the size of the digits network of `examples/edge_of_stability.py`), k = 1 and k = 4;
a tanh MLP 64 → 256 → 128 → 10 (50,826 parameters, batch 256, float32), k = 1.

Run: `python benchmarks/lanczos_overhead.py [--quick]`.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import corridors as cr  # noqa: E402
from _harness import parse_args, print_header, print_table, seconds  # noqa: E402
from _timing import clock, warm_times  # noqa: E402


def mlp(widths, batch, dtype, seed=0):
    """(loss, params, args): a tanh MLP with squared error on random data."""
    keys = jax.random.split(jax.random.PRNGKey(seed), len(widths) + 1)
    params = [
        {
            "w": jax.random.normal(k, (m, n), dtype) / jnp.sqrt(jnp.asarray(m, dtype)),
            "b": jnp.zeros(n, dtype),
        }
        for k, m, n in zip(keys, widths[:-1], widths[1:], strict=False)
    ]
    x = jax.random.normal(keys[-2], (batch, widths[0]), dtype)
    y = jax.nn.one_hot(
        jax.random.randint(keys[-1], (batch,), 0, widths[-1]), widths[-1]
    )

    def loss(params, x, y):
        h = x
        for layer in params[:-1]:
            h = jnp.tanh(h @ layer["w"] + layer["b"])
        out = h @ params[-1]["w"] + params[-1]["b"]
        return 0.5 * jnp.mean(jnp.sum((out - y.astype(dtype)) ** 2, axis=1))

    return loss, params, (x, y)


def bare_products(loss, params, args, count):
    """A jitted loop of `count` Hessian-vector products, normalized like a Krylov
    step (so the iterate neither overflows nor vanishes)."""
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def run(flat, args):
        grad = lambda x: ravel_pytree(jax.grad(loss)(unravel(x), *args))[0]  # noqa: E731
        _, hvp = jax.linearize(grad, flat)

        def body(_, v):
            w = hvp(v)
            return w / jnp.linalg.norm(w)

        return jax.lax.fori_loop(0, count, body, jnp.ones_like(flat) / flat.size**0.5)

    return lambda: run(flat, args)


def measure(widths, batch, dtype, k, tol, repeats) -> list[str]:
    """One table row: products, bare and in-solver time per product, ratio, compile."""
    loss, params, data = mlp(widths, batch, dtype)
    key = jax.random.PRNGKey(1)
    solve = jax.jit(
        lambda p, d: cr.sharpness(loss, p, d, k=k, tol=tol, key=key, return_result=True)
    )
    products = int(solve(params, data).hvps)
    bare = bare_products(loss, params, data, products)
    calls = {"solve": lambda: solve(params, data), "bare": bare}
    compile_bare = clock(bare)
    warm = warm_times(calls, repeats=repeats)
    return [
        str(products),
        seconds(warm["bare"] / products),
        seconds(warm["solve"] / products),
        f"{warm['solve'] / warm['bare']:.2f}",
        seconds(compile_bare - warm["bare"]),
    ]


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("cr.sharpness: Lanczos overhead per Hessian-vector product", args)
    cases = [
        ("3,466 params, f64, k = 1", (64, 32, 32, 10), 200, jnp.float64, 1, 1e-6),
        ("3,466 params, f64, k = 4", (64, 32, 32, 10), 200, jnp.float64, 4, 1e-6),
        ("50,826 params, f32, k = 1", (64, 256, 128, 10), 256, jnp.float32, 1, 1e-3),
    ]
    rows = [[label, *measure(*case, args.repeats)] for label, *case in cases]
    print_table(
        "warm time per product",
        ["case", "products", "bare HVP", "in cr.sharpness", "÷ bare", "bare compile"],
        rows,
    )


if __name__ == "__main__":
    main()
