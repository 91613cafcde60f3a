import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import corridors as cr

from .helpers import log_log_slope, tree_allclose
from .problems import cone, linear, mlp_loss, mlp_problem, quadratic, random_spd

seeds = st.integers(0, 2**32 - 1)


def dense_hessian(loss, params, args=()):
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.hessian(lambda f: loss(unravel(f), *args))(flat))


def concave_cone(theta, center, slope, offset):
    return offset - slope * jnp.linalg.norm(theta - center)


# ---- hvp -------------------------------------------------------------------------


@given(seeds)
def test_hvp_equals_dense_hessian_on_a_nested_pytree(seed):
    params, data = mlp_problem(sizes=(3, 5, 2), n=7, seed=seed % 1000)
    flat, unravel = ravel_pytree(params)
    tangent = unravel(jax.random.normal(jax.random.key(seed), flat.shape))
    expected = dense_hessian(mlp_loss, params, data) @ ravel_pytree(tangent)[0]
    got = cr.hvp(mlp_loss, params, tangent, data)
    assert jax.tree.structure(got) == jax.tree.structure(params)
    np.testing.assert_allclose(ravel_pytree(got)[0], expected, rtol=1e-10, atol=1e-12)


@given(seeds)
def test_hvp_is_symmetric_and_linear(seed):
    params, data = mlp_problem(sizes=(3, 4, 1), n=5, seed=1)
    flat, unravel = ravel_pytree(params)
    ku, kv = jax.random.split(jax.random.key(seed))
    u = jax.random.normal(ku, flat.shape)
    v = jax.random.normal(kv, flat.shape)

    def hv(x):
        return ravel_pytree(cr.hvp(mlp_loss, params, unravel(x), data))[0]

    assert np.isclose(u @ hv(v), v @ hv(u), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        hv(2.0 * u - 3.0 * v), 2.0 * hv(u) - 3.0 * hv(v), atol=1e-11
    )


# ---- corridor score ----------------------------------------------------------------


@given(seeds, st.integers(1, 6))
def test_corridor_score_vanishes_on_linear_losses(seed, dim):
    rng = np.random.default_rng(seed)
    w, theta = rng.normal(size=(2, dim))
    assert cr.corridor_score(linear, jnp.asarray(theta), (jnp.asarray(w), 0.7)) <= 1e-10


@given(seeds, st.sampled_from([1, 2, 3, 7]), st.sampled_from([cone, concave_cone]))
def test_corridor_score_vanishes_on_cones_away_from_the_apex(seed, dim, shape):
    rng = np.random.default_rng(seed)
    center = rng.normal(size=dim)
    direction = rng.normal(size=dim)
    # A point at distance ≥ 0.1 from the apex, so the cone is smooth there.
    theta = center + rng.uniform(0.1, 10.0) * direction / np.linalg.norm(direction)
    args = (jnp.asarray(center), rng.uniform(0.1, 5.0), rng.normal())
    assert cr.corridor_score(shape, jnp.asarray(theta), args) <= 1e-10


@given(seeds, st.integers(1, 5))
def test_corridor_score_on_quadratics_matches_closed_form_and_is_positive(seed, dim):
    rng = np.random.default_rng(seed)
    # Symmetric, nonzero, possibly indefinite or singular.
    m = rng.normal(size=(dim, dim))
    a = m + m.T
    a[0, 0] += 1.0 if np.allclose(a, 0) else 0.0
    b, theta = rng.normal(size=(2, dim))
    grad = a @ theta + b
    expected = np.linalg.norm(a @ grad) / np.linalg.norm(grad)
    score = cr.corridor_score(
        quadratic, jnp.asarray(theta), (jnp.asarray(a), jnp.asarray(b))
    )
    assert np.isclose(score, expected, rtol=1e-10)
    assert score > 0  # H∇L = 0 only on a measure-zero set when A ≠ 0 (Appendix C)


def test_corridor_score_is_zero_not_nan_at_a_critical_point():
    a = jnp.diag(jnp.array([2.0, 1.0]))
    b = jnp.array([1.0, -1.0])
    minimizer = -jnp.linalg.solve(a, b)
    score = cr.corridor_score(quadratic, minimizer, (a, b))
    assert score == 0.0
    # Differentiating through the score at the critical point gives no NaN either.
    grad = jax.grad(lambda th: cr.corridor_score(quadratic, th, (a, b)))(minimizer)
    assert np.all(np.isfinite(grad))


# ---- predicted step drift ------------------------------------------------------------


def test_predicted_step_drift_matches_closed_form_and_the_measured_step():
    rng = np.random.default_rng(3)
    a, b, theta = random_spd(rng, 4), rng.normal(size=4), rng.normal(size=4)
    args = (jnp.asarray(a), jnp.asarray(b))
    lrs = np.geomspace(0.005, 0.05, 6)
    predicted = np.array(
        [cr.predicted_step_drift(quadratic, theta, h, args) for h in lrs]
    )
    closed_form = 0.5 * lrs**2 * np.linalg.norm(a @ (a @ theta + b))
    np.testing.assert_allclose(predicted, closed_form, rtol=1e-12)
    measured = np.array(
        [cr.measure_drift(quadratic, theta, h, 1, args).distance[-1] for h in lrs]
    )
    # The prediction is the h² term: the remainder is O(h³), so its slope is 3.
    assert abs(log_log_slope(lrs, np.abs(measured - predicted)) - 3.0) < 0.15


