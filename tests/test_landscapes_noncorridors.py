"""corridors.landscapes off the corridor: quadratics, the saddle, and the landscapes
with no closed-form flow (Rosenbrock, DeepLinear, MLPRegression)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

import corridors as cr
from corridors import landscapes as L
from corridors.testing import assert_tree_allclose


def augmented_flow(A, b, theta0, ts):
    """Independent quadratic flow: θ' = −Aθ − b via expm of [[−A, −b], [0, 0]]."""
    A, b = np.asarray(A, float), np.asarray(b, float)
    d = A.shape[0]
    generator = np.zeros((d + 1, d + 1))
    generator[:d, :d], generator[:d, d] = -A, -b
    start = np.append(np.asarray(theta0, float), 1.0)
    return np.stack([(scipy.linalg.expm(generator * t) @ start)[:d] for t in ts])


# ---------------------------------------------------------------------- Quadratics


@pytest.mark.parametrize(
    ("A", "b"),
    [
        ([[2.0, 0.5], [0.5, 1.0]], [1.0, -1.0]),  # definite
        ([[1.0, 2.0], [2.0, -1.0]], [0.5, 0.0]),  # indefinite
        ([[1.0, 1.0], [1.0, 1.0]], [1.0, -2.0]),  # singular, b ∉ range A
        ([[0.0, 0.0], [0.0, 0.0]], [1.0, 2.0]),  # A = 0: linear
        ([[3.0]], [1.0]),  # the 1-D counterexample
        ([[1e-5, 0.0], [0.0, 2.0]], [1.0, 1.0]),  # λt near 0: φ₁'s series branch
    ],
)
def test_quadratic_exact_flow_matches_the_matrix_exponential(A, b):
    quad = L.Quadratic(jnp.array(A), jnp.array(b), 0.5)
    theta0 = jnp.linspace(-1.0, 2.0, len(b))
    ts = np.array([-0.5, 0.0, 1e-9, 0.3, 1.0, 2.0])
    expected = augmented_flow(A, b, theta0, ts)
    np.testing.assert_allclose(
        quad.exact_flow(theta0, ts), expected, rtol=1e-12, atol=1e-12
    )


def test_quadratic_minimum_cases():
    quad = L.Quadratic(jnp.array([[2.0, 0.5], [0.5, 1.0]]), jnp.array([1.0, -1.0]), 3.0)
    minimum = quad.minimum
    location = -np.linalg.solve([[2.0, 0.5], [0.5, 1.0]], [1.0, -1.0])
    np.testing.assert_allclose(minimum.location, location, rtol=1e-13)
    assert float(minimum.value) == pytest.approx(
        float(quad.loss(jnp.asarray(location)))
    )
    np.testing.assert_allclose(jax.grad(quad.loss)(minimum.location), 0.0, atol=1e-14)
    # Positive semi-definite with b in range A: the minimum-norm minimizer −A⁺b.
    singular = L.Quadratic(jnp.array([[1.0, 1.0], [1.0, 1.0]]), jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(singular.minimum.location, [-0.5, -0.5], atol=1e-14)
    assert float(singular.minimum.value) == pytest.approx(-0.5)
    assert (
        L.Quadratic(jnp.array([[1.0, 1.0], [1.0, 1.0]]), jnp.array([1.0, -1.0])).minimum
        is None
    )
    assert L.Quadratic(jnp.array([[1.0, 0.0], [0.0, -1.0]])).minimum is None
    assert float(L.Quadratic(jnp.zeros((2, 2)), None, 2.0).minimum.value) == 2.0


def test_singular_quadratic_has_a_corridor_line_that_is_not_a_minimizer_set():
    # L = ½x² + y: on x = 0 the gradient is (0, 1) and H∇L = 0 — straight flow lines,
    # no minimizer. corridor_score vanishes there; everywhere else it is positive.
    quad = L.Quadratic(jnp.diag(jnp.array([1.0, 0.0])), jnp.array([0.0, 1.0]))
    line = jnp.array([0.0, 3.0])
    assert float(cr.corridor_score(quad.loss, line)) == 0.0
    assert bool(quad.in_corridor(line)) and quad.minimum is None
    assert_tree_allclose(
        cr.gd(quad.loss, line, 0.3, 5),
        quad.exact_flow(line, 0.3 * jnp.arange(6)),
        atol=1e-14,
    )
    off = jnp.array([0.5, 3.0])
    assert float(cr.corridor_score(quad.loss, off)) > 0.1
    assert not bool(quad.in_corridor(off))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([[1.0, 2.0], [0.0, 1.0]],), "symmetric"),
        (([[1.0, 2.0, 3.0]],), "square"),
        (([1.0, 2.0],), "matrix"),
        ((np.eye(2), [1.0, 2.0, 3.0]), r"shape \(2,\)"),
        ((np.eye(2), None, [1.0]), "scalar"),
        ((np.eye(2), [np.nan, 0.0]), "NaN"),
    ],
)
def test_quadratic_refuses_bad_constants(args, match):
    with pytest.raises(ValueError, match=match):
        L.Quadratic(*args)


# ------------------------------------------------------------------------ Saddle


