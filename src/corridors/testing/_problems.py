"""Strategies for whole test problems: (landscape, params0, lr, n_steps)."""

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from .._checks import InvalidInputError
from ..landscapes import (
    ConcaveCone,
    Cone,
    CylinderCone,
    GluedCorridor,
    Linear,
    Quadratic,
)
from ._pytrees import learning_rates, pytrees

CORRIDOR_KINDS = (Linear, Cone, ConcaveCone, CylinderCone, GluedCorridor)
"""The corridor landscapes (`is_corridor`) this module knows how to draw."""

_UNIT = st.floats(
    -1.0, 1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False
)


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(
        low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )


def _vector(draw, d: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return np.array(draw(st.lists(_floats(low, high), min_size=d, max_size=d)), float)


def _unit_vector(draw, d: int) -> np.ndarray:
    """A unit vector in R^d (e₁ when the drawn vector is too short to normalize)."""
    v = _vector(draw, d)
    norm = np.linalg.norm(v)
    if norm < 1e-3:
        v, norm = np.eye(d)[0], 1.0
    return v / norm


def _orthogonal(draw, d: int) -> np.ndarray:
    """A d×d orthogonal matrix (the Q of a QR factorization of a drawn matrix)."""
    q, r = np.linalg.qr(_vector(draw, d * d).reshape(d, d))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _array(x: Any) -> jax.Array:
    return jnp.asarray(np.asarray(x, dtype=float), jnp.result_type(float))


def _range(name: str, where: str, value: Any, *, integer: bool) -> tuple:
    """A (low, high) pair from a number or a pair, validated."""
    low, high = (value, value) if np.ndim(value) == 0 else tuple(value)
    kind = int if integer else float
    if integer and not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool)
        for v in (low, high)
    ):
        raise InvalidInputError(f"{where}: `{name}` must be an int or a pair of ints.")
    if not (0 < low <= high < math.inf):
        raise InvalidInputError(
            f"{where}: `{name}` must be a positive number or a pair low ≤ high, got "
            f"{value!r}."
        )
    return kind(low), kind(high)


def _tree_unit(draw, like) -> Any:
    """A unit-norm pytree shaped like `like`."""
    tree = draw(pytrees(like=like, min_value=-1.0, max_value=1.0))
    norm = float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(tree))))
    if norm < 1e-3:
        tree = jax.tree.map(jnp.ones_like, tree)
        norm = float(np.sqrt(sum(x.size for x in jax.tree.leaves(tree))))
    return jax.tree.map(lambda x: x / norm, tree)


def _linear(draw, d, window, use_tree):
    if use_tree:
        w = draw(pytrees(max_leaves=3, max_leaf_size=4))
    else:
        w = _array(_vector(draw, d, -2.0, 2.0))
    if float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(w)))) < 0.1:
        w = jax.tree.map(lambda x: jnp.full_like(x, 0.5), w)
    params0 = draw(pytrees(like=w, min_value=-3.0, max_value=3.0))
    return Linear(w, draw(_floats(-1.0, 1.0))), params0


def _cone(draw, kind, d, window, use_tree, slope, factor):
    if use_tree:
        center = draw(pytrees(max_leaves=3, max_leaf_size=4))
        direction = _tree_unit(draw, center)
    else:
        center = _array(_vector(draw, d, -2.0, 2.0))
        direction = _array(_unit_vector(draw, d))
    radius = slope * window * factor
    params0 = jax.tree.map(lambda c, u: c + radius * u, center, direction)
    return kind(center, slope, draw(_floats(-1.0, 1.0))), params0


def _cylinder(draw, d, window, slope, factor):
    rank = draw(st.integers(1, d))
    q = _orthogonal(draw, d)
    basis = q[:, :rank]
    center = _vector(draw, d, -2.0, 2.0)
    along = basis @ _unit_vector(draw, rank)
    axis_part = q[:, rank:] @ _vector(draw, d - rank, -2.0, 2.0)
    params0 = center + slope * window * factor * along + axis_part
    landscape = CylinderCone(
        _array(center), slope, _array(basis @ basis.T), offset=draw(_floats(-1.0, 1.0))
    )
    return landscape, _array(params0)


