"""corridors.testing: strategies keep their guarantees, assertions fail informatively."""

import math
import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import find as hypothesis_find
from hypothesis import strategies as st

import corridors as cr
from corridors import landscapes as L
from corridors import testing as T
from corridors.testing import _profiles as profiles_module


def test_public_kit_is_reachable_from_the_top_level():
    assert cr.testing is T and cr.landscapes is L
    for name in T.__all__:
        assert getattr(T, name).__doc__, name


# --------------------------------------------------------------------- strategies


def find(strategy, condition):
    """An example satisfying `condition`, searched deterministically, not shrunk."""
    options = settings(
        phases=[Phase.generate], max_examples=500, derandomize=True, database=None
    )
    return hypothesis_find(strategy, condition, settings=options)


@eqx.filter_jit
def _along_the_line(landscape, params0, ts):
    """Loss, gradient and in_corridor at θ₀ − t·∇L(θ₀) for every t (the straight line)."""
    value, grad = jax.value_and_grad(landscape.loss)(params0)

    def at(t):
        point = jax.tree.map(lambda p, g: p - t * g, params0, grad)
        loss, g = jax.value_and_grad(landscape.loss)(point)
        return loss, g, landscape.in_corridor(point)

    losses, grads, inside = jax.vmap(at)(ts)
    speed = sum(jnp.vdot(g, g) for g in jax.tree.leaves(grad))
    return value, speed, grad, losses, grads, inside


@given(T.corridor_problems())
def test_corridor_problems_keep_the_straight_flow_line_inside_the_corridor(problem):
    landscape, params0, lr, n_steps = problem
    assert isinstance(landscape, L.AbstractExactLandscape)
    assert isinstance(lr, float) and 1e-3 <= lr <= 0.1
    assert isinstance(n_steps, int) and 1 <= n_steps <= 16
    # Independently of exact_flow: along the straight line θ₀ − t∇L(θ₀), over the
    # promised window [−slack·lr, reach·n·lr] and 20% beyond, the gradient stays
    # ∇L(θ₀) and the loss falls linearly — so the line is the flow, in one piece.
    ts = np.linspace(-6.0 * lr, 1.2 * 10.0 * n_steps * lr, 25)
    value, speed, grad, losses, grads, inside = _along_the_line(landscape, params0, ts)
    assert float(speed) > 0
    assert bool(jnp.all(inside))
    for g, g0 in zip(jax.tree.leaves(grads), jax.tree.leaves(grad), strict=True):
        np.testing.assert_allclose(
            g, np.broadcast_to(g0, g.shape), rtol=1e-9, atol=1e-9
        )
    np.testing.assert_allclose(
        losses, value - ts * speed, rtol=1e-10, atol=1e-10 * (1 + abs(float(value)))
    )


def test_corridor_problems_draw_every_kind_and_pytree_params():
    kinds = {
        kind: find(T.corridor_problems(), lambda p, kind=kind: isinstance(p[0], kind))
        for kind in (L.Linear, L.Cone, L.ConcaveCone, L.CylinderCone, L.GluedCorridor)
    }
    assert all(problem is not None for problem in kinds.values())
    nested = find(
        T.corridor_problems(), lambda p: isinstance(p[1], (dict, list, tuple))
    )
    assert isinstance(nested[0], (L.Linear, L.Cone, L.ConcaveCone))
    glued_facet = find(
        T.corridor_problems(kinds=(L.GluedCorridor,)),
        lambda p: int(p[0].piece(p[1])) >= 0,
    )
    assert float(glued_facet[0].seam_time(glued_facet[1])) < np.inf


@given(
    T.quadratic_problems(
        allow_negative=True, allow_zero=True, min_curvature=0.2, max_curvature=5.0
    )
)
def test_quadratic_problems_honour_their_guarantees(problem):
    quad, params0, lr, n_steps = problem
    A, b = np.asarray(quad.A), np.asarray(quad.b)
    np.testing.assert_array_equal(A, A.T)
    eigenvalues = np.linalg.eigvalsh(A)
    nonzero = np.abs(eigenvalues) > 1e-9
    assert nonzero.any()
    magnitudes = np.abs(eigenvalues[nonzero])
    assert np.all((magnitudes >= 0.2 * (1 - 1e-9)) & (magnitudes <= 5.0 * (1 + 1e-9)))
    assert lr * 5.0 <= 1 + 1e-12 and 1 <= n_steps <= 16
    grad = A @ np.asarray(params0) + b
    score = np.linalg.norm(A @ grad) / np.linalg.norm(grad)
    assert score >= 0.1 * (1 - 1e-9)
    assert float(cr.corridor_score(quad.loss, params0)) == pytest.approx(
        score, rel=1e-9
    )


