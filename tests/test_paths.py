"""Path geometry (RSI/EB), the step sizes it prescribes, and minibatch measurements."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corridors as cr

from .problems import mlp_loss, mlp_problem, quadratic, random_spd

seeds = st.integers(0, 2**32 - 1)


def quadratic_path(rng, n=5, steps=30, lr=0.2):
    a = random_spd(rng, n, low=0.5, high=3.0)
    x_star = rng.normal(size=n)
    b = -a @ x_star  # ∇ = A(θ − x*)
    iterates = cr.gd(quadratic, rng.normal(size=n), lr, steps, (a, b))
    grads = jax.vmap(jax.grad(quadratic), in_axes=(0, None, None))(iterates, a, b)
    return a, b, x_star, iterates, grads


@settings(max_examples=10)
@given(seeds)
def test_rsi_and_eb_on_quadratics_lie_in_the_spectrum(seed):
    rng = np.random.default_rng(seed)
    a, _, x_star, iterates, grads = quadratic_path(rng)
    lam = np.linalg.eigvalsh(a)
    rsi, eb = cr.path_geometry(iterates, grads, x_star)
    assert rsi.shape == eb.shape == (31,)
    tol = 1e-9 * lam[-1]
    assert np.all(rsi >= lam[0] - tol) and np.all(rsi <= lam[-1] + tol)
    assert np.all(eb >= lam[0] - tol) and np.all(eb <= lam[-1] + tol)
    assert np.all(rsi <= eb + tol)  # Cauchy–Schwarz


@settings(max_examples=10)
@given(seeds)
def test_closed_form_on_a_pytree_path(seed):
    rng = np.random.default_rng(seed)
    iterates = {"w": rng.normal(size=(7, 2, 3)), "b": rng.normal(size=(7, 3))}
    grads = {"w": rng.normal(size=(7, 2, 3)), "b": rng.normal(size=(7, 3))}
    x_star = {"w": rng.normal(size=(2, 3)), "b": rng.normal(size=3)}
    rsi, eb = cr.path_geometry(iterates, grads, x_star)
    flat = lambda t, k: np.concatenate([t["w"][k].ravel(), t["b"][k].ravel()])  # noqa: E731
    star = np.concatenate([x_star["w"].ravel(), x_star["b"].ravel()])
    for k in range(7):
        d, g = flat(iterates, k) - star, flat(grads, k)
        np.testing.assert_allclose(rsi[k], g @ d / (d @ d), rtol=1e-12)
        np.testing.assert_allclose(
            eb[k], np.linalg.norm(g) / np.linalg.norm(d), rtol=1e-12
        )


def test_default_x_star_is_last_iterate_and_degenerate_steps_are_zero():
    rng = np.random.default_rng(0)
    _, _, _, iterates, grads = quadratic_path(rng, steps=10)
    rsi, eb = cr.path_geometry(iterates, grads)
    last = jax.tree.map(lambda leaf: leaf[-1], iterates)
    np.testing.assert_array_equal(rsi, cr.path_geometry(iterates, grads, last)[0])
    assert rsi[-1] == 0.0 and eb[-1] == 0.0
    assert np.all(np.isfinite(rsi)) and np.all(np.isfinite(eb))
    # A path that sits at x* for several steps: zeros there, never NaN, also in grads.
    still = jnp.zeros((4, 2))
    rsi, eb = cr.path_geometry(still, jnp.ones((4, 2)), jnp.zeros(2))
    np.testing.assert_array_equal(rsi, 0.0)
    np.testing.assert_array_equal(eb, 0.0)

    def total(x):
        r, e = cr.path_geometry(x, jnp.ones((4, 2)), jnp.zeros(2))
        return jnp.sum(cr.lr.rsi_eb_schedule(r, e)) + jnp.sum(r) + jnp.sum(e)

    assert np.all(np.isfinite(jax.grad(total)(still)))


@settings(max_examples=10)
@given(seeds)
def test_prescribed_steps_give_the_proved_rates(seed):
    rng = np.random.default_rng(seed)
    n = 6
    a = random_spd(rng, n, low=0.2, high=4.0)
    x_star = rng.normal(size=n)
    grad = lambda x: a @ (x - x_star)  # noqa: E731
    # 1. The adaptive step h_k = RSI_k/EB_k² contracts exactly by √(1 − RSI²/EB²).
    x = x0 = rng.normal(size=n)
    for _ in range(20):
        rsi, eb = cr.path_geometry(x[None], grad(x)[None], x_star)
        h = cr.lr.rsi_eb_schedule(rsi, eb)[0]
        new = x - h * grad(x)
        factor = np.sqrt(1 - (rsi[0] / eb[0]) ** 2)
        np.testing.assert_allclose(
            np.linalg.norm(new - x_star),
            factor * np.linalg.norm(x - x_star),
            rtol=1e-9,
            atol=1e-13 * np.linalg.norm(x0 - x_star),
        )
        x = new
    # 2. The uniform step μ/L² contracts at least as fast as √(1 − μ²/L²) per step along
    #    any path on which RSI ≥ μ and EB ≤ L. Constants measured on one path (say a GD
    #    path) need not hold on the path the new step takes, so take constants valid
    #    everywhere for a quadratic, μ = λ_min and L = λ_max, and check that the measured
    #    RSI and EB of a GD path respect them.
    lam = np.linalg.eigvalsh(a)
    mu, L = lam[0], lam[-1]
    x0 = rng.normal(size=n)
    path = [x0]
    for _ in range(40):
        path.append(path[-1] - grad(path[-1]) / L)
    path = np.array(path)
    rsi, eb = cr.path_geometry(path, np.array([grad(p) for p in path]), x_star)
    assert np.all(np.asarray(rsi) >= mu * (1 - 1e-9))
    assert np.all(np.asarray(eb) <= L * (1 + 1e-9))
    h = cr.lr.rsi_eb_schedule(jnp.array([mu]), jnp.array([L]))[0]
    rate = np.sqrt(1 - mu**2 / L**2)
    x = x0
    for k in range(1, 41):
        x = x - h * grad(x)
        assert np.linalg.norm(x - x_star) <= rate**k * np.linalg.norm(x0 - x_star) * (
            1 + 1e-9
        )


def test_rsi_eb_schedule_formula_safety_and_zeros():
    rsi = jnp.array([1.0, 2.0, -1.0, 0.5, 0.0])
    eb = jnp.array([2.0, 4.0, 1.0, 0.0, 1.0])
    h = cr.lr.rsi_eb_schedule(rsi, eb, safety=0.5)
    np.testing.assert_allclose(h, [0.125, 0.0625, 0.0, 0.0, 0.0])
    for kwargs, message in (({"safety": 0.0}, "safety"), ({"safety": -1.0}, "safety")):
        with pytest.raises(ValueError, match=message):
            cr.lr.rsi_eb_schedule(rsi, eb, **kwargs)
    with pytest.raises(ValueError, match="same shape"):
        cr.lr.rsi_eb_schedule(rsi, eb[:3])
    with pytest.raises(ValueError, match="NaN"):
        cr.lr.rsi_eb_schedule(rsi.at[0].set(jnp.nan), eb)


def test_measure_rsi_eb_along_an_sgd_run():
    params, (x, y) = mlp_problem(seed=3)
    params = jax.tree.map(lambda t: jnp.asarray(t, jnp.float64), params)
    x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
    m, batch = 12, 4
    key = jax.random.key(0)
    index = jax.random.randint(key, (m, batch), 0, x.shape[0])
    batches = (x[index], y[index])
    iterates = cr.sgd(mlp_loss, params, 0.1, batches)  # m + 1 iterates
    rsi, eb = cr.lr.measure_rsi_eb(mlp_loss, iterates, batches)
    assert rsi.shape == eb.shape == (m,)
    # The same numbers by hand: minibatch gradient k at iterate k, x* = last iterate.
    grad = jax.jit(jax.grad(mlp_loss))
    grads = [
        grad(jax.tree.map(lambda t, k=k: t[k], iterates), *batch_k)
        for k, batch_k in enumerate(zip(*batches, strict=True))
    ]
    grads = jax.tree.map(lambda *g: jnp.stack(g), *grads)
    path = jax.tree.map(lambda t: t[:m], iterates)
    last = jax.tree.map(lambda t: t[-1], iterates)
    expected = cr.path_geometry(path, grads, last)
    np.testing.assert_allclose(rsi, expected[0], rtol=1e-10)
    np.testing.assert_allclose(eb, expected[1], rtol=1e-10)
    assert np.all(eb > 0)
    # One batch per iterate is accepted too; a mismatch is refused.
    cr.lr.measure_rsi_eb(mlp_loss, path, batches)
    with pytest.raises(ValueError, match="steps"):
        cr.lr.measure_rsi_eb(mlp_loss, path, (x[index][:5], y[index][:5]))


def test_float32_path():
    rng = np.random.default_rng(1)
    a = jnp.asarray(random_spd(rng, 4), jnp.float32)
    xs = jnp.asarray(rng.normal(size=(9, 4)), jnp.float32)
    rsi, eb = cr.path_geometry(xs, xs @ a, jnp.zeros(4, jnp.float32))
    assert rsi.dtype == eb.dtype == jnp.float32
    lam = np.linalg.eigvalsh(np.asarray(a, float))
    assert np.all(rsi >= lam[0] * (1 - 1e-5)) and np.all(eb <= lam[-1] * (1 + 1e-5))
    assert cr.lr.rsi_eb_schedule(rsi, eb).dtype == jnp.float32


def test_bad_input():
    xs, gs = jnp.zeros((5, 3)), jnp.ones((5, 3))
    with pytest.raises(ValueError, match="`grads`"):
        cr.path_geometry(xs, jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="`grads`"):
        cr.path_geometry({"a": xs}, {"b": gs})
    with pytest.raises(ValueError, match="leading"):
        cr.path_geometry(
            {"a": xs, "b": jnp.zeros((4, 1))}, {"a": gs, "b": jnp.ones((4, 1))}
        )
    with pytest.raises(ValueError, match="leading"):
        cr.path_geometry(jnp.zeros(()), jnp.zeros(()))
    with pytest.raises(ValueError, match="x_star"):
        cr.path_geometry(xs, gs, jnp.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        cr.path_geometry(xs.at[1, 1].set(jnp.nan), gs)
    with pytest.raises(ValueError, match="floating"):
        cr.path_geometry(jnp.zeros((5, 3), int), gs)
    traced = eqx.filter_jit(cr.path_geometry)
    with pytest.raises(eqx.EquinoxRuntimeError, match="NaN"):
        jax.block_until_ready(traced(xs, gs.at[0, 0].set(jnp.inf)))
