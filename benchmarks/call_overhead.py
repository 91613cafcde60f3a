"""Per-call overhead of `corridors.hvp` called eagerly: time per call / a bare jitted hvp.

On a 10-parameter quadratic-plus-quartic loss (float64) the product itself costs a few
microseconds, so the ratio measures what a call adds around the compiled kernel: input
validation, the dispatch of the kernel, and any device round trip a check forces. Three
rows, all warm (compile time reported apart):

- `jax.jit(jvp∘grad)`: the bare product a user would write, the baseline;
- `cr.hvp(loss, p, v)` called eagerly (the library validates and dispatches its
  jitted kernel on every call);
- `jax.jit(λ p, v: cr.hvp(loss, p, v))`: the validation is traced once, so this is
  the cost inside a user's jitted step.

Run: `python benchmarks/call_overhead.py [--quick]`.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import corridors as cr  # noqa: E402
from _harness import parse_args, print_header, print_table, seconds  # noqa: E402
from _timing import clock, warm_times  # noqa: E402

N = 10


def loss(params, scale):
    return 0.5 * jnp.sum(scale * params**2) + 0.25 * jnp.sum(params**4)


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("corridors.hvp per-call overhead (10 parameters)", args)
    params = jnp.linspace(-1.0, 1.0, N)
    tangent = jnp.ones(N)
    data = (jnp.arange(1.0, N + 1),)

    bare = jax.jit(
        lambda p, v, d: jax.jvp(lambda q: jax.grad(loss)(q, *d), (p,), (v,))[1]
    )
    jitted = jax.jit(lambda p, v, d: cr.hvp(loss, p, v, d))
    calls = {
        "bare": lambda: bare(params, tangent, data),
        "eager": lambda: cr.hvp(loss, params, tangent, data),
        "jitted": lambda: jitted(params, tangent, data),
    }
    first = {name: clock(fn) for name, fn in calls.items()}
    warm = warm_times(calls, repeats=args.repeats)
    expected = bare(params, tangent, data)
    for name, fn in calls.items():  # the same product every way
        assert jnp.allclose(fn(), expected, rtol=1e-14), name
    labels = {
        "bare": "jax.jit(jvp∘grad) (baseline)",
        "eager": "cr.hvp, eager call",
        "jitted": "cr.hvp inside jax.jit",
    }
    print_table(
        "warm time per call",
        ["call", "warm", "÷ bare", "compile"],
        [
            [
                labels[name],
                seconds(warm[name]),
                f"{warm[name] / warm['bare']:.2f}",
                seconds(first[name] - warm[name]),
            ]
            for name in calls
        ],
    )
    print(
        f"eager cr.hvp / bare: {warm['eager'] / warm['bare']:.2f} "
        f"({seconds(warm['eager'] - warm['bare'])} per call added)"
    )


if __name__ == "__main__":
    main()