@given(T.quadratic_problems())
def test_default_quadratic_problems_are_definite_with_score_at_least_min_curvature(
    problem,
):
    quad, params0, _, _ = problem
    assert np.min(np.linalg.eigvalsh(np.asarray(quad.A))) >= 0.1 * (1 - 1e-9)
    assert float(cr.corridor_score(quad.loss, params0)) >= 0.1 * (1 - 1e-9)


@given(T.explicit_rk_tableaux(min_stages=2, max_stages=6, max_coefficient=0.5))
def test_explicit_rk_tableaux_are_consistent_explicit_and_bounded(tableau):
    assert 2 <= tableau.num_stages <= 6 and not tableau.implicit
    assert math.isclose(float(np.sum(tableau.b_sol)), 1.0, abs_tol=1e-12)
    np.testing.assert_array_equal(tableau.c, [row.sum() for row in tableau.a_lower])
    assert all(np.all(np.abs(row) <= 0.5) for row in tableau.a_lower)
    assert np.all(np.abs(tableau.b_sol[:-1]) <= 0.5)
    np.testing.assert_array_equal(tableau.b_error, 0.0)


def test_explicit_rk_tableaux_reach_the_extremes():
    assert find(T.explicit_rk_tableaux(), lambda t: t.num_stages == 6)
    assert find(T.explicit_rk_tableaux(), lambda t: t.num_stages == 2)
    assert find(T.explicit_rk_tableaux(), lambda t: np.max(np.abs(t.c)) > 2.0)


@given(T.pytrees(max_leaves=4, max_leaf_size=6, min_value=-0.5, max_value=0.5))
def test_pytrees_are_finite_bounded_floating_and_small(tree):
    leaves = jax.tree.leaves(tree)
    assert 1 <= len(leaves) <= 4
    for leaf in leaves:
        assert isinstance(leaf, jax.Array) and leaf.dtype == jnp.float64
        assert leaf.size <= 6 and leaf.ndim <= 2
        assert bool(jnp.all(jnp.isfinite(leaf) & (jnp.abs(leaf) <= 0.5)))


@given(st.data())
def test_pytrees_like_a_template_copy_its_structure_and_shapes(data):
    template = data.draw(T.pytrees())
    tree = data.draw(T.pytrees(like=template))
    assert jax.tree.structure(tree) == jax.tree.structure(template)
    assert [x.shape for x in jax.tree.leaves(tree)] == [
        x.shape for x in jax.tree.leaves(template)
    ]


def test_pytrees_nest_dicts_tuples_and_lists_of_mixed_shapes():
    nested = find(
        T.pytrees(),
        lambda t: (
            isinstance(t, dict)
            and any(isinstance(v, (tuple, list)) for v in t.values())
        ),
    )
    assert isinstance(nested, dict)
    assert find(T.pytrees(), lambda t: isinstance(t, list))
    mixed = find(T.pytrees(), lambda t: len({x.ndim for x in jax.tree.leaves(t)}) == 3)
    assert {x.ndim for x in jax.tree.leaves(mixed)} == {0, 1, 2}


@given(T.learning_rates(1e-4, 1.0))
def test_learning_rates_lie_in_their_range(lr):
    assert isinstance(lr, float) and 1e-4 <= lr <= 1.0


def test_learning_rates_cover_every_decade():
    assert find(T.learning_rates(1e-4, 1.0), lambda h: h < 1e-3)
    assert find(T.learning_rates(1e-4, 1.0), lambda h: h > 0.1)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: T.corridor_problems(kinds=(L.Quadratic,)), "kinds"),
        (lambda: T.corridor_problems(dims=0), "dims"),
        (lambda: T.corridor_problems(n_steps=(3, 1)), "n_steps"),
        (lambda: T.corridor_problems(n_steps=2.5), "n_steps"),
        (lambda: T.corridor_problems(lrs=(-1.0, 0.1)), "lrs"),
        (lambda: T.corridor_problems(reach=5.0, slack=6.0), "slack"),
        (lambda: T.quadratic_problems(min_curvature=0.0), "curvature"),
        (lambda: T.quadratic_problems(lrs=(0.5, 1.0)), "1/max_curvature"),
        (lambda: T.explicit_rk_tableaux(min_stages=1), "1-stage"),
        (lambda: T.explicit_rk_tableaux(max_coefficient=0.0), "max_coefficient"),
        (lambda: T.pytrees(max_leaves=0), "max_leaves"),
        (lambda: T.pytrees(like={}), "no array leaves"),
        (lambda: T.learning_rates(0.0, 1.0), "0 < min_value"),
    ],
)
def test_strategies_refuse_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# --------------------------------------------------------------------- assertions


