"""Weak error between SGD and its SME, with Monte Carlo confidence intervals."""

import statistics
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._checks import InvalidInputError, refuse
from ._sde import Paths


class WeakError(eqx.Module):
    """|E f(θ_k) − E f(Θ(k·h))| at each common saved time, with its interval.

    **Fields:**

    - `ts`: the flow times, shape `(times,)`.
    - `error`: |mean_sgd − mean_sme|, shape `(times,)`.
    - `difference`: mean_sgd − mean_sme (signed).
    - `half_width`: the half-width of the `level` confidence interval of `difference`
      (normal approximation, the two Monte Carlo samples independent).
    - `mean_sgd`, `mean_sme`: the two Monte Carlo means of f.
    - `stderr_sgd`, `stderr_sme`: their standard errors.
    - `level`: the confidence level.

    `error ≤ half_width` means the two means are indistinguishable at this level;
    `max(error − half_width, 0)` is a lower bound on the true weak error there.
    """

    ts: Float[Array, " times"]
    error: Float[Array, " times"]
    difference: Float[Array, " times"]
    half_width: Float[Array, " times"]
    mean_sgd: Float[Array, " times"]
    mean_sme: Float[Array, " times"]
    stderr_sgd: Float[Array, " times"]
    stderr_sme: Float[Array, " times"]
    level: float = eqx.field(static=True)


def _values(paths: Paths, f) -> Array:
    """f at every (path, time): shape (n_paths, times)."""
    if isinstance(f, str):  # checked by weak_error: "loss" or "norm2"
        if f == "loss":
            return paths.loss
        return sum(
            jnp.sum(x.reshape((*x.shape[:2], -1)) ** 2, -1)
            for x in jax.tree.leaves(paths.params)
        )
    values = jax.vmap(jax.vmap(f))(paths.params)
    if jnp.shape(values) != paths.loss.shape:
        raise InvalidInputError(
            "weak_error: `f(params)` must return a scalar, got shape "
            f"{jnp.shape(values)[2:]}."
        )
    return values


def _stderr(values: Array) -> Array:
    """Standard error of the mean over paths; infinite (no information) for one path."""
    n = values.shape[0]
    if n < 2:
        return jnp.full(values.shape[1:], jnp.inf, values.dtype)
    return jnp.std(values, 0, ddof=1) / np.sqrt(n)


def weak_error(
    sgd: Paths,
    sme: Paths,
    f: str | Callable = "loss",
    *,
    level: float = 0.99,
) -> WeakError:
    """The weak error |E f(θ_k) − E f(Θ(k·h))| between SGD paths and SME paths.

    **Arguments:**

    - `sgd`: SGD paths, from [`corridors.sgd_paths`][].
    - `sme`: SME paths, from [`corridors.sgd_sde`][], saved at the same flow times
      (k·lr for the saved steps k: pass `ts=runs.ts`).
    - `f`: the test function: `"loss"` (the full-batch loss, already stored on the
      paths), `"norm2"` (‖θ‖² over all leaves), or a callable `f(params) -> scalar`
      (e.g. a linear functional `lambda p: p @ v`).
    - `level`: the confidence level of the interval, in (0, 1).

    **Returns:**

    A [`corridors.WeakError`][] per common time. For an exact (Monte Carlo–free) weak
    error on least squares use [`corridors.landscapes.LinearRegression`][]'s
    `sgd_moments` and `sme_moments`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    import corridors as cr

    xs = jnp.linspace(-1.0, 1.0, 8)[:, None]
    data = (xs, 2.0 * xs[:, 0])
    loss = lambda w, batch: 0.5 * jnp.mean((batch[0] @ w - batch[1]) ** 2)
    options = dict(batch_size=2, n_paths=256)
    runs = cr.sgd_paths(loss, jnp.zeros(1), 0.1, data, n_steps=10,
                        key=jax.random.key(0), **options)
    sme = cr.sgd_sde(loss, jnp.zeros(1), runs.ts, 0.1, data, key=jax.random.key(1),
                     **options)
    err = cr.weak_error(runs, sme, "loss")
    print(bool(err.error[-1] < err.half_width[-1]))  # True
    ```
    """
    where = "weak_error"
    if not (callable(f) or (isinstance(f, str) and f in ("loss", "norm2"))):
        raise InvalidInputError(
            f"{where}: `f` must be 'loss', 'norm2' or a callable, got {f!r:.60}."
        )
    for name, paths in (("sgd", sgd), ("sme", sme)):
        if not isinstance(paths, Paths):
            raise InvalidInputError(
                f"{where}: `{name}` must be a corridors.Paths (from sgd_paths or "
                f"sgd_sde), got {type(paths).__name__}."
            )
    if not (isinstance(level, float) and 0 < level < 1):
        raise InvalidInputError(
            f"{where}: `level` must be a float in (0, 1), got {level!r}."
        )
    apart = f"{where}: `sgd` and `sme` must be saved at the same flow times; pass "
    apart += "`ts=runs.ts` to sgd_sde."
    if jnp.shape(sgd.ts) != jnp.shape(sme.ts):
        raise InvalidInputError(apart)
    # Under jit the times are traced: then an error_if, raised when the code runs.
    ts = refuse(
        where,
        sgd.ts,
        lambda: ~jnp.allclose(sgd.ts, sme.ts, rtol=1e-9, atol=1e-12),
        apart,
    )
    a, b = _values(sgd, f), _values(sme, f)
    # A Python float from the standard library: no device work, and none to trace.
    z = statistics.NormalDist().inv_cdf(0.5 + 0.5 * level)
    mean_a, mean_b = a.mean(0), b.mean(0)
    stderr_a, stderr_b = _stderr(a), _stderr(b)
    difference = mean_a - mean_b
    half_width = z * jnp.sqrt(stderr_a**2 + stderr_b**2)
    return WeakError(
        ts,
        jnp.abs(difference),
        difference,
        half_width,
        mean_a,
        mean_b,
        stderr_a,
        stderr_b,
        level,
    )
