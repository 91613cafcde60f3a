"""The silver step-size schedule of Altschuler & Parrilo (2023).

h_i = (1 + ρ^(ν(i) − 1))/L for i = 1, 2, …, with ρ = 1 + √2 (the silver ratio) and ν(i)
the 2-adic valuation of i (the exponent of 2 in i). The first steps are
√2, 2, √2, 2 + √2, √2, 2, √2, 4 + 2√2, … (times 1/L): many exceed the classical 2/L
stability limit, yet for every convex L-smooth f, after n = 2^k − 1 steps

f(x_n) − f* ≤ r_k·L‖x_0 − x*‖²,  r_k = 1/(1 + √(4ρ^{2k} − 3)) ≈ 1/(2 n^{log₂ ρ}),

an O(n^{−1.2716}) rate against O(n^{−1}) for constant steps.

Reference: J. M. Altschuler, P. A. Parrilo, "Acceleration by stepsize hedging II:
silver stepsize schedule for smooth convex optimization" (arXiv:2309.16530), 2023.
"""

import math

import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array

from .._checks import InvalidInputError, check_positive, check_steps, is_concrete
from ._chebyshev import _cycling

SILVER_RATIO = 1.0 + math.sqrt(2.0)


def two_adic_valuation(i: np.ndarray) -> np.ndarray:
    """ν(i): the exponent of 2 in each positive integer i."""
    i = np.asarray(i, dtype=np.int64)
    return np.log2(i & -i).round().astype(np.int64)


def silver_steps(T: int, L: float | Array) -> np.ndarray | Array:
    """The first T steps of the silver schedule for an L-smooth function.

    h_i = (1 + ρ^(ν(i) − 1))/L, i = 1, …, T, with ρ = 1 + √2 and ν the 2-adic
    valuation. For T = 2^k − 1 the schedule is the palindrome built by
    π_{k+1} = (π_k, 1 + ρ^(k−1), π_k), and the objective gap after it is at most
    L‖x_0 − x*‖²/(1 + √(4ρ^{2k} − 3)) on every convex L-smooth function.

    **Arguments:**

    - `T`: the number of steps, a positive int.
    - `L`: the smoothness constant (largest Hessian eigenvalue), > 0.

    **Returns:**

    An array of shape `(T,)`: NumPy float64 when `L` is concrete, a JAX array when it
    is traced.

    **Example:**

    ```python
    import corridors as cr
    print(cr.lr.silver_steps(3, 1.0))  # [1.41421356 2.         1.41421356]
    ```
    """
    T = check_steps("silver_steps", "T", T, minimum=1)
    if jnp.ndim(L) != 0:
        raise InvalidInputError(
            f"silver_steps: `L` must be a scalar, got shape {jnp.shape(L)}."
        )
    L = check_positive("silver_steps", "L", L)
    nu = two_adic_valuation(np.arange(1, T + 1))
    multipliers = 1.0 + SILVER_RATIO ** (nu - 1.0)
    if is_concrete(L):
        return multipliers / float(L)
    L = jnp.asarray(L)
    dtype = jnp.promote_types(L.dtype, jnp.float32)
    return jnp.asarray(multipliers, dtype) / L.astype(dtype)


def silver_schedule(T: int, L: float | Array) -> optax.Schedule:
    """`silver_steps(T, L)` as an `optax.Schedule` that repeats every T steps.

    With T = 2^k − 1 each cycle is one full silver schedule (a restart); the step at
    `count` is `silver_steps(T, L)[count % T]`.

    **Arguments:** as for `silver_steps`.

    **Returns:**

    A function `count -> step size`, usable as `optax.sgd(silver_schedule(...))`.

    **Example:**

    ```python
    import optax
    import corridors as cr
    schedule = cr.lr.silver_schedule(3, 1.0)
    print([round(float(schedule(i)), 4) for i in range(4)])  # [1.4142, 2.0, 1.4142, 1.4142]: a cycle of 3
    optimizer = optax.sgd(schedule)
    ```
    """
    return _cycling(jnp.asarray(silver_steps(T, L)))


def silver_rate(k: int) -> float:
    """r_k = 1/(1 + √(4ρ^{2k} − 3)), the silver bound's constant after 2^k − 1 steps.

    **Arguments:**

    - `k`: a positive int.

    **Returns:**

    f(x_n) − f* ≤ r_k·L‖x_0 − x*‖² for n = 2^k − 1 silver steps.

    **Example:**

    ```python
    import corridors as cr
    print(cr.lr.silver_rate(3))  # 0.03437751104861363
    ```
    """
    k = check_steps("silver_rate", "k", k, minimum=1)
    return 1.0 / (1.0 + math.sqrt(4.0 * SILVER_RATIO ** (2 * k) - 3.0))
