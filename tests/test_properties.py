"""The corridor theorems as hypothesis properties, checked with `corridors.testing`.

References are independent of the code under test where possible: closed-form flows
(`exact_flow`), dense Hessians, and flattened re-solves.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jax.flatten_util import ravel_pytree

import corridors as cr
from corridors import landscapes as L
from corridors.testing import (
    assert_drift_order,
    assert_follows_flow,
    assert_tree_allclose,
    corridor_problems,
    explicit_rk_tableaux,
    pytrees,
    quadratic_problems,
)

from .problems import scipy_flow

# Properties that compile anew for every example run a fraction of the profile's
# examples (the `thorough` profile still runs dozens).
HEAVY = max(2, settings.default.max_examples // 5)


def tree_loss(params):
    """A smooth non-quadratic loss coupling every entry of every leaf."""
    x = ravel_pytree(params)[0]
    return jnp.log1p(x @ x) + jnp.sum(jnp.sin(x) * jnp.roll(x, 1)) + 0.1 * jnp.sum(x**4)


def tree_vdot(a, b):
    return sum(
        jnp.vdot(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


# ------------------------------------------------------------------------ corridors


CORRIDORS = ["Linear", "Cone", "ConcaveCone", "CylinderCone", "GluedCorridor"]


@pytest.mark.parametrize("kind", CORRIDORS)
@settings(max_examples=HEAVY)
@given(data=st.data(), tableau=explicit_rk_tableaux(), beta=st.floats(0.0, 0.9))
def test_gd_momentum_and_every_consistent_rk_method_follow_the_flow_in_a_corridor(
    kind, data, tableau, beta
):
    # Fixed sizes, so examples of one kind share compiled steppers.
    problem = corridor_problems(kinds=(getattr(L, kind),), dims=3, n_steps=8)
    landscape, params0, lr, n_steps = data.draw(problem, label="problem")
    exact = landscape.exact_flow
    tight = {"atol": 1e-11, "rtol": 1e-11}
    assert_follows_flow(landscape.loss, params0, lr, n_steps, flow=exact, **tight)
    assert_follows_flow(
        landscape.loss, params0, lr, n_steps, method="momentum", beta=beta, flow=exact,
        **tight,
    )  # fmt: skip
    assert_follows_flow(
        landscape.loss, params0, lr, n_steps, method=tableau, flow=exact, **tight
    )
    # Prop. 2.10: the loss falls linearly along the flow, at rate ‖∇L(θ₀)‖².
    ts = lr * np.arange(n_steps + 1)
    value, speed, losses = loss_along_flow(landscape, params0, ts)
    np.testing.assert_allclose(
        losses, value - ts * speed, rtol=1e-11, atol=1e-11 * (1 + abs(float(value)))
    )


@eqx.filter_jit
def loss_along_flow(landscape, params0, ts):
    """(L(θ₀), ‖∇L(θ₀)‖², L along the exact flow at ts), in one compiled call."""
    value, grad = jax.value_and_grad(landscape.loss)(params0)
    losses = jax.vmap(landscape.loss)(landscape.exact_flow(params0, ts))
    return value, tree_vdot(grad, grad), losses


# ----------------------------------------------------------------------- quadratics


@given(
    problem=quadratic_problems(allow_negative=True),
    offsets=hnp.arrays(
        np.float64, (4, 5), elements=st.floats(-3, 3, allow_subnormal=False)
    ),
)
def test_quadratics_with_a_nonzero_a_are_off_the_corridor_away_from_the_critical_point(
    problem, offsets
):
    quad, params0, _, _ = problem
    A, b = np.asarray(quad.A), np.asarray(quad.b)
    smallest = np.min(np.abs(np.linalg.eigvalsh(A)))
    d = A.shape[0]
    points = np.vstack(
        [np.asarray(params0)[None], np.asarray(params0) + offsets[:, :d]]
    )
    scores = np.asarray(jax.vmap(lambda p: cr.corridor_score(quad.loss, p))(points))
    grads = points @ A + b
    moving = np.linalg.norm(grads, axis=1) > 1e-8
    assert moving[0]
    # ‖A g‖ ≥ min|λ|·‖g‖: never a corridor where ∇L ≠ 0 (Appendix C).
    assert np.all(scores[moving] >= smallest * (1 - 1e-9)), (scores, smallest)


@settings(max_examples=HEAVY)
@given(quadratic_problems(dims=3, allow_negative=True, min_curvature=0.2))
def test_gd_drifts_from_the_flow_of_a_quadratic_at_local_order_2(problem):
    quad, params0, _, _ = problem
    top = float(np.max(np.abs(np.asarray(quad.eigenvalues))))
    lrs = 0.05 / top * 2.0 ** -np.arange(4)
    assert_drift_order(quad.loss, params0, lrs, 2.0, tol=0.1)
    # The leading term against the closed-form flow: ‖θ₁ − φ(h)‖ ≈ (h²/2)‖H∇L‖.
    grad = np.asarray(quad.A) @ np.asarray(params0) + np.asarray(quad.b)
    predicted = 0.5 * lrs**2 * np.linalg.norm(np.asarray(quad.A) @ grad)
    steps = np.asarray(params0) - lrs[:, None] * grad
    measured = np.linalg.norm(steps - np.asarray(quad.exact_flow(params0, lrs)), axis=1)
    np.testing.assert_allclose(measured, predicted, rtol=0.1)


# ------------------------------------------------------------------ random pytrees


@given(st.data())
def test_hvp_is_symmetric_linear_and_equals_the_dense_hessian_on_random_pytrees(data):
    params = data.draw(pytrees(), label="params")
    u = data.draw(pytrees(like=params), label="u")
    v = data.draw(pytrees(like=params), label="v")
    a, b = (
        data.draw(st.floats(-2, 2), label="a"),
        data.draw(st.floats(-2, 2), label="b"),
    )
    hu, hv = cr.hvp(tree_loss, params, u), cr.hvp(tree_loss, params, v)
    scale = 1.0 + float(
        jnp.sqrt(
            tree_vdot(u, u) * tree_vdot(hv, hv) + tree_vdot(v, v) * tree_vdot(hu, hu)
        )
    )
    assert abs(float(tree_vdot(u, hv) - tree_vdot(v, hu))) <= 1e-12 * scale
    combined = jax.tree.map(lambda x, y: a * x + b * y, u, v)
    assert_tree_allclose(
        cr.hvp(tree_loss, params, combined),
        jax.tree.map(lambda x, y: a * x + b * y, hu, hv),
        rtol=1e-10,
        atol=1e-12 * scale,
    )
    flat, unravel = ravel_pytree(params)
    dense = jax.jit(jax.hessian(lambda x: tree_loss(unravel(x))))(flat)
    assert_tree_allclose(
        hu, unravel(dense @ ravel_pytree(u)[0]), rtol=1e-10, atol=1e-12 * scale
    )


@settings(max_examples=HEAVY)
@given(pytrees(max_leaves=3, max_leaf_size=4, min_value=-1.0, max_value=1.0))
def test_gradient_flow_on_a_pytree_equals_the_flow_of_the_flattened_vector(params0):
    # The reference flow on the flattened vector is scipy's DOP853, not diffrax.
    ts = np.array([0.0, 0.25, 0.5, 1.0])
    on_tree = cr.gradient_flow(tree_loss, params0, ts).params
    assert jax.tree.structure(on_tree) == jax.tree.structure(params0)
    on_vector = scipy_flow(tree_loss, params0, ts, rtol=1e-13, atol=1e-13)
    flattened = jax.vmap(lambda p: ravel_pytree(p)[0])(on_tree)
    assert_tree_allclose(flattened, on_vector, rtol=1e-8, atol=1e-8)


# ------------------------------------------------------------ exact flows solve ODEs


def _draw_exact_problem(kind, data):
    """(landscape, params0, horizon) with the flow smooth on [0, horizon]."""
    if kind in ("Quadratic",):
        quad, params0, _, _ = data.draw(
            quadratic_problems(dims=3, allow_negative=True, allow_zero=True)
        )
        top = float(np.max(np.abs(np.asarray(quad.eigenvalues))))
        return quad, params0, min(1.0, 2.0 / top)
    if kind == "RuledSaddle":
        magnitude = data.draw(st.floats(0.2, 3.0))
        scale = magnitude if data.draw(st.booleans()) else -magnitude
        point = data.draw(st.lists(st.floats(-2, 2), min_size=4, max_size=4))
        saddle = L.RuledSaddle(scale, center=jnp.array(point[:2]))
        return saddle, jnp.array(point[2:]), 1.0 / magnitude
    landscape, params0, _, _ = data.draw(
        corridor_problems(
            kinds=(getattr(L, kind),), dims=3, n_steps=1, pytree_params=False
        )
    )
    if hasattr(landscape, "apex_time"):  # the solver cannot pass through an apex
        return landscape, params0, 0.9 * float(landscape.apex_time(params0))
    return landscape, params0, 2.0


@pytest.mark.parametrize("kind", [*CORRIDORS, "Quadratic", "RuledSaddle"])
@given(data=st.data())
def test_exact_flow_solves_its_ode_as_gradient_flow_does(kind, data):
    landscape, params0, horizon = _draw_exact_problem(kind, data)
    ts = jnp.linspace(0.0, horizon, 9)
    solved = cr.gradient_flow(landscape.loss, params0, ts).params
    assert_tree_allclose(
        landscape.exact_flow(params0, ts), solved, rtol=1e-8, atol=1e-8
    )