def test_assert_tree_allclose_passes_and_names_the_worst_leaf_and_index():
    a = {"w": jnp.ones((3, 2)), "b": (jnp.array(1.0), jnp.zeros(2))}
    T.assert_tree_allclose(a, jax.tree.map(lambda x: x + 1e-9, a), atol=1e-8)
    bad = {"w": jnp.ones((3, 2)).at[1, 1].set(1.1), "b": (jnp.array(1.0), jnp.zeros(2))}
    with pytest.raises(AssertionError) as info:
        T.assert_tree_allclose(bad, a, rtol=1e-7, err_msg="context")
    message = str(info.value)
    assert message.startswith("context")
    for fragment in ("['w']", "(1, 1)", "1 of 9 entries", "actual 1.1", "expected 1"):
        assert fragment in message, message
    with pytest.raises(AssertionError, match="structures differ"):
        T.assert_tree_allclose({"w": jnp.ones(2)}, (jnp.ones(2),))
    with pytest.raises(AssertionError, match=r"shape \(3,\)"):
        T.assert_tree_allclose(jnp.ones(3), jnp.ones(2))
    T.assert_tree_allclose(jnp.array([jnp.nan]), jnp.array([jnp.nan]))
    with pytest.raises(AssertionError, match="nan"):
        T.assert_tree_allclose(jnp.array([jnp.nan]), jnp.array([1.0]))


def test_assert_follows_flow_passes_in_a_corridor_for_every_method():
    cone = L.Cone(jnp.array([1.0, -1.0]), 2.0)
    theta0 = jnp.array([40.0, 30.0])
    for method in ("gd", "momentum", "nesterov", "heun"):
        distances = T.assert_follows_flow(
            cone.loss, theta0, 0.1, 10, method=method, flow=cone.exact_flow
        )
        assert distances.shape == (11,) and distances.max() < 1e-12
    # The default reference is corridors.gradient_flow.
    T.assert_follows_flow(cone.loss, theta0, 0.1, 10)


def test_assert_follows_flow_reports_the_worst_step_off_a_corridor():
    quad = L.Quadratic(jnp.array([[2.0, 0.5], [0.5, 1.0]]), jnp.array([1.0, 0.0]))
    with pytest.raises(AssertionError) as info:
        T.assert_follows_flow(
            quad.loss, jnp.array([1.0, 2.0]), 0.1, 5, flow=quad.exact_flow
        )
    message = str(info.value)
    for fragment in (
        "gd at lr=0.1 for 5 steps does not follow",
        "Worst step: k =",
        "allowed",
        "5 of 6 steps exceed",
        "first at k = 1",
        "θ_k =",
        "φ(t_k) =",
    ):
        assert fragment in message, message
    with pytest.raises(ValueError, match="n_steps"):
        T.assert_follows_flow(quad.loss, jnp.ones(2), 0.1, 0)


def test_assert_drift_order_measures_local_and_global_orders():
    quad = L.Quadratic(jnp.array([[2.0, 0.5], [0.5, 1.0]]), jnp.array([1.0, 0.0]))
    theta0 = jnp.array([1.0, 2.0])
    lrs = 0.01 * 2.0 ** -np.arange(4)
    assert T.assert_drift_order(quad.loss, theta0, lrs, 2.0) == pytest.approx(
        2.0, abs=0.05
    )
    with pytest.raises(AssertionError) as info:
        T.assert_drift_order(quad.loss, theta0, lrs, 3.0)
    for fragment in (
        "measured drift order 1.9",
        "expected 3.0 ± 0.1",
        "Worst pairwise slope",
    ):
        assert fragment in str(info.value), str(info.value)
    order = T.assert_drift_order(
        quad.loss, theta0, [0.1, 0.05, 0.025], 1.0, horizon=1.0
    )
    assert order == pytest.approx(1.0, abs=0.1)
    # Drifts at the floor (reference-solve noise; e.g. a corridor) measure nothing.
    with pytest.raises(AssertionError, match="reaches the floor"):
        T.assert_drift_order(quad.loss, theta0, lrs, 2.0, floor=1e-5)
    with pytest.raises(ValueError, match="two distinct"):
        T.assert_drift_order(quad.loss, theta0, [0.1], 2.0)