def test_ruled_saddle_flow_and_not_a_corridor():
    saddle = L.RuledSaddle(-1.5, center=jnp.array([1.0, 2.0]))
    theta0 = jnp.array([2.0, 0.5])
    assert float(saddle.loss(theta0)) == pytest.approx(-1.5 * 1.0 * -1.5)
    A = np.array([[0.0, -1.5], [-1.5, 0.0]])
    b = -A @ np.array([1.0, 2.0])
    ts = np.array([-0.4, 0.0, 0.5, 1.2])
    np.testing.assert_allclose(
        saddle.exact_flow(theta0, ts), augmented_flow(A, b, theta0, ts), rtol=1e-12
    )
    # ‖H∇L‖/‖∇L‖ = |a| everywhere off the saddle point.
    for point in ([2.0, 0.5], [-3.0, 7.0], [1.0, 2.5]):
        score = float(cr.corridor_score(saddle.loss, jnp.array(point)))
        assert score == pytest.approx(1.5, rel=1e-12)
        assert not bool(saddle.in_corridor(jnp.array(point)))
    assert bool(saddle.in_corridor(jnp.array([1.0, 2.0])))
    assert saddle.minimum is None
    with pytest.raises(ValueError, match="non-zero"):
        L.RuledSaddle(0.0)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        L.RuledSaddle(1.0, center=jnp.zeros(3))


# -------------------------------------------------- Landscapes without a closed form


@pytest.mark.parametrize("dim", [2, 5])
def test_rosenbrock_matches_scipy(dim):
    rosen = L.Rosenbrock(dim)
    theta = np.linspace(-1.2, 1.5, dim)
    assert float(rosen.loss(jnp.asarray(theta))) == pytest.approx(
        scipy.optimize.rosen(theta)
    )
    np.testing.assert_allclose(
        jax.grad(rosen.loss)(jnp.asarray(theta)),
        scipy.optimize.rosen_der(theta),
        rtol=1e-12,
    )
    np.testing.assert_allclose(rosen.minimum.location, np.ones(dim))
    assert float(rosen.loss(rosen.minimum.location)) == 0.0
    assert not bool(rosen.in_corridor(jnp.asarray(theta)))


def test_rosenbrock_minimum_for_other_a():
    assert np.allclose(L.Rosenbrock(2, a=2.0).minimum.location, [2.0, 4.0])
    assert L.Rosenbrock(3, a=2.0).minimum is None
    with pytest.raises(ValueError, match="dim"):
        L.Rosenbrock(1)
    with pytest.raises(ValueError, match="> 0"):
        L.Rosenbrock(2, b=0.0)


@pytest.fixture(scope="module")
def mlp():
    return L.MLPRegression([3, 5, 4, 2], jax.random.key(7), 16)


@pytest.mark.parametrize(
    "build",
    [
        lambda: L.Rosenbrock(3),
        lambda: L.DeepLinear(jnp.eye(2), 2),
        lambda: L.MLPRegression([3, 5, 4, 2], jax.random.key(7), 16),
    ],
    ids=["Rosenbrock", "DeepLinear", "MLPRegression"],
)
def test_exact_flow_is_absent_where_there_is_no_closed_form(build):
    landscape = build()
    assert not hasattr(landscape, "exact_flow")
    assert not hasattr(type(landscape), "exact_flow")
    with pytest.raises(NotImplementedError, match="gradient_flow"):
        landscape.exact_flow  # noqa: B018
    with pytest.raises(L.NoExactFlowError, match="no closed-form"):
        landscape.exact_flow(None, 0.0)


def test_deep_linear_minimum_is_the_balanced_truncated_svd():
    target = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5]])
    sigma = np.linalg.svd(np.asarray(target), compute_uv=False)
    full = L.DeepLinear(target, 4)
    minimum = full.minimum
    assert float(minimum.value) == pytest.approx(0.0, abs=1e-24)
    assert float(full.loss(minimum.location)) < 1e-24
    w1, w2 = minimum.location
    np.testing.assert_allclose(w1 @ w1.T, w2.T @ w2, atol=1e-12)  # balanced
    narrow = L.DeepLinear(target, 1)  # Eckart–Young: the best rank-1 fit
    assert float(narrow.minimum.value) == pytest.approx(0.5 * sigma[1] ** 2, rel=1e-12)
    assert float(narrow.loss(narrow.minimum.location)) == pytest.approx(
        0.5 * sigma[1] ** 2, rel=1e-12
    )
    grads = jax.grad(narrow.loss)(narrow.minimum.location)
    assert max(float(jnp.abs(g).max()) for g in grads) < 1e-12
    params = full.init(jax.random.key(1))
    assert [p.shape for p in params] == [(4, 3), (2, 4)]
    assert float(cr.corridor_score(full.loss, params)) > 1e-3
    with pytest.raises(ValueError, match="hidden"):
        L.DeepLinear(target, 0)
    with pytest.raises(ValueError, match="shape"):
        full.loss((jnp.zeros((3, 3)), jnp.zeros((2, 4))))


def test_mlp_regression_teacher_is_a_global_minimum(mlp):
    problem = mlp
    assert problem.inputs.shape == (16, 3) and problem.targets.shape == (16, 2)
    value_and_grad = jax.jit(jax.value_and_grad(problem.loss))
    value, grads = value_and_grad(problem.teacher)
    assert float(value) < 1e-28 and float(problem.minimum.value) == 0.0
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) < 1e-14
    student = problem.init(jax.random.key(8))
    assert jax.tree.structure(student) == jax.tree.structure(problem.teacher)
    assert float(value_and_grad(student)[0]) > 1e-3
    assert float(cr.corridor_score(problem.loss, student)) > 1e-6
    again = L.MLPRegression([3, 5, 4, 2], jax.random.key(7), 16)
    np.testing.assert_array_equal(again.targets, problem.targets)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([3], jax.random.key(0), 4), "widths"),
        (([3, 0], jax.random.key(0), 4), "widths"),
        (([3, 2.5], jax.random.key(0), 4), "widths"),
        (([3, 2], jax.random.key(0), 0), "`n`"),
        (([3, 2], 0, 4), "PRNG key"),
    ],
)
def test_mlp_regression_refuses_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        L.MLPRegression(*args)