def _glued(draw, d, window, slope, factor):
    d = max(d, 2)
    q = _orthogonal(draw, d)
    signed_axes = draw(
        st.lists(
            st.integers(0, 2 * d - 1), min_size=1, max_size=min(3, 2 * d), unique=True
        )
    )
    axes = [q[:, i % d] * (1.0 if i < d else -1.0) for i in signed_axes]
    half_angles = [draw(_floats(0.1, 0.7)) for _ in axes]  # < π/4: wedges disjoint
    facets = np.stack(
        [slope / np.cos(a) * u for a, u in zip(half_angles, axes, strict=True)]
    )
    center = _vector(draw, d, -2.0, 2.0)
    if draw(st.booleans()):
        # Inside facet 0's wedge, within half its width of the wedge's axis: the flow
        # runs along −w₀ for at least ρ/(2‖w₀‖) = window·factor before the seam.
        axis, angle = axes[0], half_angles[0]
        rho = 2.0 * slope / np.cos(angle) * window * factor
        side = _vector(draw, d)
        side = side - (side @ axis) * axis
        norm = np.linalg.norm(side)
        side = q[:, (signed_axes[0] + 1) % d] if norm < 1e-3 else side / norm
        lateral = draw(_floats(0.0, 1.0)) * rho * np.tan(angle) / 2.0
        params0 = center + rho * axis + lateral * side
    else:
        # On a diagonal of the axes' frame: at angle ≥ π/4 > 0.7 from every wedge axis,
        # so in the cone piece, whose flow is radial and never meets a seam.
        signs = np.where(
            np.array(draw(st.lists(st.booleans(), min_size=d, max_size=d))), -1.0, 1.0
        )
        direction = q @ signs / np.sqrt(d)
        params0 = center + slope * window * factor * direction
    landscape = GluedCorridor(
        _array(center), slope, _array(facets), offset=draw(_floats(-1.0, 1.0))
    )
    return landscape, _array(params0)


@st.composite
def _corridor_problems(draw, kinds, dims, steps, lrs, reach, slack, tree_params):
    kind = draw(st.sampled_from(kinds))
    d = draw(st.integers(*dims))
    n_steps = draw(st.integers(*steps))
    lr = draw(learning_rates(*lrs))
    window = max(reach * n_steps, slack) * lr
    factor = draw(_floats(1.25, 4.0))
    slope = draw(_floats(0.5, 3.0))
    use_tree = tree_params and draw(st.booleans())
    if kind is Linear:
        landscape, params0 = _linear(draw, d, window, use_tree)
    elif kind in (Cone, ConcaveCone):
        landscape, params0 = _cone(draw, kind, d, window, use_tree, slope, factor)
    elif kind is CylinderCone:
        landscape, params0 = _cylinder(draw, d, window, slope, factor)
    else:
        landscape, params0 = _glued(draw, d, window, slope, factor)
    return landscape, params0, lr, n_steps


