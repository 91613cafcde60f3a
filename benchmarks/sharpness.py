"""Sharpness solves: Hessian-vector products and memory of `cr.sharpness`.

Float32, random data, on a tanh MLP 64 → 256 → 128 → 10 (50,826 parameters, batch 256,
softmax cross-entropy) or, with `--model resnet18|resnet50`, the `corridors.train`
ResNet (CIFAR variant, `--width`, `--batch` random 32×32×3 images, batch norm in
measure mode). Three comparisons, each against a baseline run in the same script:

1. **Cold solve vs PyHessian's method.** Products until the top eigenvalue is within
   1e-3 (relative) of a tight reference (`cr.sharpness`, tol 1e-4: float32 round-off allows little more), from the same
   random start: Lanczos (the iteration of `cr.sharpness`, its Ritz value after each
   product) vs power iteration (its Rayleigh quotient after each product). Then each
   with its own stopping rule: PyHessian's (the eigenvalue changes by < 1e-3, at most
   100 iterations) and `cr.sharpness` at relative-residual `tol` 1e-3 and 3e-2, with
   the full basis (`method="lanczos"`) and the bounded-memory thick restart
   (`"restarted"`), with the errors they reach. Target: ≤ 1/3 of power's products.
2. **Warm vs cold along training.** `--measurements` solves, each `--every` GD steps
   apart (lr = 1/λ_max, half the stability edge): products to 1e-3 from a fresh random
   start vs from the previous top eigenvector (what `init=` does), and the same for
   the stopping-rule solves. Target: warm total ≤ 1/3 of cold total.
3. **Peak extra memory** of the compiled solve (XLA's memory analysis: temporaries
   plus outputs) minus that of the compiled power iteration (Hessian-vector products
   in a loop, the least any iterative solver holds), in units of n floats. Target for the restarted path: ≤ k + 10 (k = 1, and k = 4).

Run: `python benchmarks/sharpness.py [--quick] [--model resnet18 --width 16 --batch 8]`.
"""

import argparse
import time

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import corridors as cr
from _harness import print_header, print_table, verdict

TARGET_HVPS = 1 / 3
TARGET_WARM = 1 / 3
MEMORY_SLACK = 10


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer measurements")
    parser.add_argument(
        "--model", default="mlp", choices=["mlp", "resnet18", "resnet50"]
    )
    parser.add_argument("--width", type=int, default=16, help="ResNet base width")
    parser.add_argument("--batch", type=int, default=None, help="examples per batch")
    parser.add_argument("--measurements", type=int, default=None)
    parser.add_argument("--every", type=int, default=5, help="GD steps between solves")
    args = parser.parse_args()
    if args.batch is None:
        args.batch = 256 if args.model == "mlp" else 8
    if args.measurements is None:
        args.measurements = 4 if args.quick else 12
    args.repeats = 1
    return args


def cross_entropy(logits, labels):
    return -jnp.mean(
        jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1)
    )


def mlp_problem(batch):
    keys = jax.random.split(jax.random.key(0), 5)
    sizes = [64, 256, 128, 10]
    params = [
        (jax.random.normal(k, (a, b)) / jnp.sqrt(a), jnp.zeros(b))
        for k, a, b in zip(keys[:3], sizes[:-1], sizes[1:], strict=True)
    ]

    def loss(params, x, labels):
        for w, b in params[:-1]:
            x = jnp.tanh(x @ w + b)
        w, b = params[-1]
        return cross_entropy(x @ w + b, labels)

    x = jax.random.normal(keys[3], (batch, 64))
    labels = jax.random.randint(keys[4], (batch,), 0, 10)
    return loss, params, (x, labels)


def resnet_problem(name, width, batch):
    from corridors.train import make_network

    network = make_network(name, num_classes=10, image_shape=(32, 32, 3), width=width)
    params, stats = network.init(0)
    keys = jax.random.split(jax.random.key(1))
    images = jax.random.normal(keys[0], (batch, 32, 32, 3))
    labels = jax.random.randint(keys[1], (batch,), 0, 10)

    def loss(params, images, labels, stats):
        logits, _ = network.apply(params, stats, images, mode="measure")
        return cross_entropy(logits, labels)

    return loss, params, (images, labels, stats)


def power_iteration(loss, params, args, *, tol=1e-3, max_iter=100):
    """PyHessian's `eigenvalues(top_n=1)`: power iteration, stop on a relative change
    of the eigenvalue below `tol`. Returns (eigenvalue, products)."""
    flat, unravel = ravel_pytree(params)
    grad = lambda x: ravel_pytree(jax.grad(loss)(unravel(x), *args))[0]  # noqa: E731
    _, hvp = jax.linearize(grad, flat)
    v = jax.random.normal(jax.random.key(7), flat.shape, flat.dtype)
    v = v / jnp.linalg.norm(v)

    def cond(carry):
        i, _, eigenvalue, previous = carry
        change = jnp.abs(eigenvalue - previous) / (jnp.abs(previous) + 1e-6)
        return (i < max_iter) & ((i < 2) | (change >= tol))

    def body(carry):
        i, v, eigenvalue, _ = carry
        w = hvp(v)
        return i + 1, w / jnp.linalg.norm(w), jnp.dot(v, w), eigenvalue

    zero = jnp.zeros((), flat.dtype)
    i, _, eigenvalue, _ = jax.lax.while_loop(cond, body, (0, v, zero, zero))
    return eigenvalue, i