def test_assert_in_corridor_checks_stacked_points():
    cone = L.Cone(jnp.array([1.0, -1.0]), 2.0)
    iterates = cr.gd(cone.loss, jnp.array([40.0, 30.0]), 0.1, 5)
    scores = T.assert_in_corridor(cone.loss, iterates)
    assert scores.shape == (6,) and scores.max() < 1e-12
    quad = L.Quadratic(jnp.eye(2))
    with pytest.raises(AssertionError) as info:
        T.assert_in_corridor(quad.loss, jnp.array([[0.0, 0.0], [1.0, 2.0], [3.0, 0.0]]))
    message = str(info.value)
    for fragment in ("2 of 3 points are off the corridor", "Worst: point", "score 1.0"):
        assert fragment in message, message
    with pytest.raises(ValueError, match="stacked"):
        T.assert_in_corridor(quad.loss, {"a": jnp.ones(2), "b": jnp.array(1.0)})


def test_assert_in_corridor_default_tolerance_follows_the_dtype():
    # A cone's own float32 GD path scores ~1e-8 (round-off), which float64's default
    # of 1e-8 would call off the corridor; a curved quadratic (score 1) still fails.
    cone = L.Cone(jnp.zeros(2, jnp.float32), 1.0)
    iterates = cr.gd(cone.loss, jnp.array([3.0, 4.0], jnp.float32), 0.1, 5)
    scores = T.assert_in_corridor(cone.loss, iterates)
    assert 0 < scores.max() < 1e-5
    with pytest.raises(AssertionError, match="6 of 6 points are off the corridor"):
        T.assert_in_corridor(lambda p: 0.5 * jnp.sum(p**2), iterates)
    with pytest.raises(AssertionError):  # the float64 default is too tight here
        T.assert_in_corridor(cone.loss, iterates, tol=1e-12)


# ----------------------------------------------------------------------- profiles


def test_profiles_are_registered_with_their_documented_settings():
    ci, thorough = settings.get_profile("ci"), settings.get_profile("thorough")
    assert ci.deadline is None and thorough.deadline is None
    # Ours, not hypothesis's built-in `ci` (100 examples) that exists before we import.
    assert ci.max_examples == 10 and settings().max_examples in (10, 200)
    assert T.PROFILE_ENV == "CORRIDORS_HYPOTHESIS_PROFILE"
    assert T.PROFILES == ("ci", "thorough")
    saved = {name: settings.get_profile(name) for name in T.PROFILES}
    try:
        T.register_profiles()
        assert settings.get_profile("ci").max_examples == 10
        assert settings.get_profile("ci").derandomize
        assert settings.get_profile("thorough").max_examples == 200
        settings.register_profile("ci", max_examples=3)
        T.register_profiles(overwrite=False)  # a project's own profile wins
        assert settings.get_profile("ci").max_examples == 3
    finally:
        for name, profile in saved.items():
            settings.register_profile(name, profile)


def test_load_profile_reads_the_environment_variable(monkeypatch):
    loaded = []
    recorder = types.SimpleNamespace(
        get_profile=settings.get_profile,
        register_profile=settings.register_profile,
        load_profile=loaded.append,
    )
    monkeypatch.setattr(profiles_module, "settings", recorder)
    monkeypatch.setenv("CORRIDORS_HYPOTHESIS_PROFILE", "thorough")
    assert T.load_profile() == "thorough"
    monkeypatch.delenv("CORRIDORS_HYPOTHESIS_PROFILE")
    assert T.load_profile() == "ci"
    assert T.load_profile("thorough") == "thorough"
    assert loaded == ["thorough", "ci", "thorough"]
    monkeypatch.setenv("CORRIDORS_HYPOTHESIS_PROFILE", "nightly")
    with pytest.raises(ValueError, match="nightly"):
        T.load_profile()