# ---- sharpness -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_spectrum():
    """A 1151-parameter MLP problem and its exact Hessian spectrum, descending."""
    params, data = mlp_problem(sizes=(8, 28, 28, 3), n=64, seed=0)
    assert 1000 <= ravel_pytree(params)[0].size <= 5000
    spectrum = np.linalg.eigvalsh(dense_hessian(mlp_loss, params, data))[::-1]
    return params, data, spectrum


@pytest.mark.parametrize("k", [1, 5])
def test_sharpness_matches_eigvalsh_on_a_1k_parameter_mlp(mlp_spectrum, k):
    params, data, spectrum = mlp_spectrum
    exact = spectrum[:k]
    got = cr.sharpness(mlp_loss, params, data, k=k)
    assert got.shape == (k,)
    np.testing.assert_allclose(got, exact, rtol=1e-6)


def test_sharpness_finds_repeated_and_negative_eigenvalues():
    # Top eigenvalue 3 with multiplicity 3, then 1, then negatives: a single Krylov
    # sequence sees only one copy of 3; the restart on breakdown must find the rest.
    eigenvalues = np.array([3.0, -2.0, 3.0, 1.0, 3.0, -5.0])
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a = jnp.asarray((q * eigenvalues) @ q.T)
    got = cr.sharpness(quadratic, jnp.ones(6), (a, jnp.zeros(6)), k=5)
    np.testing.assert_allclose(got, [3.0, 3.0, 3.0, 1.0, -2.0], rtol=1e-8)


def test_sharpness_on_an_indefinite_diagonal_with_all_eigenvalues():
    d = jnp.array([-1.0, 0.5, 2.0])
    got = cr.sharpness(quadratic, jnp.zeros(3), (jnp.diag(d), jnp.zeros(3)), k=3)
    np.testing.assert_allclose(got, [2.0, 0.5, -1.0], rtol=1e-10)


def test_sharpness_in_float32():
    params, data = mlp_problem(sizes=(6, 24, 2), n=32, seed=2)
    exact = np.linalg.eigvalsh(dense_hessian(mlp_loss, params, data))[::-1][:2]
    params32 = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    data32 = tuple(x.astype(jnp.float32) for x in data)
    got = cr.sharpness(mlp_loss, params32, data32, k=2, tol=1e-4)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, exact, rtol=1e-4)


def test_sharpness_reports_non_convergence(mlp_spectrum):
    params, data, _ = mlp_spectrum
    with pytest.raises(eqx.EquinoxRuntimeError, match="did not reach tol"):
        cr.sharpness(mlp_loss, params, data, k=3, max_iter=5)


def test_sharpness_key_changes_nothing_but_the_start():
    params, data = mlp_problem(sizes=(5, 16, 2), n=16, seed=4)
    first = cr.sharpness(mlp_loss, params, data, k=2, key=jax.random.key(1))
    second = cr.sharpness(mlp_loss, params, data, k=2, key=jax.random.key(2))
    np.testing.assert_allclose(first, second, rtol=1e-6)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"k": 0}, "`k`"),
        ({"k": 4}, "`k`"),
        ({"tol": 0.0}, "`tol`"),
        ({"max_iter": 0}, "`max_iter`"),
    ],
)
def test_sharpness_refuses_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        cr.sharpness(quadratic, jnp.ones(3), (jnp.eye(3), jnp.zeros(3)), **options)


def test_geometry_works_under_jit_on_pytrees():
    params, data = mlp_problem(sizes=(3, 4, 2), n=5, seed=5)

    @jax.jit
    def measures(p):
        return cr.corridor_score(mlp_loss, p, data), cr.sharpness(
            mlp_loss, p, data, k=2
        )

    score, top = measures(params)
    assert score == pytest.approx(
        float(cr.corridor_score(mlp_loss, params, data)), rel=1e-12
    )
    assert tree_allclose(top, cr.sharpness(mlp_loss, params, data, k=2), rtol=1e-8)


@pytest.mark.parametrize(
    ("tangent", "match"),
    [
        ({"a": jnp.ones(2)}, "same pytree structure"),
        ((jnp.ones(2), jnp.ones(3)), "shape"),
        ((jnp.ones(2), jnp.ones((2, 2))), "shape"),
    ],
)
def test_hvp_refuses_a_mismatched_tangent(tangent, match):
    def loss(params):
        return jnp.sum(params[0] ** 2) * jnp.sum(params[1] ** 2)

    with pytest.raises(ValueError, match=match):
        cr.hvp(loss, (jnp.ones(2), jnp.ones(2)), tangent)


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf, -jnp.inf])
def test_non_finite_params_are_refused_by_every_geometry_function(bad):
    a, b = jnp.eye(2), jnp.zeros(2)
    theta = jnp.array([1.0, bad])
    calls = [
        lambda: cr.hvp(quadratic, theta, jnp.ones(2), (a, b)),
        lambda: cr.corridor_score(quadratic, theta, (a, b)),
        lambda: cr.predicted_step_drift(quadratic, theta, 0.1, (a, b)),
        lambda: cr.sharpness(quadratic, theta, (a, b)),
    ]
    for call in calls:
        # InvalidInputError is a ValueError and an equinox.EquinoxRuntimeError.
        with pytest.raises(ValueError, match="`params` contains NaN or Inf"):
            call()
        with pytest.raises(eqx.EquinoxRuntimeError):
            call()