def products_to_accuracy(values, reference, accuracy=1e-3):
    """1 + the first index whose value is within `accuracy` (relative) of `reference`."""
    for index, value in enumerate(values):
        if abs(float(value) - reference) <= accuracy * abs(reference):
            return index + 1
    return None


def power_trace(loss, params, args, start, steps=100):
    """The Rayleigh quotient after each of `steps` power iterations."""
    flat, unravel = ravel_pytree(params)
    grad = lambda x: ravel_pytree(jax.grad(loss)(unravel(x), *args))[0]  # noqa: E731
    _, hvp = jax.linearize(grad, flat)

    def step(v, _):
        w = hvp(v)
        return w / jnp.linalg.norm(w), jnp.dot(v, w)

    return jax.lax.scan(step, start / jnp.linalg.norm(start), length=steps)[1]


def lanczos_trace(loss, params, args, start, steps=40):
    """The top Ritz value after each of `steps` Lanczos products (matfree's Lanczos,
    full reorthogonalization: the leading j×j block of T is the j-step matrix)."""
    from matfree import decomp

    flat, unravel = ravel_pytree(params)
    grad = lambda x: ravel_pytree(jax.grad(loss)(unravel(x), *args))[0]  # noqa: E731
    _, hvp = jax.linearize(grad, flat)
    t = decomp.tridiag_sym(steps, materialize=True)(hvp, start).J_small
    return [jnp.linalg.eigvalsh(t[:j, :j])[-1] for j in range(1, steps + 1)]


def memory_in_n(fn, *example, n, itemsize):
    """Temporaries + outputs of the compiled `fn`, in units of n floats."""
    stats = jax.jit(fn).lower(*example).compile().memory_analysis()
    if stats is None:  # pragma: no cover - a backend without memory analysis
        return float("nan")
    used = stats.temp_size_in_bytes + stats.output_size_in_bytes
    return used / (n * itemsize)