def corridor_problems(
    *,
    kinds: Sequence[type] = CORRIDOR_KINDS,
    dims: int | tuple[int, int] = (1, 4),
    n_steps: int | tuple[int, int] = (1, 16),
    lrs: float | tuple[float, float] = (1e-3, 0.1),
    reach: float = 10.0,
    slack: float = 6.0,
    pytree_params: bool = True,
) -> st.SearchStrategy[tuple[Any, Any, float, int]]:
    """Problems `(landscape, params0, lr, n_steps)` that stay inside a corridor.

    **Guarantee.** The exact gradient flow φ from `params0` is a straight line that
    stays strictly inside the landscape's open corridor — never at or past a cone's
    apex or a cylinder cone's axis, never on a `GluedCorridor` seam — for all flow
    times t ∈ [−slack·lr, reach·n_steps·lr], with at least 25% to spare. Hence, for
    `n_steps` steps of size `lr`, these land exactly on φ (to rounding):

    - gradient descent;
    - heavy-ball (and Nesterov) momentum from rest with β ≤ 1 − 1/reach (0.9 by
      default), which travels at most lr/(1 − β) of flow time per step;
    - every explicit Runge–Kutta tableau whose nodes satisfy |cᵢ| ≤ slack (all of
      `explicit_rk_tableaux()` with its defaults: |cᵢ| ≤ 5), whose stages evaluate
      the gradient at φ(t_k + cᵢ·lr).

    The loss along φ falls linearly: L(φ(t)) = L(params0) − t‖∇L(params0)‖².

    **Arguments:**

    - `kinds`: the landscape classes to draw from, a subset of `Linear`, `Cone`,
      `ConcaveCone`, `CylinderCone`, `GluedCorridor` (default: all).
    - `dims`: the dimension d, or a range (low, high). `GluedCorridor` problems use
      max(d, 2); pytree problems have their own small sizes.
    - `n_steps`: the step count, or a range (low, high), ≥ 1. Each distinct count
      compiles the steppers anew, so a fixed count keeps test suites fast.
    - `lrs`: the learning rate, or a range (low, high) drawn log-uniformly.
    - `reach`: how many times `n_steps·lr` of flow time stays in the corridor (≥ 1).
    - `slack`: how far back (in units of lr) the flow line stays in the corridor,
      for Runge–Kutta stages with negative nodes; 0 ≤ slack ≤ reach.
    - `pytree_params`: also draw `Linear`, `Cone` and `ConcaveCone` problems whose
      params are nested pytrees (dicts, tuples, lists of arrays).

    **Returns:**

    A strategy for tuples `(landscape, params0, lr, n_steps)`: an
    `AbstractExactLandscape` (so `landscape.exact_flow` is the reference), params of
    the default float dtype, a Python float and a Python int.

    **Example:**

    ```python
    from hypothesis import given, settings
    from corridors.landscapes import Cone
    from corridors.testing import assert_follows_flow, corridor_problems

    @settings(max_examples=3, derandomize=True, deadline=None, database=None)
    @given(corridor_problems(kinds=[Cone], dims=2, n_steps=5, pytree_params=False))
    def test_gd_follows_the_flow_in_a_corridor(problem):
        landscape, params0, lr, n_steps = problem
        assert_follows_flow(landscape.loss, params0, lr, n_steps, flow=landscape.exact_flow)

    test_gd_follows_the_flow_in_a_corridor()  # pytest would call it for you
    ```
    """
    where = "corridor_problems"
    kinds = tuple(kinds)
    not_corridors = [k for k in kinds if not getattr(k, "is_corridor", False)]
    if not_corridors:
        raise InvalidInputError(
            f"{where}: `kinds` must hold corridor landscapes; "
            f"{[getattr(k, '__name__', k) for k in not_corridors]} are not (their "
            "class attribute `is_corridor` is not True)."
        )
    if not kinds or any(k not in CORRIDOR_KINDS for k in kinds):
        raise InvalidInputError(
            f"{where}: `kinds` must be a non-empty subset of "
            f"{[k.__name__ for k in CORRIDOR_KINDS]}, got {kinds!r}."
        )
    dims = _range("dims", where, dims, integer=True)
    steps = _range("n_steps", where, n_steps, integer=True)
    lrs = _range("lrs", where, lrs, integer=False)
    if not (1.0 <= reach < math.inf):
        raise InvalidInputError(
            f"{where}: `reach` must be finite and ≥ 1, got {reach}."
        )
    if not (0.0 <= slack <= reach):
        raise InvalidInputError(
            f"{where}: `slack` must lie in [0, reach], got {slack}."
        )
    return _corridor_problems(
        kinds, dims, steps, lrs, float(reach), float(slack), bool(pytree_params)
    )


@st.composite
def _quadratic_problems(draw, dims, curvatures, allow_negative, allow_zero, steps, lrs):
    d = draw(st.integers(*dims))
    low, high = curvatures
    magnitudes = [
        math.exp(draw(_floats(math.log(low), math.log(high)))) for _ in range(d)
    ]
    lam = np.clip(np.array(magnitudes), low, high)
    if allow_negative:
        lam *= np.where(np.array([draw(st.booleans()) for _ in range(d)]), -1.0, 1.0)
    if allow_zero:
        zero = np.array([i > 0 and draw(st.booleans()) for i in range(d)])
        lam[zero] = 0.0
    nonzero = lam != 0
    q = _orthogonal(draw, d)
    beta = _vector(draw, d, -2.0, 2.0)
    # The gradient at params0, in eigencoordinates: γᵢ = λᵢzᵢ + βᵢ. Off the null
    # space it is drawn freely (with |γ₀| ≥ 1/2); on it, γᵢ = βᵢ, kept no larger than
    # √2·‖γ_range‖ so the corridor score stays ≥ min_curvature/√3.
    gamma = _vector(draw, d, -2.0, 2.0)
    gamma[0] = math.copysign(max(abs(gamma[0]), 0.5), gamma[0])
    gamma_range = np.linalg.norm(gamma[nonzero])
    null_norm = np.linalg.norm(beta[~nonzero])
    if null_norm > np.sqrt(2.0) * gamma_range:
        beta[~nonzero] *= np.sqrt(2.0) * gamma_range / null_norm
    z = _vector(draw, d, -2.0, 2.0)
    z[nonzero] = (gamma[nonzero] - beta[nonzero]) / lam[nonzero]
    a = (q * lam) @ q.T
    landscape = Quadratic(
        _array(0.5 * (a + a.T)), _array(q @ beta), draw(_floats(-1.0, 1.0))
    )
    lr = draw(learning_rates(lrs[0], min(lrs[1], 1.0 / high)))
    return landscape, _array(q @ z), lr, draw(st.integers(*steps))


