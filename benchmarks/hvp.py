"""Hessian-vector product cost: `corridors.hvp` time / `jax.grad` time.

Float32, random data, both sides jitted the way a user writes them inside a training
step (`jax.jit` of a function that calls `cr.hvp` with the loss closed over):

- a tanh MLP 64 → 256 → 128 → 10 (50,826 parameters), batch 256, softmax cross-entropy;
- a small tanh CNN written with `jax.lax.conv_general_dilated` (3 → 16 → 32 → 32
  channels, 3×3 kernels, global average pool, dense 32 → 10; 14,666 parameters) on a
  batch of 64 random 32×32×3 images, halving the resolution twice either with
  stride-2 convolutions (the usual design) or with 2×2 average pooling.

Forward-over-reverse costs about two gradients when the work is dominated by layers
whose inputs carry no tangent; a bilinear layer (matmul, conv) with tangents on both
inputs costs 3× its gradient under the product rule. Target ratio ≤ 2.5. The row
`jvp∘grad` times the bare `jax.jvp(jax.grad(loss))` and separates the library's
overhead (input validation, finiteness check) from the cost of the product itself.

Run: `python benchmarks/hvp.py [--quick]`.
"""

from functools import partial

import jax
import jax.numpy as jnp

import corridors as cr
from _harness import parse_args, print_header, print_table, seconds, verdict
from _timing import clock, warm_times

TARGET = 2.5


def cross_entropy(logits, labels):
    return -jnp.mean(
        jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1)
    )


def init_dense(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        (
            jax.random.normal(k, (n_in, n_out)) / jnp.sqrt(n_in),
            jnp.zeros(n_out),
        )
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp_loss(params, x, labels):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = params[-1]
    return cross_entropy(x @ w + b, labels)


def mlp_problem(key):
    k_params, k_x, k_y = jax.random.split(key, 3)
    params = init_dense(k_params, [64, 256, 128, 10])
    x = jax.random.normal(k_x, (256, 64))
    labels = jax.random.randint(k_y, (256,), 0, 10)
    return mlp_loss, params, (x, labels)


CONV_CHANNELS = ((3, 16), (16, 32), (32, 32))  # 3×3 kernels, "SAME" padding
DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def average_pool(x):
    window = (1, 2, 2, 1)
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID") / 4


def make_cnn_loss(downsample):
    """A 3-conv tanh CNN halving the resolution twice, by stride-2 convs or pooling."""

    def loss(params, images, labels):
        convs, (w, b) = params
        x = images
        for layer, (kernel, bias) in enumerate(convs):
            stride = 2 if downsample == "stride" and layer > 0 else 1
            x = jax.lax.conv_general_dilated(
                x, kernel, (stride, stride), "SAME", dimension_numbers=DIMENSIONS
            )
            x = jnp.tanh(x + bias)
            if downsample == "pool" and layer < 2:
                x = average_pool(x)
        return cross_entropy(x.mean(axis=(1, 2)) @ w + b, labels)

    return loss


def cnn_problem(key, downsample):
    keys = jax.random.split(key, len(CONV_CHANNELS) + 3)
    convs = [
        (
            jax.random.normal(k, (3, 3, c_in, c_out)) / jnp.sqrt(9 * c_in),
            jnp.zeros(c_out),
        )
        for k, (c_in, c_out) in zip(keys, CONV_CHANNELS, strict=False)
    ]
    (head,) = init_dense(keys[-3], [CONV_CHANNELS[-1][1], 10])
    images = jax.random.normal(keys[-2], (64, 32, 32, 3))
    labels = jax.random.randint(keys[-1], (64,), 0, 10)
    return make_cnn_loss(downsample), (convs, head), (images, labels)


def n_params(params):
    return sum(leaf.size for leaf in jax.tree.leaves(params))


def benchmark(name, problem, repeats):
    loss, params, data = problem(jax.random.key(0))
    tangent = jax.tree.map(
        lambda p, k: jax.random.normal(k, p.shape, p.dtype),
        params,
        jax.tree.unflatten(
            jax.tree.structure(params),
            list(jax.random.split(jax.random.key(1), len(jax.tree.leaves(params)))),
        ),
    )

    grad_step = jax.jit(lambda p, d: jax.grad(loss)(p, *d))
    bare_step = jax.jit(
        lambda p, v, d: jax.jvp(lambda q: jax.grad(loss)(q, *d), (p,), (v,))[1]
    )
    hvp_step = jax.jit(lambda p, v, d: cr.hvp(loss, p, v, d))

    calls = {
        "grad": lambda: grad_step(params, data),
        "bare": lambda: bare_step(params, tangent, data),
        "hvp": lambda: hvp_step(params, tangent, data),
    }
    first = {name: clock(fn) for name, fn in calls.items()}
    warm = warm_times(calls, repeats=repeats)
    compile_time = {name: first[name] - warm[name] for name in calls}

    # Same product both ways (a cheap correctness guard on what is timed).
    error = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(
            jax.tree.leaves(bare_step(params, tangent, data)),
            jax.tree.leaves(hvp_step(params, tangent, data)),
            strict=True,
        )
    )
    assert error <= 1e-4, f"{name}: cr.hvp disagrees with jvp-of-grad by {error}"

    ratio = {name: warm[name] / warm["grad"] for name in calls}
    labels = {
        "grad": "jax.grad (baseline)",
        "bare": "jvp∘grad (bare JAX)",
        "hvp": "cr.hvp",
    }
    rows = [
        [
            labels[name],
            seconds(warm[name]),
            f"{ratio[name]:.2f}",
            seconds(compile_time[name]),
            verdict(ratio[name], TARGET, at_most=True) if name == "hvp" else "",
        ]
        for name in calls
    ]
    print_table(
        f"{name}: {n_params(params):,} parameters",
        ["jitted", "warm", "÷ grad", "compile", "target"],
        rows,
    )
    return ratio["hvp"]


def main():
    args = parse_args(__doc__.splitlines()[0])
    print_header("corridors.hvp vs jax.grad", args)
    ratios = {
        "MLP": benchmark("tanh MLP, batch 256", mlp_problem, args.repeats),
        "CNN (stride-2 convs)": benchmark(
            "tanh CNN, stride-2 convs, 64 × 32×32×3 images",
            partial(cnn_problem, downsample="stride"),
            args.repeats,
        ),
        "CNN (avg-pool)": benchmark(
            "tanh CNN, 2×2 average pooling, 64 × 32×32×3 images",
            partial(cnn_problem, downsample="pool"),
            args.repeats,
        ),
    }
    summary = ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items())
    print(f"hvp/grad ratio: {summary} (target ≤ {TARGET})")


if __name__ == "__main__":
    main()
