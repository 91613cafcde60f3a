"""Chebyshev/fractal and silver step-size schedules."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import chebyshev

import corridors as cr

from .problems import random_spd

seeds = st.integers(0, 2**32 - 1)
RHO = 1 + math.sqrt(2)


def chebyshev_T(n, x):
    """T_n(x) from numpy's Chebyshev basis (valid for every real x)."""
    return chebyshev.chebval(x, [0] * n + [1])


def bound(m, M, T):
    """1/T_T((M + m)/(M − m)), with T_T(x) = cosh(T·arccosh x) for x ≥ 1."""
    return 1.0 / math.cosh(T * math.acosh((M + m) / (M - m)))


def rotated_quadratic(rng, m, M, n):
    """A dense SPD matrix with spectrum exactly {m, M} ∪ uniform(m, M)."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.concatenate([[m, M], rng.uniform(m, M, n - 2)])
    return (q * lam) @ q.T, lam


def run_gd(a, x0, steps, x_star=None):
    """GD x ← x − h_t·A(x − x*) in float64 NumPy, one step per entry of `steps`."""
    x_star = np.zeros_like(x0) if x_star is None else x_star
    x = x0.copy()
    for h in steps:
        x = x - h * (a @ (x - x_star))
    return x


def partial_product_maxima(steps, m, M):
    """max over λ ∈ [m, M] and t of |Π_{s≤t}(1 − h_s λ)| and of |Π_{s>t}(1 − h_s λ)|."""
    factors = 1.0 - np.outer(steps, np.linspace(m, M, 4001))
    prefix = np.abs(np.cumprod(factors, axis=0)).max()
    suffix = np.abs(np.cumprod(factors[::-1], axis=0)).max()
    return prefix, suffix


# ---- fractal permutation ------------------------------------------------------------


def test_fractal_permutation_known_values_and_recursion():
    assert cr.lr.fractal_permutation(1).tolist() == [0]
    assert cr.lr.fractal_permutation(2).tolist() == [0, 1]
    assert cr.lr.fractal_permutation(4).tolist() == [0, 3, 1, 2]
    assert cr.lr.fractal_permutation(8).tolist() == [0, 7, 3, 4, 1, 6, 2, 5]
    for k in range(1, 11):
        T = 2**k
        sigma, half = cr.lr.fractal_permutation(T), cr.lr.fractal_permutation(T // 2)
        assert sorted(sigma.tolist()) == list(range(T))
        np.testing.assert_array_equal(sigma[0::2], half)
        np.testing.assert_array_equal(sigma[1::2], T - 1 - half)


@pytest.mark.parametrize("T", [0, -4, 3, 6, 12, 100, 2.0, True, "8", None])
def test_fractal_permutation_refuses_non_powers_of_two(T):
    with pytest.raises(ValueError, match="`T`"):
        cr.lr.fractal_permutation(T)


# ---- Chebyshev steps: the residual polynomial ---------------------------------------


@settings(max_examples=20)
@given(seeds, st.sampled_from([1, 2, 4, 8, 16]), st.floats(1.0, 1000.0))
def test_residual_polynomial_matches_closed_form(seed, T, kappa):
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.01, 10.0)
    M = kappa * m * (1 + 1e-9)  # M > m strictly
    lam = np.concatenate(
        [[0.0, m, M], rng.uniform(m, M, 20), rng.uniform(-M, 2 * M, 5)]
    )
    x_scale = (M + m) / (M - m)
    expected = chebyshev_T(T, (M + m - 2 * lam) / (M - m)) / chebyshev_T(T, x_scale)
    for order in ("fractal", "increasing", "decreasing"):
        steps = cr.lr.chebyshev_steps(m, M, T, order=order)
        assert steps.shape == (T,)
        residual = np.prod(1.0 - np.outer(steps, lam), axis=0)
        np.testing.assert_allclose(residual, expected, rtol=1e-8, atol=1e-12)
    # The closed-form bound is the maximum of |p| on [m, M].
    np.testing.assert_allclose(cr.lr.chebyshev_error_bound(m, M, T), bound(m, M, T))


def test_orders_are_permutations_of_the_chebyshev_steps():
    m, M, T = 0.5, 40.0, 32
    nodes = (M + m) / 2 - (M - m) / 2 * np.cos((np.arange(T) + 0.5) * np.pi / T)
    decreasing = cr.lr.chebyshev_steps(m, M, T, order="decreasing")
    np.testing.assert_allclose(decreasing, 1 / nodes, rtol=1e-15)
    assert np.all(np.diff(decreasing) < 0)
    increasing = cr.lr.chebyshev_steps(m, M, T, order="increasing")
    np.testing.assert_array_equal(increasing, decreasing[::-1])
    fractal = cr.lr.chebyshev_steps(m, M, T)  # the default order
    np.testing.assert_array_equal(fractal, decreasing[cr.lr.fractal_permutation(T)])
    # The largest steps are far beyond the one-step stability limit 2/M.
    assert fractal[0] == decreasing[0] > 0.9 / m > 2 / M


# ---- Chebyshev steps in floating point: fractal vs sorted orders --------------------

GRID = [(T, kappa) for T in (2, 8, 32, 64, 128, 256) for kappa in (10.0, 100.0, 1000.0)]


@pytest.mark.parametrize(("T", "kappa"), GRID)
def test_fractal_order_meets_the_error_bound_in_float64(T, kappa):
    """‖x_T − x*‖ ≤ 10·‖x_0 − x*‖/T_T((M+m)/(M−m)) after round-off, T ≤ 256, κ ≤ 1000."""
    rng = np.random.default_rng(T * 1000 + int(kappa))
    m = 0.1
    M = kappa * m
    steps = cr.lr.chebyshev_steps(m, M, T, order="fractal")
    target = bound(m, M, T)
    # Diagonal quadratic with spectrum {m, M} ∪ uniform, x* = 0, and a dense (rotated)
    # one, where round-off in one eigendirection leaks into all others.
    lam = np.concatenate([[m, M], rng.uniform(m, M, 30)])
    for a in (np.diag(lam), rotated_quadratic(rng, m, M, 32)[0]):
        x0 = rng.normal(size=32)
        error = np.linalg.norm(run_gd(a, x0, steps)) / np.linalg.norm(x0)
        assert error <= 10 * target, (error, target)
    # With x* ≠ 0 the float64 floor ~1e-16·‖x*‖ is reached first; there the bound is
    # only checkable while it exceeds the floor.
    if target > 1e-12:
        a = np.diag(lam)
        x_star, x0 = rng.normal(size=32), rng.normal(size=32)
        x = run_gd(a, x0, steps, x_star)
        assert np.linalg.norm(x - x_star) <= 10 * target * np.linalg.norm(x0 - x_star)


def test_sorted_orders_miss_the_bound_and_their_partial_products_explode():
    """The instability Agarwal–Goel–Zhang describe, measured (figures in the notes).

    Round-off made at step t is multiplied by the suffix product Π_{s>t}(1 − h_s λ); the
    iterates themselves by the prefix product Π_{s≤t}. The increasing order keeps the
    prefix ≤ 1 but its suffix products reach ~1e122 at T = 256, κ = 1000 (the
    decreasing order the other way round); the fractal order keeps both below κ.
    """
    m, M = 1.0, 1000.0
    rng = np.random.default_rng(0)
    a, _ = rotated_quadratic(rng, m, M, 32)
    x0 = rng.normal(size=32)
    misses = {}
    for T in (16, 64, 256):
        target = bound(m, M, T)
        for order in ("fractal", "increasing", "decreasing"):
            steps = cr.lr.chebyshev_steps(m, M, T, order=order)
            error = np.linalg.norm(run_gd(a, x0, steps)) / np.linalg.norm(x0)
            misses[order, T] = error / target
            prefix, suffix = partial_product_maxima(steps, m, M)
            if order == "fractal":
                assert prefix <= M / m and suffix <= 1.0
                assert error <= target
            elif order == "increasing":
                assert prefix <= 1.0 and suffix > {16: 1e7, 64: 1e30, 256: 1e120}[T]
            else:
                assert suffix <= 1.0 and prefix > {16: 1e7, 64: 1e30, 256: 1e120}[T]
    # T = 16: all orders meet the bound. T ≥ 64: the sorted orders miss by > 1e14.
    assert misses["increasing", 16] <= 1.0
    assert misses["increasing", 64] > 1e14
    assert misses["increasing", 256] > 1e100
    assert misses["decreasing", 256] > 1e100


def test_chebyshev_through_optax_schedule_and_jit():
    m, M, T = 1.0, 100.0, 64
    schedule = cr.lr.chebyshev_schedule(m, M, T)
    steps = cr.lr.chebyshev_steps(m, M, T)
    counts = jnp.arange(3 * T)
    np.testing.assert_allclose(jax.jit(jax.vmap(schedule))(counts), np.tile(steps, 3))
    # Full GD through optax.sgd: one cycle meets the bound on a dense quadratic.
    rng = np.random.default_rng(1)
    a = jnp.asarray(rotated_quadratic(rng, m, M, 16)[0])
    loss = lambda x: 0.5 * x @ a @ x  # noqa: E731
    optimizer = optax.sgd(schedule)
    x0 = jnp.asarray(rng.normal(size=16))

    def body(carry, _):
        x, state = carry
        updates, state = optimizer.update(jax.grad(loss)(x), state, x)
        return (optax.apply_updates(x, updates), state), None

    (x, _), _ = jax.jit(
        lambda x: jax.lax.scan(body, (x, optimizer.init(x)), None, length=T)
    )(x0)
    assert np.linalg.norm(x) <= bound(m, M, T) * np.linalg.norm(x0)


def test_chebyshev_traced_bounds_and_float32():
    traced = jax.jit(lambda m, M: cr.lr.chebyshev_steps(m, M, 8))(1.0, 10.0)
    np.testing.assert_allclose(traced, cr.lr.chebyshev_steps(1.0, 10.0, 8), rtol=1e-14)
    steps32 = jax.jit(lambda m, M: cr.lr.chebyshev_steps(m, M, 8))(
        jnp.float32(1.0), jnp.float32(10.0)
    )
    assert steps32.dtype == jnp.float32
    np.testing.assert_allclose(steps32, cr.lr.chebyshev_steps(1.0, 10.0, 8), rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((0.0, 1.0, 8), {}, "0 < m ≤ M"),
        ((2.0, 1.0, 8), {}, "0 < m ≤ M"),
        ((1.0, float("inf"), 8), {}, "0 < m ≤ M"),
        ((1.0, 10.0, 0), {}, "`T`"),
        ((1.0, 10.0, 6), {}, "power of two"),
        ((1.0, 10.0, 8), {"order": "random"}, "`order`"),
        ((jnp.ones(2), 10.0, 8), {}, "scalar"),
    ],
)
def test_chebyshev_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cr.lr.chebyshev_steps(*args, **kwargs)


def test_sorted_orders_accept_any_length_and_m_equal_M():
    assert cr.lr.chebyshev_steps(1.0, 10.0, 6, order="increasing").shape == (6,)
    np.testing.assert_allclose(cr.lr.chebyshev_steps(2.0, 2.0, 4), 0.5)
    assert cr.lr.chebyshev_error_bound(2.0, 2.0, 4) == 0.0


def test_traced_bad_bounds_raise_at_run_time():
    import equinox as eqx

    f = eqx.filter_jit(lambda m, M: cr.lr.chebyshev_steps(m, M, 8))
    with pytest.raises(eqx.EquinoxRuntimeError, match="0 < m ≤ M"):
        jax.block_until_ready(f(jnp.asarray(3.0), jnp.asarray(1.0)))


# ---- silver -------------------------------------------------------------------------


def test_silver_first_steps_are_the_closed_form():
    r2 = math.sqrt(2)
    expected = [r2, 2, r2, 2 + r2, r2, 2, r2, 4 + 2 * r2]
    for L in (1.0, 3.5):
        np.testing.assert_allclose(cr.lr.silver_steps(8, L), np.array(expected) / L)
    # h_i = (1 + ρ^(ν(i) − 1))/L at powers of two, and the palindromic recursion.
    steps = cr.lr.silver_steps(2**10 - 1, 1.0)
    for k in range(10):
        np.testing.assert_allclose(steps[2**k - 1], 1 + RHO ** (k - 1), rtol=1e-14)
    for k in range(1, 10):
        n = 2**k - 1
        np.testing.assert_array_equal(steps[:n], steps[n + 1 : 2 * n + 1])


@settings(max_examples=10)
@given(seeds, st.integers(1, 7))
def test_silver_gap_after_2k_minus_1_steps_is_below_the_bound(seed, k):
    """f(x_n) − f* ≤ r_k·L‖x0 − x*‖², n = 2^k − 1 (Altschuler–Parrilo, Thm. 1.1)."""
    rng = np.random.default_rng(seed)
    d = 12
    lam = rng.uniform(0, 1, d) ** 3  # many small eigenvalues: the hard ones
    lam[rng.integers(d)] = 0.0  # convex, not strongly convex
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    L = rng.uniform(0.5, 5.0)
    lam = L * lam / lam.max()
    a = (q * lam) @ q.T
    x_star, x0 = rng.normal(size=d), rng.normal(size=d)
    n = 2**k - 1
    x = run_gd(a, x0, cr.lr.silver_steps(n, L), x_star)
    gap = 0.5 * (x - x_star) @ a @ (x - x_star)
    r_k = 1 / (1 + math.sqrt(4 * RHO ** (2 * k) - 3))
    assert math.isclose(cr.lr.silver_rate(k), r_k, rel_tol=1e-14)
    assert gap <= r_k * L * np.sum((x0 - x_star) ** 2)
    # The hardest 1-D quadratic for this schedule also stays below the bound.
    grid = np.linspace(0, L, 20001)
    residual = np.prod(1 - np.outer(cr.lr.silver_steps(n, L), grid), axis=0)
    assert np.max(grid / 2 * residual**2) <= r_k * L


def test_silver_schedule_cycles_and_trains():
    schedule = cr.lr.silver_schedule(7, 2.0)
    counts = jnp.arange(21)
    np.testing.assert_allclose(
        jax.vmap(schedule)(counts), np.tile(cr.lr.silver_steps(7, 2.0), 3)
    )
    a = jnp.asarray(random_spd(np.random.default_rng(0), 6, low=0.0, high=2.0))
    loss = lambda x: 0.5 * x @ a @ x  # noqa: E731
    optimizer = optax.sgd(schedule)
    x = jnp.ones(6)
    state = optimizer.init(x)
    for _ in range(21):
        updates, state = optimizer.update(jax.grad(loss)(x), state, x)
        x = optax.apply_updates(x, updates)
    assert float(loss(x)) <= cr.lr.silver_rate(3) * 2.0 * 6.0


@pytest.mark.parametrize(
    ("T", "L", "message"),
    [(0, 1.0, "`T`"), (3.0, 1.0, "`T`"), (7, 0.0, "`L`"), (7, float("nan"), "`L`")],
)
def test_silver_bad_input(T, L, message):
    with pytest.raises(ValueError, match=message):
        cr.lr.silver_steps(T, L)
