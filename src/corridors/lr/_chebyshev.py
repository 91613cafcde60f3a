"""Chebyshev step sizes and the fractal ordering of Agarwal, Goel & Zhang (ICML 2021).

On a quadratic whose Hessian spectrum lies in [m, M], T gradient steps with sizes
h_1, …, h_T multiply the error in the eigendirection of λ by the residual polynomial
p(λ) = Π_i (1 − h_i λ). Taking 1/h_i to be the roots of the degree-T Chebyshev
polynomial mapped to [m, M] gives

p(λ) = T_T((M + m − 2λ)/(M − m)) / T_T((M + m)/(M − m)),

the polynomial with p(0) = 1 of least maximum on [m, M], so
‖x_T − x*‖ ≤ ‖x_0 − x*‖ / T_T((M + m)/(M − m)) in exact arithmetic. The product does
not depend on the order of the steps, but the partial products do: in floating point,
round-off made at step t is multiplied by Π_{s>t}(1 − h_s λ), and for the sorted
orders these reach ~κ^{T/2}. The fractal permutation keeps every partial product
bounded (by about κ), so the bound survives round-off.

Reference: N. Agarwal, S. Goel, C. Zhang, "Acceleration via fractal learning rate
schedules", ICML 2021 (arXiv:2103.01338).
"""

from typing import Any, Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array

from .._checks import InvalidInputError, check_steps, is_concrete

Order = Literal["fractal", "increasing", "decreasing"]
_ORDERS = ("fractal", "increasing", "decreasing")


def fractal_permutation(T: int) -> np.ndarray:
    """The fractal ordering σ_T of Agarwal, Goel & Zhang, 0-based.

    Defined by σ_1 = (0) and σ_{2n} = interlace(σ_n, 2n − 1 − σ_n): every step of the
    half-length schedule is followed by its mirror node. For T = 8 it is
    (0, 7, 3, 4, 1, 6, 2, 5). Applied to the Chebyshev nodes in increasing order (step
    sizes in decreasing order) it gives the fractal Chebyshev schedule.

    **Arguments:**

    - `T`: the length, a power of two (1, 2, 4, …).

    **Returns:**

    A NumPy int array holding a permutation of `range(T)`.

    **Example:**

    ```python
    import corridors as cr
    print(cr.lr.fractal_permutation(8))  # [0 7 3 4 1 6 2 5]
    ```
    """
    T = check_steps("fractal_permutation", "T", T, minimum=1)
    if T & (T - 1):
        raise InvalidInputError(
            f"fractal_permutation: `T` must be a power of two (1, 2, 4, 8, …), got {T}; "
            f"the nearest are {1 << (T.bit_length() - 1)} and {1 << T.bit_length()}."
        )
    permutation = np.zeros(1, dtype=np.int64)
    while permutation.size < T:
        n = permutation.size
        permutation = np.stack([permutation, 2 * n - 1 - permutation], axis=1).ravel()
    return permutation


def _checked_interval(where: str, m: Any, M: Any) -> tuple[Any, Any]:
    """0 < m ≤ M, both finite scalars; InvalidInputError when concrete, error_if when traced."""
    for name, value in (("m", m), ("M", M)):
        if jnp.ndim(value) != 0:
            raise InvalidInputError(
                f"{where}: `{name}` must be a scalar, got shape {jnp.shape(value)}."
            )
    if is_concrete((m, M)):
        low, high = float(m), float(M)
        if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
            raise InvalidInputError(
                f"{where}: the spectrum bounds must satisfy 0 < m ≤ M (finite), got "
                f"m={m}, M={M}."
            )
        return low, high
    m, M = jnp.asarray(m), jnp.asarray(M)
    bad = ~(jnp.isfinite(m) & jnp.isfinite(M) & (m > 0) & (m <= M))
    m = eqx.error_if(m, bad, f"{where}: the spectrum bounds must satisfy 0 < m ≤ M.")
    return m, M