def quadratic_problems(
    *,
    dims: int | tuple[int, int] = (1, 5),
    min_curvature: float = 0.1,
    max_curvature: float = 10.0,
    allow_negative: bool = False,
    allow_zero: bool = False,
    n_steps: int | tuple[int, int] = (1, 16),
    lrs: float | tuple[float, float] = (1e-3, 0.1),
) -> st.SearchStrategy[tuple[Quadratic, Any, float, int]]:
    """Problems `(quadratic, params0, lr, n_steps)` with A ≠ 0, started off the corridor.

    **Guarantee.** A = QΛQᵀ is symmetric with a random orthogonal Q and every
    eigenvalue λ satisfying min_curvature ≤ |λ| ≤ max_curvature, except that with
    `allow_negative` some are negative and with `allow_zero` some are exactly 0 (A is
    then singular; at least one eigenvalue is non-zero, so A ≠ 0). `params0` is not
    in the quadratic's corridor: its corridor score ‖A∇L‖/‖∇L‖ is ≥ min_curvature/2
    (≥ min_curvature without zero eigenvalues), so GD drifts from the flow at local
    order 2. The learning rate satisfies lr·max_curvature ≤ 1 (GD is stable on the
    positive part of the spectrum).

    **Arguments:**

    - `dims`: the dimension d, or a range (low, high).
    - `min_curvature`, `max_curvature`: the range of |λ|, 0 < min ≤ max.
    - `allow_negative`: allow indefinite A.
    - `allow_zero`: allow singular A (b then has a component in ker A, on which the
      flow drifts linearly).
    - `n_steps`: the step count, or a range (low, high), ≥ 1.
    - `lrs`: the learning rate, or a range (low, high), drawn log-uniformly and capped
      at 1/max_curvature; the low end must not exceed that cap.

    **Returns:**

    A strategy for tuples `(Quadratic, params0, lr, n_steps)`.

    **Example:**

    ```python
    from hypothesis import given, settings
    import corridors as cr
    from corridors.testing import quadratic_problems

    @settings(max_examples=5, derandomize=True, deadline=None, database=None)
    @given(quadratic_problems(dims=2, min_curvature=0.5, max_curvature=4.0))
    def test_quadratic_problems_start_off_the_corridor(problem):
        quadratic, params0, lr, n_steps = problem
        assert cr.corridor_score(quadratic.loss, params0) >= 0.5  # ≥ min_curvature
        assert lr * 4.0 <= 1.0  # lr·max_curvature ≤ 1: GD is stable

    test_quadratic_problems_start_off_the_corridor()  # pytest would call it for you
    ```
    """
    where = "quadratic_problems"
    dims = _range("dims", where, dims, integer=True)
    if not (0 < min_curvature <= max_curvature < math.inf):
        raise InvalidInputError(
            f"{where}: need 0 < min_curvature ≤ max_curvature < inf, got "
            f"{min_curvature}, {max_curvature}."
        )
    steps = _range("n_steps", where, n_steps, integer=True)
    lrs = _range("lrs", where, lrs, integer=False)
    if lrs[0] > 1.0 / max_curvature:
        raise InvalidInputError(
            f"{where}: the smallest lr {lrs[0]} exceeds 1/max_curvature = "
            f"{1.0 / max_curvature}; lower it."
        )
    return _quadratic_problems(
        dims,
        (float(min_curvature), float(max_curvature)),
        bool(allow_negative),
        bool(allow_zero),
        steps,
        lrs,
    )
