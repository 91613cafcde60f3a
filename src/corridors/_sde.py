"""SGD's stochastic modified equation (SME) as a diffrax SDE: `sgd_sde` and `Paths`.

With per-example losses ℓᵢ, the full-batch loss L = (1/N)Σℓᵢ, gᵢ = ∇ℓᵢ and the
per-example gradient covariance Σ = (1/N)Σ(gᵢ − ḡ)(gᵢ − ḡ)ᵀ, SGD with step h and batch
size B is modelled (Li, Tai & E, 2017; 2019, Thm 3) by the Itô SDE in flow time t = k·h

    dΘ = −∇(L + p·(h/4)‖∇L‖²)(Θ) dt + √(h·c) Σ(Θ)^{1/2} dW,      p = order − 1,

where c·Σ is the covariance of one batch gradient: c = 1/B when the batch is drawn with
replacement, c = (N − B)/(B(N − 1)) without (so c = 0 at B = N: no noise).
"""

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._checks import (
    InvalidInputError,
    check_finite,
    check_increasing,
    check_key,
    check_leading_axis,
    check_loss,
    check_steps,
    check_storage,
    checked_params,
    finite_scalar_or_raise,
    float_dtype,
    real_arrays,
)
from ._results import RESULTS, as_result, finish


class Paths(eqx.Module):
    """Sample paths of SGD or of its SME, saved at common flow times.

    **Fields:**

    - `ts`: flow times, shape `(len(ts),)` (k·lr for SGD step k).
    - `params`: a pytree like `params0`, every leaf with leading axes `(n_paths, len(ts))`.
    - `loss`: the full-batch loss along every path, shape `(n_paths, len(ts))`.
    - `mean_loss`: its mean over paths, shape `(len(ts),)`.
    - `mean_params`: the mean over paths, a pytree with leading axis `len(ts)`.
    - `variance`: the total variance over paths, E‖θ − Eθ‖² (all leaves), `(len(ts),)`.
    - `stats`: solver statistics (`num_steps` per path) for the SME; empty for SGD.
    - `result`: a [`corridors.RESULTS`][] item (one per path), `successful` unless a
      path turned non-finite (seen only with `throw=False`).
    """

    ts: Float[Array, " times"]
    params: PyTree
    loss: Float[Array, "paths times"]
    mean_loss: Float[Array, " times"]
    mean_params: PyTree
    variance: Float[Array, " times"]
    stats: dict
    result: RESULTS


def paths_from(ts: Array, params: PyTree, loss: Array, stats: dict, result) -> Paths:
    """Assemble a `Paths` from stacked params `(n_paths, len(ts), ...)` and losses."""
    mean = jax.tree.map(lambda x: x.mean(0), params)
    variance = sum(
        jnp.sum((x - m[None]).reshape((*x.shape[:2], -1)) ** 2, -1).mean(0)
        for x, m in zip(jax.tree.leaves(params), jax.tree.leaves(mean), strict=True)
    )
    return Paths(ts, params, loss, loss.mean(0), mean, variance, stats, result)


# ------------------------------------------------------------------ shared input checks


def checked_data(where: str, data: Any, batch_size: Any) -> tuple[Any, int, int]:
    """(data as arrays, N, batch size): a common leading example axis, finite values,
    and 1 ≤ batch_size ≤ N."""
    if not jax.tree.leaves(data):
        raise InvalidInputError(f"{where}: `data` has no array leaves (got {data!r}).")
    data = real_arrays(where, "data", data)
    for leaf in jax.tree.leaves(data):
        if leaf.ndim == 0:
            raise InvalidInputError(
                f"{where}: every leaf of `data` needs a leading example axis; got a "
                "scalar. Pass e.g. `(features, targets)` with shapes (N, ...) and (N,)."
            )
    n = check_leading_axis(where, "data", data)
    data = check_finite(where, "data", data)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise InvalidInputError(
            f"{where}: `batch_size` must be an int, got {batch_size!r}."
        )
    if not 1 <= batch_size <= n:
        raise InvalidInputError(
            f"{where}: `batch_size` must lie in [1, N] = [1, {n}] (N = examples in "
            f"`data`), got {batch_size}."
        )
    return data, n, int(batch_size)


def noise_scale(n: int, batch_size: int, replacement: bool) -> float:
    """c such that Cov(batch gradient) = c·Σ."""
    if replacement:
        return 1.0 / batch_size
    return 0.0 if n == 1 else (n - batch_size) / (batch_size * (n - 1))


