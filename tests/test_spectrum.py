"""The Hessian's spectrum: sharpness (which, methods, warm starts, throw), trace,
density and per-block sharpness, all against dense numpy.linalg.eigvalsh."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import corridors as cr

from .problems import mlp_loss, mlp_problem, quadratic


def dense_hessian(loss, params, args=()):
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.hessian(lambda f: loss(unravel(f), *args))(flat))


@pytest.fixture(scope="module")
def mlp():
    """A 213-parameter tanh MLP, its dense Hessian and spectrum (ascending)."""
    params, data = mlp_problem(sizes=(5, 16, 7, 3), n=24, seed=3)
    hessian = dense_hessian(mlp_loss, params, data)
    return params, data, hessian, np.linalg.eigvalsh(hessian)


def extreme(spectrum, which, k):
    if which == "largest":
        return spectrum[::-1][:k]
    if which == "smallest":
        return spectrum[:k]
    return spectrum[np.argsort(-np.abs(spectrum), kind="stable")][:k]


# ---- sharpness: which, methods, warm starts, throw ----------------------------------


@pytest.mark.parametrize(
    ("method", "which"),
    [
        ("lanczos", "smallest"),
        ("restarted", "largest"),
        ("restarted", "magnitude"),
        pytest.param("lanczos", "largest", marks=pytest.mark.slow),
        pytest.param("lanczos", "magnitude", marks=pytest.mark.slow),
        pytest.param("restarted", "smallest", marks=pytest.mark.slow),
    ],
)
def test_sharpness_extremes_match_eigvalsh(mlp, method, which):
    params, data, _, spectrum = mlp
    assert spectrum[0] < 0 < spectrum[-1]  # indefinite: the three orders differ
    got = cr.sharpness(
        mlp_loss, params, data, k=3, which=which, method=method, max_iter=2000
    )
    np.testing.assert_allclose(got, extreme(spectrum, which, 3), rtol=1e-6)


def test_sharpness_result_holds_eigenvectors(mlp):
    params, data, hessian, _ = mlp
    found = cr.sharpness(mlp_loss, params, data, k=2, return_result=True)
    assert found.result == cr.RESULTS.successful
    vectors = jax.vmap(lambda v: ravel_pytree(v)[0])(found.eigenvectors)
    assert vectors.shape == (2, hessian.shape[0])
    residual = hessian @ np.asarray(vectors).T - np.asarray(vectors).T * np.asarray(
        found.eigenvalues
    )
    # The returned residuals are the true ones (up to round-off), all within tol.
    np.testing.assert_allclose(
        np.linalg.norm(residual, axis=0), found.residuals, atol=1e-9
    )
    assert np.all(found.residuals <= 1e-6 * np.abs(found.eigenvalues))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-10)


def test_warm_start_from_nearby_params_takes_fewer_products(mlp):
    params, data, _, _ = mlp
    cold = cr.sharpness(mlp_loss, params, data, k=1, tol=1e-6, return_result=True)
    moved = jax.tree.map(lambda p: p + 1e-5, params)  # about one small GD step
    exact = np.linalg.eigvalsh(dense_hessian(mlp_loss, moved, data))[-1]
    again = cr.sharpness(
        mlp_loss, moved, data, k=1, tol=1e-6, init=cold, return_result=True
    )
    np.testing.assert_allclose(again.eigenvalues[0], exact, rtol=1e-6)
    assert int(again.hvps) * 3 <= int(cold.hvps)
    # A pytree of vectors (no leading axis) is a warm start too.
    one = jax.tree.map(lambda v: v[0], cold.eigenvectors)
    same = cr.sharpness(mlp_loss, moved, data, init=one, return_result=True)
    assert int(same.hvps) == int(again.hvps)


def test_throw_false_reports_non_convergence(mlp):
    params, data, _, _ = mlp
    found = cr.sharpness(mlp_loss, params, data, k=3, max_iter=5, throw=False)
    assert found.result == cr.RESULTS.not_converged
    assert int(found.hvps) == 5
    with pytest.raises(eqx.EquinoxRuntimeError, match="did not reach tol"):
        cr.sharpness(mlp_loss, params, data, k=3, max_iter=5, method="restarted")


@pytest.mark.slow
def test_restarted_lanczos_restarts_and_stays_exact():
    # Close top eigenvalues (gaps 1e-2 of a spread 1) need more than the k + 5 = 8
    # basis vectors: the solve restarts and still resolves each of them. (Exactly
    # repeated eigenvalues are the full basis's job: see `sharpness`'s docstring.)
    rng = np.random.default_rng(1)
    eigenvalues = np.concatenate([[1.0, 0.99, 0.98], np.linspace(-0.5, 0.9, 57)])
    q, _ = np.linalg.qr(rng.normal(size=(60, 60)))
    a = jnp.asarray((q * eigenvalues) @ q.T)
    found = cr.sharpness(
        quadratic, jnp.ones(60), (a, jnp.zeros(60)), k=3, method="restarted",
        tol=1e-8, return_result=True,
    )  # fmt: skip
    np.testing.assert_allclose(found.eigenvalues, [1.0, 0.99, 0.98], rtol=1e-8)
    assert int(found.hvps) > 20


@pytest.mark.slow
def test_sharpness_restarted_in_float32():
    params, data = mlp_problem(sizes=(6, 24, 2), n=32, seed=2)
    exact = np.linalg.eigvalsh(dense_hessian(mlp_loss, params, data))[::-1][:2]
    params32 = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    data32 = tuple(x.astype(jnp.float32) for x in data)
    got = cr.sharpness(mlp_loss, params32, data32, k=2, tol=1e-4, method="restarted")
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, exact, rtol=1e-4)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"which": "top"}, "`which`"),
        ({"method": "lobpcg"}, "`method`"),
        ({"throw": 1}, "`throw`"),
        ({"return_result": None}, "`return_result`"),
        ({"init": jnp.ones(4)}, "`init`"),
        ({"init": {"a": jnp.ones(3)}}, "`init`"),
        ({"init": jnp.array([1.0, jnp.nan, 0.0])}, "`init` contains NaN"),
    ],
)
def test_sharpness_refuses_bad_new_options(options, match):
    with pytest.raises(ValueError, match=match):
        cr.sharpness(quadratic, jnp.ones(3), (jnp.eye(3), jnp.zeros(3)), **options)


# ---- hessian_trace -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["hutchinson", "hutch++"])
def test_trace_within_three_standard_errors(mlp, method):
    params, data, hessian, _ = mlp
    exact = np.trace(hessian)
    found = cr.hessian_trace(
        mlp_loss, params, data, key=jax.random.key(4), n_samples=60, method=method
    )
    assert 0 < found.stderr < 0.5 * abs(exact)
    assert abs(found.trace - exact) <= 3 * found.stderr


@pytest.mark.slow
def test_hutch_plus_plus_beats_hutchinson_and_is_exact_when_it_spans(mlp):
    params, data, hessian, _ = mlp
    keys = jax.random.split(jax.random.key(5), 2)
    plain, plus = (
        cr.hessian_trace(mlp_loss, params, data, key=keys[0], n_samples=90, method=m)
        for m in ("hutchinson", "hutch++")
    )
    # A decaying spectrum: deflating the top third leaves a smaller remainder.
    assert plus.stderr < plain.stderr
    n = hessian.shape[0]
    whole = cr.hessian_trace(mlp_loss, params, data, key=keys[1], n_samples=3 * n)
    np.testing.assert_allclose(whole.trace, np.trace(hessian), rtol=1e-10)
    assert whole.stderr == 0


# ---- hessian_density -----------------------------------------------------------------


def test_quadrature_moments_are_exact_per_start_vector(mlp):
    # Gauss quadrature with `order` nodes integrates λ^p exactly for p < 2·order:
    # Σⱼ wⱼ θⱼ^p = vᵀH^p v / ‖v‖² for each (Rademacher, so ‖v‖² = n) start vector.
    params, data, hessian, _ = mlp
    key = jax.random.key(6)
    found = cr.hessian_density(mlp_loss, params, data, key=key, n_samples=3, order=4)
    n = hessian.shape[0]
    starts = np.asarray(jax.random.rademacher(key, (3, n), jnp.float64))
    np.testing.assert_allclose(np.sum(found.weights, axis=1), 1.0, rtol=1e-12)
    for p in range(1, 8):
        exact = np.einsum("si,ij,sj->s", starts, np.linalg.matrix_power(hessian, p),
                          starts) / n  # fmt: skip
        got = np.sum(found.weights * found.nodes**p, axis=1)
        np.testing.assert_allclose(got, exact, rtol=1e-8)


def test_density_mean_and_variance_match_eigvalsh():
    # Least squares with nearly orthogonal features of spread scales: H = XᵀX/N is
    # close to diagonal, so Rademacher quadratic forms have a small variance and 10
    # start vectors reach the 1e-2 the issue asks for (about 10× inside it).
    rng = np.random.default_rng(7)
    d, count = 400, 20_000
    x = jnp.asarray(rng.normal(size=(count, d)) * rng.uniform(0.5, 2.0, d))
    y = jnp.asarray(rng.normal(size=count))

    def least_squares(w, x, y):
        return 0.5 * jnp.mean((x @ w - y) ** 2)

    spectrum = np.linalg.eigvalsh(np.asarray(x.T @ x) / count)
    found = cr.hessian_density(
        least_squares, jnp.zeros(d), (x, y), key=jax.random.key(8), n_samples=10,
        order=30,
    )  # fmt: skip
    np.testing.assert_allclose(found.mean, np.mean(spectrum), rtol=1e-2)
    np.testing.assert_allclose(found.variance, np.var(spectrum), rtol=1e-2)
    # The density integrates to one over a grid that covers it.
    step = found.grid[1] - found.grid[0]
    np.testing.assert_allclose(np.sum(found.density) * step, 1.0, rtol=1e-3)


@pytest.mark.slow
def test_density_extreme_nodes_are_the_extreme_eigenvalues(mlp):
    params, data, _, spectrum = mlp
    found = cr.hessian_density(
        mlp_loss, params, data, key=jax.random.key(9), n_samples=2, order=120
    )
    np.testing.assert_allclose(np.max(found.nodes), spectrum[-1], rtol=1e-6)
    np.testing.assert_allclose(np.min(found.nodes), spectrum[0], rtol=1e-6)


# ---- block_sharpness -----------------------------------------------------------------


def test_block_sharpness_matches_the_diagonal_blocks(mlp):
    params, data, hessian, _ = mlp
    got = cr.block_sharpness(mlp_loss, params, data)
    assert jax.tree.structure(got) == jax.tree.structure(params)
    sizes = [leaf.size for leaf in jax.tree.leaves(params)]
    edges = np.cumsum([0, *sizes])
    for value, lo, hi in zip(jax.tree.leaves(got), edges[:-1], edges[1:], strict=True):
        exact = np.linalg.eigvalsh(hessian[lo:hi, lo:hi])[-1]
        np.testing.assert_allclose(value, exact, rtol=1e-6)


@pytest.mark.slow
def test_block_sharpness_per_named_layer(mlp):
    params, data, hessian, _ = mlp
    is_layer = lambda node: isinstance(node, dict) and "w" in node  # noqa: E731
    got = cr.block_sharpness(mlp_loss, params, data, is_leaf=is_layer, which="smallest")
    assert len(got) == len(params) and all(jnp.shape(v) == () for v in got)
    edges = np.cumsum([0, *(layer["w"].size + layer["b"].size for layer in params)])
    for value, lo, hi in zip(got, edges[:-1], edges[1:], strict=True):
        # ravel_pytree orders a layer's dict as b, w: the block is contiguous anyway.
        exact = np.linalg.eigvalsh(hessian[lo:hi, lo:hi])[0]
        np.testing.assert_allclose(value, exact, rtol=1e-6)


# ---- bad inputs ----------------------------------------------------------------------


SPECTRUM_CALLS = {
    "hessian_trace": lambda p, **o: cr.hessian_trace(
        quadratic, p, (jnp.eye(3), jnp.zeros(3)), **{"n_samples": 3, **o}
    ),
    "hessian_density": lambda p, **o: cr.hessian_density(
        quadratic, p, (jnp.eye(3), jnp.zeros(3)), **{"order": 2, **o}
    ),
}


@pytest.mark.parametrize("name", sorted(SPECTRUM_CALLS))
def test_spectrum_functions_refuse_bad_inputs(name):
    call = SPECTRUM_CALLS[name]
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=f"{name}: `params` contains NaN"):
        call(jnp.array([1.0, jnp.nan, 0.0]), key=key)
    for bad_key in (0, np.uint32(3), jax.random.split(key, 2), jnp.ones(2)):
        with pytest.raises(ValueError, match=f"{name}: `key` must be"):
            call(jnp.ones(3), key=bad_key)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"{name}: `n_samples` must be"):
            call(jnp.ones(3), key=key, n_samples=bad)


def test_bad_options_of_trace_density_and_blocks():
    args, key = (jnp.eye(3), jnp.zeros(3)), jax.random.key(0)
    cases = [
        (lambda: cr.hessian_trace(quadratic, jnp.ones(3), args, key=key, n_samples=2),
         "hessian_trace: `n_samples` must be an int ≥ 3"),
        (lambda: cr.hessian_trace(quadratic, jnp.ones(3), args, key=key, n_samples=9,
                                  method="xtrace"), "hessian_trace: `method`"),
        (lambda: cr.hessian_density(quadratic, jnp.ones(3), args, key=key, order=4),
         "hessian_density: `order` must be at most"),
        (lambda: cr.hessian_density(quadratic, jnp.ones(3), args, key=key, order=2,
                                    sigma=0.0), "hessian_density: `sigma`"),
        (lambda: cr.block_sharpness(quadratic, jnp.array([jnp.inf, 0, 0]), args),
         "block_sharpness: `params` contains NaN"),
        (lambda: cr.block_sharpness(quadratic, jnp.ones(3), args, key=3),
         "block_sharpness: `key` must be"),
        (lambda: cr.block_sharpness(quadratic, jnp.ones(3), args, which="top"),
         "block_sharpness: `which`"),
    ]  # fmt: skip
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