def main():
    args = parse()
    print_header(f"sharpness solves: {args.model}", args)
    if args.model == "mlp":
        loss, params, data = mlp_problem(args.batch)
    else:
        loss, params, data = resnet_problem(args.model, args.width, args.batch)
    flat, _ = ravel_pytree(params)
    n, itemsize = flat.size, flat.dtype.itemsize
    print(f"n = {n:,} parameters, batch {args.batch}, {flat.dtype}")

    def solve(params, method, tol, init=None, key=None):
        return cr.sharpness(
            loss, params, data, k=1, tol=tol, method=method, init=init, key=key,
            return_result=True,
        )  # fmt: skip

    # 1. Cold solves vs power iteration.
    start = time.perf_counter()
    reference = float(solve(params, "lanczos", 1e-4).eigenvalues[0])
    print(f"reference λ_max = {reference:.6g} ({time.perf_counter() - start:.1f} s)")
    lanczos_values = jax.jit(lambda p, v: lanczos_trace(loss, p, data, v))
    power_values = jax.jit(lambda p, v: power_trace(loss, p, data, v))
    random_start = jax.random.normal(jax.random.key(7), (n,), flat.dtype)
    power_needs = products_to_accuracy(power_values(params, random_start), reference)
    lanczos_needs = products_to_accuracy(
        lanczos_values(params, random_start), reference
    )
    ratio = lanczos_needs / power_needs if power_needs and lanczos_needs else None
    shown = (
        f"{ratio:.2f}  {verdict(ratio, TARGET_HVPS, at_most=True)}" if ratio else "-"
    )
    rows = [
        ["power iteration (PyHessian's method)", str(power_needs), "1 (baseline)"],
        ["Lanczos (the iteration of cr.sharpness)", str(lanczos_needs), shown],
    ]
    print_table(
        "products until the top eigenvalue is within 1e-3 (relative) of the reference, "
        "same random start",
        ["iteration", "HVPs", "ratio to power"],
        rows,
    )
    power_value, power_hvps = jax.jit(lambda p: power_iteration(loss, p, data))(params)
    power_hvps = int(power_hvps)
    power_error = abs(float(power_value) - reference) / abs(reference)
    rows = [["power iteration, stop on change < 1e-3", str(power_hvps),
             f"{power_error:.1e}", "1 (baseline)"]]  # fmt: skip
    for method in ("lanczos", "restarted"):
        for tol in (1e-3, 3e-2):
            found = solve(params, method, tol)
            hvps = int(found.hvps)
            error = abs(float(found.eigenvalues[0]) - reference) / abs(reference)
            rows.append(
                [f"cr.sharpness({method!r}, tol={tol:g})", str(hvps), f"{error:.1e}",
                 f"{hvps / power_hvps:.2f}"]
            )  # fmt: skip
    print_table(
        "with their stopping rules (tol is a relative residual for cr.sharpness)",
        ["solver", "HVPs", "relative error", "ratio to power"],
        rows,
    )

    # 2. Warm vs cold along a short GD run.
    lr = 1.0 / reference
    grad = jax.jit(jax.grad(loss))
    step = jax.jit(lambda p: jax.tree.map(lambda x, g: x - lr * g, p, grad(p, *data)))
    point, previous = params, None
    oracle = {"cold": 0, "warm": 0}
    rule = {(method, tol, start): 0 for method in ("lanczos", "restarted")
            for tol in (1e-3, 3e-2) for start in ("cold", "warm")}  # fmt: skip
    worst = 0.0
    for index in range(args.measurements):
        for _ in range(args.every):
            point = step(point)
        key = jax.random.key(100 + index)
        exact = solve(point, "lanczos", 1e-4)
        value = float(exact.eigenvalues[0])
        fresh = jax.random.normal(key, (n,), flat.dtype)
        if previous is not None:  # the first warm solve has nothing to start from
            warm_start = ravel_pytree(jax.tree.map(lambda v: v[0], previous))[0]
            oracle["cold"] += products_to_accuracy(lanczos_values(point, fresh), value)
            oracle["warm"] += products_to_accuracy(
                lanczos_values(point, warm_start), value
            )
        for method, tol, start in rule:
            if previous is None:
                continue
            init = previous if start == "warm" else None
            found = solve(point, method, tol, init=init, key=key)
            rule[method, tol, start] += int(found.hvps)
            worst = max(worst, abs(float(found.eigenvalues[0]) - value) / abs(value))
        previous = exact.eigenvectors
    ratio = oracle["warm"] / oracle["cold"]
    rows = [
        ["Lanczos, products to 1e-3 (oracle stop)", str(oracle["cold"]),
         str(oracle["warm"]), f"{ratio:.2f}  {verdict(ratio, TARGET_WARM, at_most=True)}"]
    ]  # fmt: skip
    for method in ("lanczos", "restarted"):
        for tol in (1e-3, 3e-2):
            cold, warm = rule[method, tol, "cold"], rule[method, tol, "warm"]
            rows.append(
                [f"cr.sharpness({method!r}, tol={tol:g})", str(cold), str(warm),
                 f"{warm / cold:.2f}  {verdict(warm / cold, TARGET_WARM, at_most=True)}"]
            )  # fmt: skip
    print_table(
        f"{args.measurements - 1} solves, {args.every} GD steps apart (lr = 1/λ_max), "
        "warm = started from the previous top eigenvector; worst relative error of "
        f"the stopping-rule solves {worst:.1e}",
        ["solver", "cold HVPs", "warm HVPs", "warm / cold"],
        rows,
    )

    # 3. Peak extra memory.
    # The baseline is PyHessian's power iteration: Hessian-vector products in a loop
    # (XLA holds the linearization's residuals for the loop, about 2× one product's).
    hvp_memory = memory_in_n(
        lambda p: power_iteration(loss, p, data), params, n=n, itemsize=itemsize
    )
    rows = []
    for method, k in (("restarted", 1), ("restarted", 4), ("lanczos", 1)):
        total = memory_in_n(
            lambda p, method=method, k=k: cr.sharpness(
                loss, p, data, k=k, method=method, return_result=True
            ),
            params,
            n=n,
            itemsize=itemsize,
        )
        extra = total - hvp_memory
        target = (
            verdict(extra, k + MEMORY_SLACK, at_most=True)
            if method == "restarted"
            else "(full basis: max_iter + 1 vectors)"
        )
        rows.append([f"{method}, k={k}", f"{total:.1f}", f"{extra:.1f}", target])

    # Cost of one solve as the training loop runs it (restarted, tol 1e-2), in
    # gradient-equivalents of wall time (warm: compile time apart).
    def best_of(fn, repeats=3):
        jax.block_until_ready(fn())
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times.append(time.perf_counter() - start)
        return min(times)

    gradient_time = best_of(lambda: grad(params, *data))
    found = solve(params, "restarted", 1e-2)
    solve_time = best_of(lambda: solve(params, "restarted", 1e-2).eigenvalues)
    print(
        f"one restarted solve at tol 1e-2: {int(found.hvps)} HVPs, "
        f"{solve_time:.3g} s = {solve_time / gradient_time:.1f} gradient-equivalents "
        f"(one gradient {gradient_time:.3g} s)"
    )
    print_table(
        f"compiled memory in units of n floats (power iteration: {hvp_memory:.1f})",
        ["solve", "temporaries + outputs", "extra over power iteration", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