def example(data: PyTree, i: Array) -> PyTree:
    """Example i as a batch of one (leading axis 1)."""
    return jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, i, 1), data)


def full_loss(loss: Callable, params: PyTree, data: PyTree) -> Array:
    """L = mean over examples of `loss(params, example_i)`."""
    per = lambda ex: loss(params, jax.tree.map(lambda x: x[None], ex))  # noqa: E731
    return jax.vmap(per)(data).mean()


# --------------------------------------------------------------------------- sgd_sde


def sgd_sde(
    loss: Callable,
    params0: PyTree,
    ts: Any,
    lr: float,
    data: Any,
    *,
    batch_size: int,
    order: int = 1,
    key: PRNGKeyArray,
    n_paths: int = 1,
    replacement: bool = True,
    solver: diffrax.AbstractSolver | None = None,
    dt: float | None = None,
    noise_examples: int | None = None,
    throw: bool = True,
) -> Paths:
    """Sample paths of SGD's stochastic modified equation (SME), solved with diffrax.

    The SME of SGD with learning rate h = `lr` and batch size B, in flow time t = k·h:

        dΘ = −∇(L + p·(h/4)‖∇L‖²) dt + √(h·c) Σ^{1/2} dW,   p = 0 (order 1), 1 (order 2),

    L the full-batch loss, Σ the covariance of one example's gradient and c = 1/B with
    replacement, (N − B)/(B(N − 1)) without. This is Li, Tai & E's order-2 SME (ICML
    2017, Thm 1; JMLR 2019, Thm 3): the order-2 correction is in the drift only — the
    diffusion's own correction is O(h^{3/2}) in the step and does not enter the O(h²)
    weak error (the step's second moment h²(ggᵀ + cΣ) is matched already).

    Σ is never formed: with G the N × n matrix of centred per-example gradients,
    Σ^{1/2}dW = (1/√N)·Gᵀ dW_N for an N-dimensional Brownian motion W_N
    (`diffrax.ControlTerm` over a `diffrax.VirtualBrownianTree`, one key per path; the
    paths are `jax.vmap`-ed).

    **Solver.** The default, `diffrax.Heun()`, solves the equivalent Stratonovich SDE,
    whose drift gains −½Σⱼ(∂σⱼ)σⱼ = −∇((h·c/4)·tr Σ) — the gradient of the per-batch
    regularizer of [`corridors.sgd_regularizers`][]. The noise is small (σ ∝ √h), and
    for small noise a scheme's weak error is O(dt^q + h·dt) with q its deterministic
    order (Milstein & Tretyakov): Heun (q = 2) gives O(dt² + h·dt), while
    Euler–Maruyama (q = 1, Itô, `diffrax.Euler()`) gives O(dt), too coarse for the
    order-2 SME unless dt ≪ h². No diffrax solver has weak order 2 for general
    (non-commutative) noise, so Heun is the cheapest with the right small-noise error.
    Any `diffrax.AbstractItoSolver` is given the Itô form; any other solver the
    Stratonovich form.

    **Step size.** `dt` defaults to h/4: the solver's error, O(h·dt) = O(h²/4), is then
    far below the order-1 model error O(h) but of the same order in h as the order-2
    one, only with a 4× smaller factor — pass h/8 or h/16 when the order-2 SME is
    compared with SGD at high precision. `dt` must be ≤ h/2: then dt times
    the drift's curvature λ + (h/2)λ² stays inside the explicit solvers' stability
    interval [0, 2] whenever h·λ ≤ 2, i.e. wherever GD with step h is stable.
    Each interval between save times is cut into ⌈(interval)/dt⌉ equal steps. That
    count depends on the value of `dt` (and so of `lr`), so the solve loops without a
    static bound: it is not reverse-mode differentiable (forward mode is).

    **Arguments:**

    - `loss`: `loss(params, batch) -> scalar`, the mean loss over `batch`, a pytree
      like `data` with a leading example axis. The full-batch loss L is the mean of
      the per-example losses `loss(params, example_i)`.
    - `params0`: the initial point, any pytree of floating arrays.
    - `ts`: increasing flow times to save at; the paths start at `ts[0]`.
    - `lr`: the learning rate h > 0. It is passed to the compiled solve as a value,
      as are `dt`, `ts`, `params0` and `data`: a sweep over lr compiles once.
    - `data`: a pytree of arrays sharing a leading axis of N examples.
    - `batch_size`: B, an int in [1, N].
    - `order`: 1 or 2, the weak order of the SME as a model of SGD.
    - `key`: a JAX PRNG key.
    - `n_paths`: the number of independent paths.
    - `replacement`: whether the modelled SGD draws its batch with replacement (the
      convention of [`corridors.sgd_paths`][]).
    - `solver`: a diffrax solver (default `diffrax.Heun()`, see above).
    - `dt`: the fixed step in flow time (default h/4; must be ≤ h/2).
    - `noise_examples`: for large N, build Σ^{1/2} from a random subset of this many
      examples (drawn once per path, without replacement) instead of all N: the
      diffusion then costs M per-example gradients per evaluation, and Σ is replaced
      by the subset's covariance (unbiased up to the factor (M − 1)/M). The drift
      always uses all N examples.
    - `throw`: raise if a path turns non-finite; with `False`, report it in `.result`.

    **Returns:**

    A [`corridors.Paths`][] with the paths at `ts`, their full-batch losses, mean loss,
    mean params and variance, `stats["num_steps"]` and `.result`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    import corridors as cr

    xs = jnp.linspace(-1.0, 1.0, 8)[:, None]
    data = (xs, 2.0 * xs[:, 0])
    loss = lambda w, batch: 0.5 * jnp.mean((batch[0] @ w - batch[1]) ** 2)
    paths = cr.sgd_sde(loss, jnp.zeros(1), jnp.linspace(0.0, 1.0, 5), 0.1, data,
                       batch_size=2, key=jax.random.key(0), n_paths=64)
    print(paths.params.shape)  # (64, 5, 1)
    ```
    """
    where = "sgd_sde"
    params0 = checked_params(where, loss, params0, ())
    dtype = float_dtype(params0)
    data, n, batch_size = checked_data(where, data, batch_size)
    h = finite_scalar_or_raise(where, "lr", lr)
    if h <= 0:
        raise InvalidInputError(f"{where}: `lr` must be > 0, got {h}.")
    if order not in (1, 2) or isinstance(order, bool):
        raise InvalidInputError(f"{where}: `order` must be 1 or 2, got {order!r}.")
    ts = check_increasing(where, "ts", ts, dtype)
    if ts.shape[0] < 2:
        raise InvalidInputError(
            f"{where}: `ts` needs at least two times (the start and one save time)."
        )
    if dt is None:
        dt = h / 4
    dt = finite_scalar_or_raise(where, "dt", dt)
    if not 0 < dt <= h / 2:
        raise InvalidInputError(
            f"{where}: `dt` must lie in (0, lr/2] = (0, {h / 2:g}], got {dt:g}: the "
            "explicit solver is stable on the SME's drift only for dt ≤ lr/2 (and the "
            "SME resolves SGD only below one step)."
        )
    n_paths = check_steps(where, "n_paths", n_paths, minimum=1)
    what = f"n_paths × len(ts) = {n_paths:,} × {ts.shape[0]:,} saved points"
    check_storage(where, what, n_paths * ts.shape[0], params0)
    key = check_key(where, key)
    solver = diffrax.Heun() if solver is None else solver
    if not isinstance(solver, diffrax.AbstractSolver):
        raise InvalidInputError(
            f"{where}: `solver` must be a diffrax.AbstractSolver, got "
            f"{type(solver).__name__}."
        )
    m = n
    if noise_examples is not None:
        m = check_steps(where, "noise_examples", noise_examples, minimum=1)
        if m > n:
            raise InvalidInputError(
                f"{where}: `noise_examples` must be ≤ N = {n}, got {m}."
            )
    c = noise_scale(n, batch_size, bool(replacement))
    # lr, dt, c and the times are traced: a sweep over lr compiles once.
    return _sgd_sde(
        loss,
        params0,
        ts,
        jnp.asarray(h, dtype),
        jnp.asarray(dt, dtype),
        jnp.asarray(c, dtype),
        data,
        key,
        order=order,
        n_paths=n_paths,
        solver=solver,
        noise_examples=None if m == n else m,
        throw=throw,
    )


