"""The Hessian's spectrum beyond its top: trace, spectral density, per-block sharpness.

All matrix-free, on Hessian-vector products (forward-over-reverse, linearized once).
Hutchinson's estimator comes from `matfree.stochtrace`, the Lanczos tridiagonalization
of stochastic Lanczos quadrature from `matfree.decomp`; Hutch++ (which matfree does not
ship) is the few lines of Meyer et al. (2021) on top of a QR.
"""

from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray, PyTree
from matfree import decomp, stochtrace

from ._checks import (
    InvalidInputError,
    check_args,
    check_finite,
    check_key,
    check_loss,
    check_real,
    checked_params,
    traced_floats,
)
from ._lanczos import flat_hvp, plan, solve


def _check_count(where: str, name: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(
            f"{where}: `{name}` must be an int ≥ {minimum}, got {value!r}."
        )
    return value


class HessianTrace(eqx.Module):
    """What `hessian_trace` returns: `.trace`, the estimate of tr H, and `.stderr`, its
    standard error (0 where the estimate is exact)."""

    trace: Array
    stderr: Array


def hessian_trace(
    loss: Callable,
    params: PyTree,
    args: tuple = (),
    *,
    key: PRNGKeyArray,
    n_samples: int,
    method: Literal["hutch++", "hutchinson"] = "hutch++",
) -> HessianTrace:
    """A stochastic estimate of the Hessian's trace, tr H, with its standard error.

    `"hutchinson"`: the mean of vᵀHv over `n_samples` Rademacher vectors v (Hutchinson
    1989; `matfree.stochtrace`), standard error std/√n_samples. `"hutch++"` (Meyer,
    Musco, Musco & Woodruff 2021): a third of the products sketch the top of the
    spectrum (Q = orth(H S)), whose trace tr(QᵀHQ) is taken exactly; the last third
    estimates the trace of the deflated rest by Hutchinson, and the standard error is
    that of this remainder. Error O(1/m) instead of O(1/√m) for m products when the
    spectrum decays; exact once the sketch spans the whole space.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point θ, any pytree with n entries.
    - `args`: extra arguments passed to `loss`.
    - `key`: a PRNG key (`jax.random.key(0)`).
    - `n_samples`: Hessian-vector products to spend, ≥ 1 (≥ 3 for `"hutch++"`).
    - `method`: `"hutch++"` (default) or `"hutchinson"`.

    **Returns:**

    A `HessianTrace` with `.trace` and `.stderr`.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: 0.5 * jnp.sum(jnp.arange(1.0, 5.0) * p**2)  # H = diag(1, 2, 3, 4)
    estimate = cr.hessian_trace(loss, jnp.ones(4), key=jax.random.key(0), n_samples=12)
    print(estimate.trace)  # 10.0 (the 4 sketch vectors span the space: exact)
    ```
    """
    where = "hessian_trace"
    params = checked_params(where, loss, params, args, "params")
    args = traced_floats(args)
    key = check_key(where, key)
    if method not in ("hutch++", "hutchinson"):
        raise InvalidInputError(
            f"{where}: `method` must be 'hutch++' or 'hutchinson', got {method!r}."
        )
    _check_count(where, "n_samples", n_samples, minimum=3 if method == "hutch++" else 1)
    return _hessian_trace(loss, params, args, key, n_samples=n_samples, method=method)


@eqx.filter_jit
def _hessian_trace(loss, params, args, key, *, n_samples, method):
    check_loss("hessian_trace", loss, params, args)
    # Tied to the output: a NaN in `args` or `params` need not reach H·v (a quadratic's
    # does not depend on either), so a check tied to the inputs would be optimized away.
    estimate = trace_estimate(
        loss, params, args, key, n_samples=n_samples, method=method
    )
    estimate = check_finite("hessian_trace", "params", params, tie=estimate)
    return check_args("hessian_trace", args, estimate)


def trace_estimate(loss, params, args, key, *, n_samples, method):
    """The Hutch++ or Hutchinson estimate of tr H at `params`; never raises."""
    flat, hvp_flat = flat_hvp(loss, params, args)
    if method == "hutchinson":
        sampler = stochtrace.sampler_signs(flat, num=n_samples)
        estimate = stochtrace.estimator_monte_carlo_mean_and_sem(
            stochtrace.monte_carlo_trace(), sampler
        )
        trace, stderr = estimate(hvp_flat, key)
        return HessianTrace(trace, stderr)
    n = flat.size
    # A third sketches, a third multiplies the sketch's basis, the rest probe.
    rank = min(n_samples // 3, n)
    count = n_samples - 2 * rank
    matmat = jax.vmap(hvp_flat, in_axes=1, out_axes=1)
    sketch_key, probe_key = jax.random.split(key)
    signs = lambda k, m: jax.random.rademacher(k, (n, m), flat.dtype)  # noqa: E731
    q, _ = jnp.linalg.qr(matmat(signs(sketch_key, rank)))
    exact = jnp.trace(q.T @ matmat(q))
    if rank == n:  # the sketch spans the space: tr(QᵀHQ) is tr H
        return HessianTrace(exact, jnp.zeros_like(exact))
    g = signs(probe_key, count)
    g = g - q @ (q.T @ g)
    samples = jnp.sum(g * matmat(g), axis=0)
    stderr = jnp.std(samples, ddof=1) / jnp.sqrt(count) if count > 1 else jnp.inf
    return HessianTrace(exact + jnp.mean(samples), stderr)


class HessianDensity(eqx.Module):
    """What `hessian_density` returns.

    - `nodes`, `weights`: shape `(n_samples, order)`: per start vector v, the Gauss
      quadrature of the spectral measure μ_v = Σᵢ (uᵢᵀv)²/‖v‖² δ(λᵢ) (Ritz values and
      squared first components of the Lanczos eigenvectors; each row sums to 1). Their
      average over rows estimates the spectral density (1/n) Σᵢ δ(λᵢ).
    - `grid`, `density`: the average smoothed by a Gaussian of width `sigma`.
    - `sigma`: the width used.
    - `mean`, `variance` (properties): of the quadrature measure, estimating
      tr(H)/n and tr(H²)/n − (tr(H)/n)².
    """

    nodes: Array
    weights: Array
    grid: Array
    density: Array
    sigma: Array

    @property
    def mean(self) -> Array:
        return jnp.mean(jnp.sum(self.weights * self.nodes, axis=1))

    @property
    def variance(self) -> Array:
        second = jnp.mean(jnp.sum(self.weights * self.nodes**2, axis=1))
        return second - self.mean**2


def hessian_density(
    loss: Callable,
    params: PyTree,
    args: tuple = (),
    *,
    key: PRNGKeyArray,
    n_samples: int = 10,
    order: int = 64,
    sigma: float | None = None,
    grid: int | Array = 512,
) -> HessianDensity:
    """The Hessian's spectral density by stochastic Lanczos quadrature.

    For each of `n_samples` Rademacher start vectors, `order` Lanczos steps (full
    reorthogonalization, `matfree.decomp.tridiag_sym`) give an `order`-point Gauss
    quadrature of the spectral measure seen from that vector: exact for polynomial
    moments of degree < 2·`order`, and with nodes converging to the extreme
    eigenvalues. The average over start vectors is an unbiased estimate of the
    density (Lin, Saad & Yang 2016; Ghorbani, Krishnan & Xiao 2019).

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point θ, any pytree with n entries.
    - `args`: extra arguments passed to `loss`.
    - `key`: a PRNG key (`jax.random.key(0)`).
    - `n_samples`: start vectors, ≥ 1 (cost: `n_samples`·`order` products, vmapped).
    - `order`: Lanczos steps per start vector, 1 ≤ order ≤ n (memory `order`·n per
      start vector). Keep it below the number of distinct eigenvalues: past an
      invariant subspace matfree's Lanczos continues on round-off and its extra
      nodes are meaningless (a Hessian of a network has far more distinct
      eigenvalues than any useful order).
    - `sigma`: width of the Gaussian smoothing (default 1% of the nodes' range).
    - `grid`: the number of evaluation points spanning the nodes' range ± 5σ, or the
      points themselves (a 1-D array).

    **Returns:**

    A `HessianDensity` (`.nodes`, `.weights`, `.grid`, `.density`, `.mean`,
    `.variance`).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: 0.5 * jnp.sum(jnp.arange(1.0, 5.0) * p**2)  # H = diag(1, 2, 3, 4)
    found = cr.hessian_density(loss, jnp.ones(4), key=jax.random.key(0), order=4)
    print(found.mean, found.variance)  # 2.5 1.25
    ```
    """
    where = "hessian_density"
    params = checked_params(where, loss, params, args, "params")
    args = traced_floats(args)
    key = check_key(where, key)
    n = sum(leaf.size for leaf in jax.tree.leaves(params))
    _check_count(where, "n_samples", n_samples)
    _check_count(where, "order", order)
    if order > n:
        raise InvalidInputError(
            f"{where}: `order` must be at most the number of parameters {n}, got "
            f"{order}."
        )
    if sigma is not None and not (
        isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and sigma > 0
    ):
        raise InvalidInputError(f"{where}: `sigma` must be > 0, got {sigma!r}.")
    if isinstance(grid, int) and not isinstance(grid, bool):
        _check_count(where, "grid", grid, minimum=2)
    else:
        grid = jnp.asarray(check_real(where, "grid", grid))
        if grid.ndim != 1 or not jnp.issubdtype(grid.dtype, jnp.floating):
            raise InvalidInputError(
                f"{where}: `grid` must be an int or a 1-D float array, got "
                f"shape {grid.shape} {grid.dtype}."
            )
    return _hessian_density(
        loss, params, args, key, grid, sigma=sigma, n_samples=n_samples, order=order
    )


@eqx.filter_jit
def _hessian_density(loss, params, args, key, grid, *, sigma, n_samples, order):
    check_loss("hessian_density", loss, params, args)
    flat, hvp_flat = flat_hvp(loss, params, args)
    tridiagonalize = decomp.tridiag_sym(order, materialize=True, reortho="full")
    starts = jax.random.rademacher(key, (n_samples, flat.size), flat.dtype)

    def quadrature(start):
        nodes, vectors = jnp.linalg.eigh(tridiagonalize(hvp_flat, start).J_small)
        return nodes, vectors[0] ** 2

    nodes, weights = jax.vmap(quadrature)(starts)
    low, high = jnp.min(nodes), jnp.max(nodes)
    spread = jnp.maximum(high - low, jnp.finfo(flat.dtype).eps * jnp.abs(high) + 1e-30)
    width = 0.01 * spread if sigma is None else jnp.asarray(sigma, flat.dtype)
    if isinstance(grid, int):
        grid = jnp.linspace(low - 5 * width, high + 5 * width, grid)
    grid = grid.astype(flat.dtype)
    z = (grid[:, None, None] - nodes[None]) / width
    kernel = jnp.exp(-0.5 * z**2) / (width * jnp.sqrt(2 * jnp.pi))
    density = jnp.mean(jnp.sum(weights[None] * kernel, axis=2), axis=1)
    found = HessianDensity(nodes, weights, grid, density, width)
    found = check_finite("hessian_density", "params", params, tie=found)  # as above
    return check_args("hessian_density", args, found)


def block_sharpness(
    loss: Callable,
    params: PyTree,
    args: tuple = (),
    *,
    is_leaf: Callable | None = None,
    which: Literal["largest", "smallest", "magnitude"] = "largest",
    key: PRNGKeyArray | None = None,
    tol: float = 1e-6,
    max_iter: int | None = None,
) -> PyTree:
    """The top eigenvalue of each diagonal block of the Hessian, in one call.

    A block is a leaf of `params`, or, with `is_leaf`, each sub-tree for which
    `is_leaf` is true (e.g. a layer's `{"kernel", "bias"}`): H_bb = ∂²L/∂θ_b², the
    curvature seen when only block b moves. Each block gets the eigensolve of
    `sharpness` (Lanczos on block Hessian-vector products, `tol` relative residual),
    all compiled into one program.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params`: the point θ, any pytree.
    - `args`: extra arguments passed to `loss`.
    - `is_leaf`: as in `jax.tree.flatten`: which sub-trees are blocks (default: every
      array leaf).
    - `which`: `"largest"` (default), `"smallest"` or `"magnitude"`, as in `sharpness`.
    - `key`: PRNG key for the start vectors (default `jax.random.key(0)`).
    - `tol`: relative residual tolerance, as in `sharpness`.
    - `max_iter`: Hessian-vector products per block, as in `sharpness`.

    **Returns:**

    A pytree like `params` (down to the blocks) with one scalar per block. Not
    converging is an error naming `block_sharpness`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: jnp.sum(p["a"] ** 2) * (1 + p["b"] ** 2)
    params = {"a": jnp.ones(2), "b": jnp.array(1.0)}
    blocks = cr.block_sharpness(loss, params)
    print(float(blocks["a"]), float(blocks["b"]))  # 4.0 4.0
    ```
    """
    where = "block_sharpness"
    params = checked_params(where, loss, params, args, "params")
    args = traced_floats(args)
    if is_leaf is not None and not callable(is_leaf):
        raise InvalidInputError(f"{where}: `is_leaf` must be callable or None.")
    treedef = jax.tree.structure(params, is_leaf=is_leaf)
    plans = block_plans(where, params, is_leaf, tol=tol, which=which, max_iter=max_iter)
    if key is None:
        key = jax.random.key(0)
    else:
        key = check_key(where, key)
    values = _block_sharpness(
        loss, params, args, key, is_leaf=is_leaf, plans=tuple(plans)
    )
    return jax.tree.unflatten(treedef, values)


def block_plans(
    where: str, params: PyTree, is_leaf, *, tol: float, which: str, max_iter
) -> tuple:
    """The eigensolve plan of each block of `params` (checking the options)."""
    blocks = jax.tree.leaves(params, is_leaf=is_leaf)
    return tuple(
        plan(
            where,
            max(sum(leaf.size for leaf in jax.tree.leaves(block)), 1),
            k=1,
            tol=tol,
            which=which,
            method="auto",
            max_iter=max_iter,
            warm=False,
        )
        for block in blocks
    )


def block_eigenvalues(loss, params, args, key, *, is_leaf, plans):
    """(the wanted eigenvalue of each block's Hessian, whether each converged): two
    lists in the order of `jax.tree.leaves(params, is_leaf=is_leaf)`; never raises."""
    blocks, treedef = jax.tree.flatten(params, is_leaf=is_leaf)
    values, converged = [], []
    for index, (block, options) in enumerate(zip(blocks, plans, strict=True)):

        def block_loss(sub, *args, index=index):
            moved = [*blocks[:index], sub, *blocks[index + 1 :]]
            return loss(jax.tree.unflatten(treedef, moved), *args)

        flat, hvp_flat = flat_hvp(block_loss, block, args)
        start_key, restart_key = jax.random.split(jax.random.fold_in(key, index))
        start = jax.random.normal(start_key, flat.shape, flat.dtype)
        found = solve(hvp_flat, start, restart_key, options)
        values.append(found.eigenvalues[0])
        converged.append(found.converged)
    return values, converged


@eqx.filter_jit
def _block_sharpness(loss, params, args, key, *, is_leaf, plans):
    check_loss("block_sharpness", loss, params, args)
    values, converged = block_eigenvalues(
        loss, params, args, key, is_leaf=is_leaf, plans=plans
    )
    return [
        eqx.error_if(
            value,
            ~ok,
            f"block_sharpness: Lanczos did not reach tol={options.tol} on block "
            f"{index} within max_iter={options.max_iter} Hessian-vector products; "
            "raise `max_iter` or `tol`.",
        )
        for index, (value, ok, options) in enumerate(
            zip(values, converged, plans, strict=True)
        )
    ]
