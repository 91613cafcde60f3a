"""A strategy for random consistent explicit Runge–Kutta tableaux."""

import diffrax
import numpy as np
from hypothesis import strategies as st

from .._checks import InvalidInputError


@st.composite
def _tableaux(draw, min_stages, max_stages, max_coefficient):
    stages = draw(st.integers(min_stages, max_stages))
    coefficient = st.floats(
        -max_coefficient,
        max_coefficient,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
    )
    a_lower = tuple(
        np.array(draw(st.lists(coefficient, min_size=i, max_size=i)), dtype=float)
        for i in range(1, stages)
    )
    b_free = np.array(
        draw(st.lists(coefficient, min_size=stages - 1, max_size=stages - 1)),
        dtype=float,
    )
    b_sol = np.append(b_free, 1.0 - b_free.sum())
    return diffrax.ButcherTableau(
        c=np.array([row.sum() for row in a_lower]),
        b_sol=b_sol,
        b_error=np.zeros(stages),
        a_lower=a_lower,
    )


def explicit_rk_tableaux(
    *, min_stages: int = 2, max_stages: int = 6, max_coefficient: float = 1.0
) -> st.SearchStrategy[diffrax.ButcherTableau]:
    """Random consistent explicit Runge–Kutta methods, as `diffrax.ButcherTableau`s.

    Every drawn tableau has s stages with `min_stages` ≤ s ≤ `max_stages`, lower
    triangular coefficients |a_ij| ≤ `max_coefficient`, nodes cᵢ = Σ_j a_ij (so
    |cᵢ| ≤ (s − 1)·`max_coefficient`), weights with Σ bᵢ = 1 (consistency: order ≥ 1;
    b₁..b_{s−1} lie in [−max_coefficient, max_coefficient]) and a zero error
    estimate (no embedded method: run it with constant steps, e.g. through
    `corridors.runge_kutta(..., tableau=...)`). Nothing else is imposed, so most have
    order exactly 1. diffrax cannot represent a 1-stage tableau (Euler), hence
    s ≥ 2.

    In a corridor every one of them steps exactly on the gradient flow.

    **Arguments:**

    - `min_stages`, `max_stages`: the range of s, 2 ≤ min_stages ≤ max_stages.
    - `max_coefficient`: the bound on |a_ij| and on b₁..b_{s−1}, > 0.

    **Returns:**

    A strategy for `diffrax.ButcherTableau`.

    **Example:**

    ```python
    import jax.numpy as jnp
    from hypothesis import given, settings
    import corridors as cr
    from corridors.testing import explicit_rk_tableaux

    @settings(max_examples=2, derandomize=True, deadline=None, database=None)
    @given(explicit_rk_tableaux(max_stages=3))
    def test_consistent_methods_are_exact_on_a_linear_loss(tableau):
        assert abs(sum(tableau.b_sol) - 1.0) < 1e-12  # Σ bᵢ = 1
        path = cr.runge_kutta(jnp.sum, jnp.zeros(2), 0.25, 2, tableau=tableau)
        assert jnp.allclose(path[-1], -0.5, atol=1e-5)  # the flow θ_0 − t at t = 0.5

    test_consistent_methods_are_exact_on_a_linear_loss()  # pytest would call it for you
    ```
    """
    if not (isinstance(min_stages, int) and isinstance(max_stages, int)) or not (
        2 <= min_stages <= max_stages
    ):
        raise InvalidInputError(
            "explicit_rk_tableaux: need ints 2 ≤ min_stages ≤ max_stages (diffrax "
            f"cannot represent a 1-stage tableau), got {min_stages}, {max_stages}."
        )
    if not (0 < max_coefficient < np.inf):
        raise InvalidInputError(
            f"explicit_rk_tableaux: `max_coefficient` must be finite and > 0, got "
            f"{max_coefficient}."
        )
    return _tableaux(min_stages, max_stages, float(max_coefficient))