@eqx.filter_jit
def _sgd_sde(
    loss,
    params0,
    ts,
    h,
    dt,
    c,
    data,
    key,
    *,
    order,
    n_paths,
    solver,
    noise_examples,
    throw,
):
    where = "sgd_sde"
    check_loss(where, loss, params0, (example(data, jnp.asarray(0)),))
    flat0, unravel = ravel_pytree(params0)
    n = jax.tree.leaves(data)[0].shape[0]
    ito = isinstance(solver, diffrax.AbstractItoSolver)
    levy = getattr(solver, "minimal_levy_area", diffrax.BrownianIncrement)
    if not isinstance(levy, type) or not issubclass(
        levy, diffrax.AbstractBrownianIncrement
    ):
        levy = diffrax.BrownianIncrement

    def example_grads(theta, examples):
        grad = jax.grad(
            lambda th, ex: loss(unravel(th), jax.tree.map(lambda x: x[None], ex))
        )
        return jax.vmap(grad, in_axes=(None, 0))(theta, examples)

    def one_path(path_key):
        subset_key, bm_key = jax.random.split(path_key)
        if noise_examples is None:
            noise_data = data
        else:
            index = jax.random.choice(subset_key, n, (noise_examples,), replace=False)
            noise_data = jax.tree.map(lambda x: x[index], data)

        def modified_loss(theta):
            # L + p·(h/4)‖∇L‖² (+ (h·c/4)·tr Σ, the Itô-to-Stratonovich correction).
            value = full_loss(loss, unravel(theta), data)
            if order == 2:
                mean_grad = jax.grad(lambda th: full_loss(loss, unravel(th), data))(
                    theta
                )
                value = value + 0.25 * h * jnp.sum(mean_grad**2)
            if not ito:
                grads = example_grads(theta, noise_data)
                centred = grads - grads.mean(0)
                value = value + 0.25 * h * c * jnp.mean(jnp.sum(centred**2, 1))
            return value

        def drift(t, theta, _):
            return -jax.grad(modified_loss)(theta)

        def diffusion(t, theta, _):
            grads = example_grads(theta, noise_data)
            centred = grads - grads.mean(0)
            return jnp.sqrt(h * c / grads.shape[0]) * centred.T

        brownian = diffrax.VirtualBrownianTree(
            ts[0],
            ts[-1],
            dt / 8,
            # In the state's dtype: a float64 tree would not fit a float32 state.
            jax.ShapeDtypeStruct((jax.tree.leaves(noise_data)[0].shape[0],), ts.dtype),
            bm_key,
            levy_area=levy,
        )
        terms = diffrax.MultiTerm(
            diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, brownian)
        )

        def interval(theta, t0_t1):
            # [t0, t1] in k = ⌈(t1 − t0)/dt⌉ equal steps (≤ dt each); k depends on
            # the traced dt, so the loop has no static bound (max_steps=None).
            t0, t1 = t0_t1
            ratio = (t1 - t0) / dt
            k = jnp.maximum(1.0, jnp.ceil(ratio * (1 - 8 * jnp.finfo(ts.dtype).eps)))
            solution = diffrax.diffeqsolve(
                terms,
                solver,
                t0=t0,
                t1=t1,
                dt0=(t1 - t0) / k,
                y0=theta,
                saveat=diffrax.SaveAt(t1=True),
                stepsize_controller=diffrax.ConstantStepSize(),
                max_steps=None,
                throw=False,
            )
            end = solution.ys[-1]
            result = as_result(solution.result)
            return end, (end, solution.stats["num_steps"], result)

        _, (ends, steps, results) = jax.lax.scan(
            interval, flat0, jnp.stack([ts[:-1], ts[1:]], 1)
        )
        ys = jnp.concatenate([flat0[None], ends])
        num_steps = steps.sum()
        losses = jax.vmap(lambda th: full_loss(loss, unravel(th), data))(ys)
        result = _worst(results)
        bad = ~(jnp.all(jnp.isfinite(ys)) & jnp.all(jnp.isfinite(losses)))
        result = RESULTS.where(bad, RESULTS.diverged, result)
        return jax.vmap(unravel)(ys), losses, num_steps, result

    keys = jax.random.split(key, n_paths)
    params, losses, num_steps, result = jax.vmap(one_path)(keys)
    paths = paths_from(ts, params, losses, {"num_steps": num_steps}, result)
    return finish(where, paths, _worst(result), throw)


def _worst(result: RESULTS) -> RESULTS:
    """One item for a batch of per-path results: the first failure, if any."""
    failed = result._value != RESULTS.successful._value
    index = jnp.argmax(failed)
    return RESULTS.where(
        jnp.any(failed), jax.tree.map(lambda v: v[index], result), RESULTS.successful
    )