def chebyshev_steps(
    m: float | Array, M: float | Array, T: int, *, order: Order = "fractal"
) -> np.ndarray | Array:
    """The T Chebyshev step sizes for a quadratic with spectrum in [m, M].

    h = 1/r with r_j = (M + m)/2 − (M − m)/2·cos((j + ½)π/T), j = 0, …, T − 1, the roots
    of T_T((M + m − 2λ)/(M − m)). In exact arithmetic T steps reduce the error by
    1/T_T((M + m)/(M − m)) ≈ 2·exp(−2T/√κ), κ = M/m, whatever the order; the order only
    matters for stability. The largest steps (≈ 1/m) are far above the stability limit
    2/M of a single step: locally the loss goes up, globally it converges.

    **Arguments:**

    - `m`, `M`: bounds of the Hessian spectrum, 0 < m ≤ M.
    - `T`: the number of steps (a positive int; a power of two for `"fractal"`).
    - `order`: `"fractal"` (the stable order of Agarwal, Goel & Zhang:
      `steps[fractal_permutation(T)]` of the step sizes sorted in decreasing order, so
      it starts with the largest step), `"increasing"` (smallest step first) or
      `"decreasing"` (largest step first). The sorted orders are numerically unstable
      for large T·κ.

    **Returns:**

    An array of shape `(T,)`: NumPy float64 when `m` and `M` are concrete, a JAX array
    when they are traced.

    **Example:**

    ```python
    import corridors as cr
    print(cr.lr.chebyshev_steps(1.0, 3.0, 2, order="increasing"))  # [0.36939806 0.77345908]
    ```
    """
    where = "chebyshev_steps"
    T = check_steps(where, "T", T, minimum=1)
    if order not in _ORDERS:
        raise InvalidInputError(
            f"{where}: `order` must be one of {_ORDERS}, got {order!r}."
        )
    permutation = fractal_permutation(T) if order == "fractal" else None
    m, M = _checked_interval(where, m, M)
    cosines = np.cos((np.arange(T) + 0.5) * np.pi / T)
    if not isinstance(m, float):  # traced: keep the dtype of the bounds
        dtype = jnp.promote_types(jnp.result_type(m, M), jnp.float32)
        m, M, cosines = m.astype(dtype), M.astype(dtype), jnp.asarray(cosines, dtype)
    nodes = (M + m) / 2 - (M - m) / 2 * cosines
    steps = 1.0 / nodes  # decreasing: nodes increase with j
    if order == "fractal":
        return steps[permutation]
    if order == "increasing":
        return steps[::-1]
    return steps


def chebyshev_schedule(
    m: float | Array, M: float | Array, T: int, *, order: Order = "fractal"
) -> optax.Schedule:
    """`chebyshev_steps` as an `optax.Schedule` that repeats every T steps.

    Step `count` uses `chebyshev_steps(m, M, T, order=order)[count % T]`, so a long run
    restarts the Chebyshev cycle every T steps (each cycle contracts the error by
    1/T_T((M + m)/(M − m)) in exact arithmetic).

    **Arguments:** as for `chebyshev_steps`.

    **Returns:**

    A function `count -> step size`, usable as `optax.sgd(chebyshev_schedule(...))`.

    **Example:**

    ```python
    import optax
    import corridors as cr
    schedule = cr.lr.chebyshev_schedule(1.0, 3.0, 2)
    print([round(float(schedule(i)), 4) for i in range(4)])  # [0.7735, 0.3694, 0.7735, 0.3694]
    optimizer = optax.sgd(schedule)
    ```
    """
    steps = jnp.asarray(chebyshev_steps(m, M, T, order=order))
    return _cycling(steps)


def _cycling(steps: Array) -> optax.Schedule:
    period = steps.shape[0]

    def schedule(count):
        return steps[jnp.asarray(count) % period]

    return schedule


def chebyshev_error_bound(m: float, M: float, T: int) -> float:
    """The error factor 1/T_T((M + m)/(M − m)) of T Chebyshev steps on [m, M].

    Computed as 1/cosh(T·arccosh((M + m)/(M − m))) without overflow (it underflows to
    0.0 for very large T/√κ); 0.0 when m = M (one step of size 1/m is exact).

    **Arguments:**

    - `m`, `M`: concrete spectrum bounds, 0 < m ≤ M.
    - `T`: the number of steps, a positive int.

    **Returns:**

    A Python float in [0, 1].

    **Example:**

    ```python
    import corridors as cr
    print(cr.lr.chebyshev_error_bound(1.0, 100.0, 16))  # 0.08052328333974576
    ```
    """
    if not is_concrete((m, M)):
        raise InvalidInputError(
            "chebyshev_error_bound: `m` and `M` must be concrete numbers."
        )
    m, M = _checked_interval("chebyshev_error_bound", m, M)
    T = check_steps("chebyshev_error_bound", "T", T, minimum=1)
    if m == M:
        return 0.0
    x = (M + m) / (M - m)
    log_cosh = T * np.arccosh(x)  # T_T(x) = cosh(T·arccosh x) for x ≥ 1
    return float(np.exp(-log_cosh) * 2.0 / (1.0 + np.exp(-2.0 * log_cosh)))
