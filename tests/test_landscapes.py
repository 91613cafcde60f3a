"""corridors.landscapes: the corridor landscapes, their apexes and seams, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import corridors as cr
from corridors import landscapes as L
from corridors.testing import assert_tree_allclose

# ----------------------------------------------------------------------------- Linear


def test_linear_pytree_loss_gradient_flow_and_corridor():
    w = {"a": jnp.array([1.0, -2.0]), "b": (jnp.array(3.0), jnp.ones((2, 2)))}
    land = L.Linear(w, 0.5)
    theta = {"a": jnp.array([0.5, 1.0]), "b": (jnp.array(-1.0), jnp.full((2, 2), 2.0))}
    assert float(land.loss(theta)) == pytest.approx(0.5 - 2.0 - 3.0 + 8.0 + 0.5)
    assert_tree_allclose(jax.grad(land.loss)(theta), w)
    ts = jnp.array([[0.0, 1.0, 2.5]])  # any shape of t is prepended to every leaf
    flow = land.exact_flow(theta, ts)
    assert flow["b"][1].shape == (1, 3, 2, 2)
    expected = jax.tree.map(
        lambda p, g: p - ts.reshape(ts.shape + (1,) * p.ndim) * g, theta, w
    )
    assert_tree_allclose(flow, expected, rtol=1e-14, atol=1e-14)
    assert bool(land.in_corridor(theta))
    assert land.minimum is None
    flat = L.Linear(jnp.zeros(2), 3.0).minimum
    assert float(flat.value) == 3.0


def test_linear_loss_falls_linearly_along_the_exact_flow():
    land = L.Linear(jnp.array([3.0, 4.0]), -1.0)
    theta0 = jnp.array([1.0, 1.0])
    ts = jnp.linspace(-1.0, 2.0, 7)
    losses = jax.vmap(land.loss)(land.exact_flow(theta0, ts))
    np.testing.assert_allclose(losses, land.loss(theta0) - 25.0 * ts, rtol=1e-14)


# ------------------------------------------------------------------------------ Cones


def test_cone_loss_gradient_and_closed_form_flow():
    cone = L.Cone(jnp.array([1.0, 2.0, -1.0]), 2.0, 0.5)
    theta0 = jnp.array([3.0, 0.0, 0.0])
    radius = np.sqrt(4 + 4 + 1)
    assert float(cone.loss(theta0)) == pytest.approx(2 * radius + 0.5, rel=1e-15)
    unit = (np.asarray(theta0) - [1, 2, -1]) / radius
    np.testing.assert_allclose(jax.grad(cone.loss)(theta0), 2 * unit, rtol=1e-14)
    t_apex = radius / 2
    assert float(cone.apex_time(theta0)) == pytest.approx(t_apex, rel=1e-15)
    ts = jnp.array([-1.0, 0.0, 0.3 * t_apex, t_apex, 2 * t_apex, 100.0])
    flow = np.asarray(cone.exact_flow(theta0, ts))
    for t, point in zip(np.asarray(ts), flow, strict=True):
        expected = np.asarray(theta0) - min(t, t_apex) * 2 * unit
        np.testing.assert_allclose(point, expected, atol=1e-14)
    # It stops exactly on the apex, and the loss fell linearly until then.
    np.testing.assert_array_equal(flow[3:], np.tile([1.0, 2.0, -1.0], (3, 1)))
    losses = jax.vmap(cone.loss)(cone.exact_flow(theta0, ts[:4]))
    np.testing.assert_allclose(losses, cone.loss(theta0) - 4.0 * ts[:4], atol=1e-13)


def test_cone_apex_has_zero_gradient_and_finite_hessian_never_nan():
    cone = L.Cone(jnp.zeros(2), 3.0)
    apex = jnp.zeros(2)
    np.testing.assert_array_equal(jax.grad(cone.loss)(apex), [0.0, 0.0])
    assert np.all(np.isfinite(jax.hessian(cone.loss)(apex)))
    assert np.all(np.isfinite(cr.hvp(cone.loss, apex, jnp.ones(2))))
    assert float(cr.corridor_score(cone.loss, apex)) == 0.0
    assert not bool(cone.in_corridor(apex))
    # Tiny and huge offsets keep a unit gradient (the norm is scaled, no underflow).
    for scale in (1e-200, 1e-30, 1e150):
        grad = jax.grad(cone.loss)(jnp.array([scale, -scale]))
        np.testing.assert_allclose(
            grad, 3.0 * np.array([1, -1]) / np.sqrt(2), rtol=1e-14
        )
    np.testing.assert_array_equal(cone.exact_flow(apex, jnp.array([0.0, 1.0])), 0.0)


def test_cone_is_a_corridor_off_the_apex():
    cone = L.Cone(jnp.array([0.5, -0.5]), 1.5)
    for point in ([2.0, 1.0], [0.5 + 1e-6, -0.5], [-30.0, 40.0]):
        assert float(cr.corridor_score(cone.loss, jnp.array(point))) < 1e-8
        assert bool(cone.in_corridor(jnp.array(point)))


def test_gd_on_a_cone_is_exact_until_the_apex_then_oscillates_within_one_step():
    cone = L.Cone(jnp.array([1.0, 2.0]), 2.0, 0.5)
    theta0 = jnp.array([3.0, -1.0])
    lr = 0.3
    iterates = cr.gd(cone.loss, theta0, lr, 12)
    t_apex = float(cone.apex_time(theta0))
    last_exact = int(np.floor(t_apex / lr))
    ts = lr * jnp.arange(last_exact + 1)
    assert_tree_allclose(
        iterates[: last_exact + 1], cone.exact_flow(theta0, ts), atol=1e-13
    )
    radii = np.linalg.norm(np.asarray(iterates) - [1.0, 2.0], axis=1)
    assert np.all(radii[last_exact + 1 :] <= lr * 2.0 + 1e-12)
    # GD then alternates between two points on either side of the apex.
    np.testing.assert_allclose(iterates[-1], iterates[-3], atol=1e-13)


def test_concave_cone_flows_away_and_backwards_stops_at_the_apex():
    cone = L.ConcaveCone(jnp.array([0.0, 1.0]), 0.5, 2.0)
    theta0 = jnp.array([3.0, 5.0])
    unit = np.array([3.0, 4.0]) / 5.0
    assert float(cone.loss(theta0)) == pytest.approx(2.0 - 0.5 * 5.0)
    ts = jnp.array([-20.0, -10.0, -4.0, 0.0, 4.0])
    flow = np.asarray(cone.exact_flow(theta0, ts))
    np.testing.assert_allclose(flow[0], [0.0, 1.0])
    np.testing.assert_allclose(flow[1], [0.0, 1.0])
    for t, point in zip(np.asarray(ts[2:]), flow[2:], strict=True):
        np.testing.assert_allclose(
            point, np.asarray(theta0) + 0.5 * t * unit, atol=1e-14
        )
    assert cone.minimum is None
    assert float(cr.corridor_score(cone.loss, theta0)) < 1e-12
    # From the apex itself the stationary solution is returned.
    np.testing.assert_array_equal(
        cone.exact_flow(jnp.array([0.0, 1.0]), 3.0), [0.0, 1.0]
    )


def test_pytree_cone_norm_runs_over_all_leaves():
    center = {"w": jnp.zeros((2, 2)), "b": jnp.array([1.0])}
    cone = L.Cone(center, 1.0)
    theta0 = {"w": jnp.ones((2, 2)), "b": jnp.array([4.0])}
    assert float(cone.loss(theta0)) == pytest.approx(np.sqrt(4 + 9))
    assert float(cone.apex_time(theta0)) == pytest.approx(np.sqrt(13))
    final = cone.exact_flow(theta0, 10.0)
    assert_tree_allclose(final, center)


# ------------------------------------------------------------------- Cylinder cones


def test_cylinder_cone_flows_to_its_axis_and_keeps_the_axial_component():
    q, _ = np.linalg.qr(np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 3.0]]))
    projection = q[:, :2] @ q[:, :2].T
    center = np.array([0.5, -1.0, 2.0])
    cyl = L.CylinderCone(center, 1.5, projection, offset=0.25)
    theta0 = np.array([3.0, 1.0, -2.0])
    v0 = projection @ (theta0 - center)
    t_axis = np.linalg.norm(v0) / 1.5
    assert float(cyl.apex_time(theta0)) == pytest.approx(t_axis, rel=1e-14)
    assert float(cyl.loss(theta0)) == pytest.approx(1.5 * np.linalg.norm(v0) + 0.25)
    ts = np.array([0.0, 0.5 * t_axis, 0.99 * t_axis, t_axis, 3 * t_axis])
    flow = np.asarray(cyl.exact_flow(theta0, ts))
    unit = v0 / np.linalg.norm(v0)
    for t, point in zip(ts, flow, strict=True):
        np.testing.assert_allclose(
            point, theta0 - min(t, t_axis) * 1.5 * unit, atol=1e-13
        )
        # The component along ker P never changes.
        np.testing.assert_allclose(
            (np.eye(3) - projection) @ (point - theta0), 0.0, atol=1e-13
        )
    assert float(cyl.distance_to_axis(flow[-1])) < 1e-13
    assert bool(cyl.in_corridor(theta0)) and not bool(cyl.in_corridor(flow[-1]))
    assert float(cr.corridor_score(cyl.loss, jnp.asarray(theta0))) < 1e-10


def test_cylinder_cone_with_identity_projection_is_a_cone():
    center = jnp.array([1.0, -1.0])
    cyl = L.CylinderCone(center, 2.0, jnp.eye(2), offset=1.0)
    cone = L.Cone(center, 2.0, 1.0)
    theta0 = jnp.array([-2.0, 3.0])
    assert float(cyl.loss(theta0)) == pytest.approx(float(cone.loss(theta0)))
    ts = jnp.linspace(0.0, 4.0, 9)
    assert_tree_allclose(
        cyl.exact_flow(theta0, ts), cone.exact_flow(theta0, ts), atol=1e-14
    )


@pytest.mark.parametrize(
    ("projection", "match"),
    [
        (np.array([[1.0, 1.0], [0.0, 0.0]]), "symmetric"),  # oblique: P² = P ≠ Pᵀ
        (np.array([[0.5, 0.0], [0.0, 1.0]]), "projection"),  # symmetric, P² ≠ P
        (np.zeros((2, 2)), "rank"),
        (np.eye(3), "shape"),
        (np.array([[np.nan, 0.0], [0.0, 1.0]]), "NaN"),
        (np.eye(2)[0], "matrix"),
    ],
)
def test_cylinder_cone_refuses_non_projections(projection, match):
    with pytest.raises(ValueError, match=match):
        L.CylinderCone(jnp.zeros(2), 1.0, projection)


# ------------------------------------------------------------------- Glued corridor


def figure_1b():
    """A cone with two plane facets (disjoint wedges), apex off the origin."""
    return L.GluedCorridor(
        jnp.array([0.5, -0.2]), 1.5, jnp.array([[3.0, 0.4], [-1.0, -2.5]]), offset=1.0
    )


def test_glued_corridor_is_continuous_across_its_seams_and_corridor_inside_pieces():
    glued = figure_1b()
    center, facets = np.array([0.5, -0.2]), np.array([[3.0, 0.4], [-1.0, -2.5]])
    for j, w in enumerate(facets):
        # The seam rays of facet j: directions at angle α_j from w_j.
        alpha = np.arccos(1.5 / np.linalg.norm(w))
        axis = w / np.linalg.norm(w)
        for sign in (-1.0, 1.0):
            c, s = np.cos(sign * alpha), np.sin(sign * alpha)
            ray = np.array([c * axis[0] - s * axis[1], s * axis[0] + c * axis[1]])
            for rho in (0.3, 2.0):
                on_seam = center + rho * ray
                inside = on_seam + 1e-7 * axis
                outside = on_seam - 1e-7 * axis
                assert int(glued.piece(inside)) == j
                assert int(glued.piece(outside)) == -1
                assert float(glued.loss(on_seam)) == pytest.approx(1.0 + 1.5 * rho)
                assert abs(float(glued.loss(inside) - glued.loss(outside))) < 1e-6
                # The gradient jumps across the seam: not differentiable there.
                jump = jax.grad(glued.loss)(inside) - jax.grad(glued.loss)(outside)
                assert float(jnp.linalg.norm(jump)) > 0.1
        point = center + 2.0 * axis
        np.testing.assert_allclose(jax.grad(glued.loss)(point), w, rtol=1e-14)
        assert bool(glued.in_corridor(point))
        assert float(cr.corridor_score(glued.loss, jnp.asarray(point))) == 0.0
    cone_point = center + np.array([0.0, 2.0])
    assert int(glued.piece(cone_point)) == -1
    assert float(cr.corridor_score(glued.loss, jnp.asarray(cone_point))) < 1e-12
    assert not bool(glued.in_corridor(center))
    assert float(glued.minimum.value) == 1.0


def test_glued_seam_time_matches_bisection_and_the_flow_then_runs_along_the_seam():
    glued = figure_1b()
    theta0 = jnp.array([4.0, 1.0])
    assert int(glued.piece(theta0)) == 0
    w = np.array([3.0, 0.4])
    low, high = 0.0, 10.0  # bisection on "θ0 − t·w is in facet 0"
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (
            (mid, high) if int(glued.piece(theta0 - mid * w)) == 0 else (low, mid)
        )
    tau = float(glued.seam_time(theta0))
    assert tau == pytest.approx(low, abs=1e-12)
    seam_point = np.asarray(theta0) - tau * w
    radius = np.linalg.norm(seam_point - [0.5, -0.2])
    assert float(glued.apex_time(theta0)) == pytest.approx(
        tau + radius / 1.5, rel=1e-13
    )
    ts = jnp.array([0.5 * tau, tau + 0.1, tau + 0.5 * radius / 1.5])
    flow = np.asarray(glued.exact_flow(theta0, ts))
    np.testing.assert_allclose(flow[0], np.asarray(theta0) - 0.5 * tau * w, atol=1e-14)
    unit = (seam_point - [0.5, -0.2]) / radius
    np.testing.assert_allclose(flow[1], seam_point - 0.1 * 1.5 * unit, atol=1e-13)

    # After τ the flow runs along the seam ray itself (the cone's radial field is
    # tangent to the seam): the plane and the cone agree there, off the corridor.
    assert int(glued.piece(flow[0])) == 0 and bool(glued.in_corridor(flow[0]))
    for point in flow[1:]:
        x = point - [0.5, -0.2]
        assert abs(w @ x - 1.5 * np.linalg.norm(x)) < 1e-12
        np.testing.assert_allclose(x / np.linalg.norm(x), unit, atol=1e-13)
        assert not bool(glued.in_corridor(point))
    # The loss falls with slope −‖w‖² before the seam and −a² after it.
    assert float(glued.loss(flow[0])) == pytest.approx(
        float(glued.loss(theta0)) - 0.5 * tau * (w @ w), rel=1e-13
    )
    assert float(glued.loss(flow[2]) - glued.loss(flow[1])) == pytest.approx(
        -(1.5**2) * (0.5 * radius / 1.5 - 0.1), rel=1e-12
    )
    assert float(glued.seam_time(jnp.array([0.5, 3.0]))) == np.inf  # cone piece


def test_gradient_flow_crosses_a_glued_seam_accurately():
    glued = figure_1b()
    theta0 = jnp.array([4.0, 1.0])
    ts = jnp.linspace(0.0, 0.9 * float(glued.apex_time(theta0)), 9)
    assert float(glued.seam_time(theta0)) < float(ts[-1])
    flow = cr.gradient_flow(glued.loss, theta0, ts)
    assert_tree_allclose(flow.params, glued.exact_flow(theta0, ts), atol=1e-8)


@pytest.mark.parametrize("method", ["gd", "rk4"])
def test_a_seam_crossing_costs_one_step_then_the_method_follows_the_restarted_flow(
    method,
):
    glued = L.GluedCorridor(jnp.zeros(2), 1.0, jnp.array([[2.0, 0.0]]))
    theta0 = jnp.array([3.0, 0.5])
    lr = 0.05
    n_steps = 38
    if method == "gd":
        iterates = np.asarray(cr.gd(glued.loss, theta0, lr, n_steps))
    else:
        iterates = np.asarray(cr.runge_kutta(glued.loss, theta0, lr, n_steps))
    pieces = np.array([int(glued.piece(p)) for p in iterates])
    crossed = int(np.argmax(pieces == -1))  # first iterate in the cone piece
    tau = float(glued.seam_time(theta0))
    assert (crossed - 1) * lr < tau <= crossed * lr
    before = glued.exact_flow(theta0, lr * np.arange(crossed))
    np.testing.assert_allclose(iterates[:crossed], before, atol=1e-13)
    miss = np.linalg.norm(iterates[crossed] - glued.exact_flow(theta0, crossed * lr))
    if method == "gd":  # the documented closed form: (t_k + h − τ)·√(‖w‖² − a²)
        assert miss == pytest.approx(
            (crossed * lr - tau) * np.sqrt(4.0 - 1.0), rel=1e-10
        )
    assert 0 < miss <= lr * np.sqrt(3.0) + 1e-12
    restart = iterates[crossed]
    remaining = int(np.floor(float(glued.apex_time(restart)) / lr))
    assert remaining >= 5
    after = glued.exact_flow(restart, lr * np.arange(remaining + 1))
    np.testing.assert_allclose(
        iterates[crossed : crossed + remaining + 1], after, atol=1e-13
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"facets": [[2.0, 0.0], [1.5, 1.5]]}, "overlap"),
        ({"facets": [[0.5, 0.0]]}, "steeper"),
        ({"facets": [[2.0, 0.0, 1.0]]}, "shape"),
        ({"facets": np.zeros((0, 2))}, "shape"),
        ({"center": [1.0], "facets": [[2.0]]}, "length"),
        ({"slope": -1.0}, "> 0"),
        ({"facets": [[np.inf, 0.0]]}, "NaN or Inf"),
    ],
)
def test_glued_corridor_refuses_bad_constants(kwargs, match):
    arguments = {"center": [0.0, 0.0], "slope": 1.0, "facets": [[2.0, 0.0]]} | kwargs
    with pytest.raises(ValueError, match=match):
        L.GluedCorridor(**arguments)


# ------------------------------------------------------------------------ Bad input


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: L.Cone(jnp.zeros(2), 0.0), "slope"),
        (lambda: L.Cone(jnp.array([0.0, jnp.inf]), 1.0), "NaN or Inf"),
        (lambda: L.Cone(jnp.zeros(2), 1.0, jnp.ones(2)), "scalar"),
        (lambda: L.ConcaveCone({}, 1.0), "no array leaves"),
        (lambda: L.Linear(jnp.array([1.0, jnp.nan])), "NaN or Inf"),
        (lambda: L.Linear(jnp.ones(2), "x"), "numbers"),
        (lambda: L.Linear(jnp.ones(2), True), "bool"),
    ],
)
def test_landscapes_refuse_bad_constants(build, match):
    with pytest.raises(cr.InvalidInputError, match=match):
        build()


def test_params_of_the_wrong_shape_or_values_are_refused():
    cone = L.Cone(jnp.zeros(3), 1.0)
    with pytest.raises(ValueError, match=r"shape \(2,\).*\(3,\)"):
        cone.loss(jnp.zeros(2))
    with pytest.raises(ValueError, match="structure"):
        cone.exact_flow({"a": jnp.zeros(3)}, 1.0)
    with pytest.raises(ValueError, match=r"params0.*NaN"):
        cone.exact_flow(jnp.array([0.0, jnp.nan, 1.0]), 1.0)
    with pytest.raises(ValueError, match=r"`t`.*NaN"):
        cone.exact_flow(jnp.ones(3), jnp.array([0.0, jnp.inf]))
    with pytest.raises(ValueError, match="real times"):
        cone.exact_flow(jnp.ones(3), jnp.array([True]))
    with pytest.raises(ValueError, match="shape"):
        L.Quadratic(jnp.eye(2)).exact_flow(jnp.ones(3), 1.0)


def test_landscapes_are_pytrees_that_jit_without_recompiling():
    traces = []

    @jax.jit
    def flow_loss(landscape, theta0, t):
        traces.append(None)
        return landscape.loss(landscape.exact_flow(theta0, t))

    for slope in (1.0, 2.0, 3.0):
        cone = L.Cone(jnp.zeros(2), slope, 1.0)
        value = flow_loss(cone, jnp.array([3.0, 4.0]), 1.0)
        assert float(value) == pytest.approx(1.0 + slope * (5.0 - slope))
    assert len(traces) == 1
