"""CLR, Polyak, SPS_max and Hazan–Kakade as optax transforms."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corridors as cr

from .helpers import tree_allclose
from .problems import cone, linear, mlp_loss, mlp_problem

seeds = st.integers(0, 2**32 - 1)


def step(optimizer, loss, params, state, *args):
    value, grads = jax.value_and_grad(loss)(params, *args)
    updates, state = optimizer.update(grads, state, params, value=value)
    return optax.apply_updates(params, updates), state


def run(optimizer, loss, params, n_steps, *args):
    """n_steps of `optimizer` under one jit; returns (params, state, values, states)."""

    @jax.jit
    def scanned(params):
        def body(carry, _):
            p, state = carry
            value = loss(p, *args)
            new = step(optimizer, loss, p, state, *args)
            return new, (value, new[1])

        (p, state), (values, states) = jax.lax.scan(
            body, (params, optimizer.init(params)), None, length=n_steps
        )
        return p, state, values, states

    return scanned(params)


def as64(tree):
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)


# ---- CLR lands on the level set L = 0 in a corridor -------------------------------


@given(seeds, st.sampled_from([1, 2, 5]))
def test_clr_one_step_from_any_point_of_a_cone_lands_on_apex(seed, dim):
    rng = np.random.default_rng(seed)
    center = rng.normal(size=dim) * 3
    slope = rng.uniform(0.1, 10.0)
    offset = rng.uniform(-5.0, 5.0)
    theta = center + rng.normal(size=dim) * rng.uniform(0.01, 100.0)
    # The cone's minimum value is `offset`: CLR's target level is f_min = offset.
    optimizer = cr.lr.clr(f_min=offset)
    new, state = step(
        optimizer, cone, theta, optimizer.init(theta), center, slope, offset
    )
    scale = np.linalg.norm(theta - center)
    assert np.linalg.norm(np.asarray(new) - center) <= 1e-10 * max(scale, 1.0)
    np.testing.assert_allclose(state.lr, scale / slope, rtol=1e-12)


@given(seeds)
def test_clr_in_a_corridor_reaches_zero_loss_in_one_step(seed):
    """Prop. 2.10 + eq. 3: L(θ0 − t∇L0) = L0 − t‖∇L0‖², so t = L0/‖∇L0‖² gives L = 0."""
    rng = np.random.default_rng(seed)
    keys = ("a", "b")
    w = {"a": rng.normal(size=(3,)), "b": rng.normal(size=(2, 2))}
    theta = {"a": rng.normal(size=(3,)), "b": rng.normal(size=(2, 2))}

    def affine(params, w, b):  # H = 0 everywhere: the whole space is a corridor
        return sum(jnp.sum(w[k] * params[k]) for k in keys) + b

    b0 = 1.0 - float(affine(theta, w, 0.0))  # L(θ0) = 1 > 0
    assert float(cr.corridor_score(affine, theta, (w, b0))) == 0.0
    optimizer = cr.lr.clr()
    new, _ = step(optimizer, affine, theta, optimizer.init(theta), w, b0)
    assert abs(float(affine(new, w, b0))) < 1e-12

    # The same on a cone (a corridor away from its apex) with f* = 0.
    center, slope = rng.normal(size=4), rng.uniform(0.5, 3.0)
    point = center + rng.normal(size=4)
    new, _ = step(optimizer, cone, point, optimizer.init(point), center, slope, 0.0)
    assert float(cone(new, center, slope, 0.0)) < 1e-10


# ---- CLR equals optax.polyak_sgd where their settings overlap ---------------------


OVERLAPS = [
    # (clr kwargs, optax.polyak_sgd kwargs)
    ({"max_lr": 1.0}, {}),
    ({"max_lr": 0.3}, {"max_learning_rate": 0.3, "variant": "sps+"}),
    ({}, {"max_learning_rate": jnp.inf}),
    ({"max_lr": 5.0, "eps": 1e-2}, {"max_learning_rate": 5.0, "eps": 1e-2}),
    # A non-zero target level f_min = 0.5·L(θ0) (filled in below).
    ({"f_min": None, "max_lr": 1.0}, {"max_learning_rate": 1.0, "variant": "sps+"}),
]


@functools.cache
def compare_with_optax(index):
    """A jitted 40-step run of CLR and optax.polyak_sgd side by side (one per setting)."""
    ours, theirs = OVERLAPS[index]

    @jax.jit
    def run(params, x, y, f_min):
        extra = {"f_min": f_min} if "f_min" in ours else {}
        a = cr.lr.clr(**{**ours, **extra})
        b = optax.polyak_sgd(**theirs, **extra)

        def body(carry, _):
            p, sa, sb = carry
            value, grads = jax.value_and_grad(mlp_loss)(p, x, y)
            ua, sa = a.update(grads, sa, p, value=value)
            ub, sb = b.update(grads, sb, p, value=value)
            return (optax.apply_updates(p, ua), sa, sb), (ua, ub, sa.lr, value)

        init = (params, a.init(params), b.init(params))
        return jax.lax.scan(body, init, None, length=40)[1]

    return run


@pytest.mark.parametrize("index", range(len(OVERLAPS)))
@settings(max_examples=3)
@given(seed=st.integers(0, 1000))
def test_clr_matches_optax_polyak_sgd_update_for_update(index, seed):
    params, (x, y) = mlp_problem(sizes=(3, 16, 16, 2), n=24, seed=seed)
    params, x, y = as64(params), as64(x), as64(y)
    f_min = 0.5 * float(mlp_loss(params, x, y))
    ua, ub, lrs, values = compare_with_optax(index)(params, x, y, f_min)
    for leaf_a, leaf_b in zip(jax.tree.leaves(ua), jax.tree.leaves(ub), strict=True):
        np.testing.assert_allclose(leaf_a, leaf_b, rtol=0, atol=1e-12)
    lrs, values = np.asarray(lrs), np.asarray(values)
    assert np.all(lrs >= 0)
    if "f_min" in OVERLAPS[index][0]:
        assert np.all(lrs[values < f_min] == 0)


# ---- the step-size formula and its edge cases -------------------------------------


@given(seeds)
def test_clr_step_formula_cap_and_state(seed):
    rng = np.random.default_rng(seed)
    grads = {"u": rng.normal(size=(3,)), "v": rng.normal(size=(2, 2))}
    g2 = sum(float(np.sum(g**2)) for g in grads.values())
    value, f_min, eps, scale = rng.uniform(0.5, 3.0), rng.uniform(-1, 0.4), 0.1, 0.7
    expected = scale * (value - f_min) / (g2 + eps)
    for max_lr in (None, expected / 2, expected * 2):
        optimizer = cr.lr.clr(max_lr=max_lr, f_min=f_min, eps=eps, scale=scale)
        updates, state = optimizer.update(
            grads, optimizer.init(grads), value=jnp.asarray(value)
        )
        h = expected if max_lr is None else min(expected, max_lr)
        np.testing.assert_allclose(state.lr, h, rtol=1e-13)
        expected_updates = {k: -h * g for k, g in grads.items()}
        assert tree_allclose(updates, expected_updates, rtol=1e-13)


def test_zero_gradient_gives_zero_update_and_finite_derivatives():
    grads = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    for optimizer in (cr.lr.clr(), cr.lr.polyak(0.0), cr.lr.sps_max(0.5, 1.0)):
        updates, state = optimizer.update(grads, optimizer.init(grads), value=1.0)
        assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
        assert float(state.lr) == 0.0

        def total(g, v, optimizer=optimizer):
            u, s = optimizer.update(g, optimizer.init(g), value=v)
            return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(u)) + s.lr

        dg, dv = jax.grad(total, argnums=(0, 1))(grads, 1.0)
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves((dg, dv)))


def test_loss_below_f_min_gives_zero_step_as_optax_sps_plus():
    grads = jnp.array([1.0, -2.0])
    optimizer = cr.lr.clr(f_min=1.0, max_lr=3.0)
    updates, state = optimizer.update(grads, optimizer.init(grads), value=0.5)
    np.testing.assert_array_equal(updates, 0.0)
    assert float(state.lr) == 0.0
    plus = optax.polyak_sgd(max_learning_rate=3.0, f_min=1.0, variant="sps+")
    np.testing.assert_array_equal(
        updates, plus.update(grads, plus.init(grads), value=0.5)[0]
    )
    # optax's default "sps" would step uphill here (a negative step size).
    sps = optax.polyak_sgd(max_learning_rate=3.0, f_min=1.0)
    assert float(sps.update(grads, sps.init(grads), value=0.5)[0][0]) > 0


def test_sps_max_is_loizou_formula():
    grads = jnp.array([0.5, -1.0, 2.0])
    g2 = float(jnp.sum(grads**2))
    for c, cap, value in ((0.5, 10.0, 3.0), (0.2, 0.1, 3.0), (1.0, 1.0, 0.4)):
        optimizer = cr.lr.sps_max(c, cap, f_min=0.1)
        updates, state = optimizer.update(grads, optimizer.init(grads), value=value)
        h = min((value - 0.1) / (c * g2), cap)
        np.testing.assert_allclose(state.lr, h, rtol=1e-13)
        np.testing.assert_allclose(updates, -h * grads, rtol=1e-13)


def test_polyak_with_f_star_converges_on_a_quadratic():
    a = jnp.diag(jnp.array([1.0, 4.0, 10.0]))
    loss = lambda x: 0.5 * x @ a @ x + 2.0  # noqa: E731  f* = 2
    x, _, _, _ = run(cr.lr.polyak(2.0), loss, jnp.array([1.0, -1.0, 0.5]), 200)
    assert float(loss(x)) - 2.0 < 1e-12


def test_hazan_kakade_refines_the_lower_bound():
    a = jnp.diag(jnp.array([1.0, 3.0]))
    f_star = 1.5
    loss = lambda x: 0.5 * x @ a @ x + f_star  # noqa: E731
    x0 = jnp.array([2.0, -1.0])
    _, _, values, states = run(cr.lr.hazan_kakade(0.0, epoch_length=20), loss, x0, 400)
    lowers, values = np.asarray(states.f_lower), np.asarray(values)
    # f̃ changes only at epoch ends, to the midpoint of f̃ and the epoch's best value.
    assert np.all(lowers[:19] == 0.0)
    np.testing.assert_allclose(lowers[19], 0.5 * (0.0 + min(values[:20])), rtol=1e-14)
    assert np.all(np.diff(lowers)[np.arange(len(lowers) - 1) % 20 != 18] == 0)
    # It closes in on f* and the best value converges to it.
    assert abs(lowers[-1] - f_star) < 1e-3
    assert min(values) - f_star < 1e-6
    # Plain CLR (f_min = 0 < f*) keeps overshooting on the same problem.
    _, _, values, _ = run(cr.lr.clr(), loss, x0, 400)
    assert np.median(values[200:]) - f_star > 1e-2


# ---- optax integration, jit, float32 ----------------------------------------------


def test_works_inside_optax_chain_jit_without_recompiling():
    params, (x, y) = mlp_problem()
    params, x, y = as64(params), as64(x), as64(y)
    optimizer = optax.chain(optax.clip_by_global_norm(10.0), cr.lr.clr(max_lr=2.0))
    traces = []

    @jax.jit
    def train_step(params, state, x, y):
        traces.append(None)
        value, grads = jax.value_and_grad(mlp_loss)(params, x, y)
        updates, state = optimizer.update(grads, state, params, value=value)
        return optax.apply_updates(params, updates), state, value

    state = optimizer.init(params)
    losses = []
    for _ in range(30):
        params, state, value = train_step(params, state, x, y)
        losses.append(float(value))
    assert len(traces) == 1
    assert losses[-1] < 0.5 * losses[0]
    assert float(state[1].lr) > 0


def test_inject_hyperparams_and_float32():
    params, (x, y) = mlp_problem()
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    optimizer = optax.inject_hyperparams(cr.lr.clr)(max_lr=1.0, f_min=0.0)
    state = optimizer.init(params)
    for _ in range(5):
        value, grads = jax.value_and_grad(mlp_loss)(params, x, y)
        updates, state = optimizer.update(grads, state, params, value=value)
        params = optax.apply_updates(params, updates)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    assert state.inner_state.lr.dtype == jnp.float32
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(params))

    # Zero float32 gradients are still a zero step, and a tiny (non-zero) gradient
    # whose Polyak step would overflow float32 is a zero step too, never NaN.
    optimizer = cr.lr.clr()
    for g in (jnp.zeros(3, jnp.float32), jnp.array([1e-30, 0.0, 0.0], jnp.float32)):
        updates, state = optimizer.update(g, optimizer.init(g), value=jnp.float32(5.0))
        assert updates.dtype == jnp.float32
        assert np.all(np.isfinite(updates)) and float(state.lr) == 0.0


# ---- bad input ----------------------------------------------------------------------


def test_missing_value_is_a_clear_error():
    grads = jnp.ones(3)
    for optimizer in (cr.lr.clr(), cr.lr.hazan_kakade(0.0)):
        with pytest.raises(ValueError, match="value=loss"):
            optimizer.update(grads, optimizer.init(grads))
    with pytest.raises(ValueError, match="scalar"):
        cr.lr.clr().update(grads, cr.lr.clr().init(grads), value=jnp.ones(2))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: cr.lr.clr(max_lr=0.0), "max_lr"),
        (lambda: cr.lr.clr(max_lr=-1.0), "max_lr"),
        (lambda: cr.lr.clr(eps=-1e-3), "eps"),
        (lambda: cr.lr.clr(scale=0.0), "scale"),
        (lambda: cr.lr.clr(f_min=float("nan")), "f_min"),
        (lambda: cr.lr.polyak(float("inf")), "f_min"),
        (lambda: cr.lr.sps_max(0.0, 1.0), "`c`"),
        (lambda: cr.lr.sps_max(0.5, float("nan")), "max_lr"),
        (lambda: cr.lr.hazan_kakade(0.0, epoch_length=0), "epoch_length"),
        (lambda: cr.lr.hazan_kakade(jnp.ones(2)), "f_lower"),
    ],
)
def test_bad_options_are_refused(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_non_finite_loss_or_gradient_is_an_error_not_a_nan_update():
    optimizer = cr.lr.clr()
    grads = jnp.ones(3)
    with pytest.raises(ValueError, match="value"):
        optimizer.update(grads, optimizer.init(grads), value=jnp.nan)
    with pytest.raises(ValueError, match="grads"):
        optimizer.update(grads.at[0].set(jnp.inf), optimizer.init(grads), value=1.0)
    update = lambda g, v: optimizer.update(g, optimizer.init(g), value=v)[0]  # noqa: E731
    with pytest.raises(eqx.EquinoxRuntimeError, match="NaN or Inf"):
        jax.block_until_ready(eqx.filter_jit(update)(grads, jnp.nan))
    with pytest.raises(Exception, match="NaN or Inf"):  # plain jax.jit wraps it
        jax.block_until_ready(jax.jit(update)(grads.at[1].set(jnp.nan), 1.0))


def test_linear_loss_helper_is_a_corridor():
    # Guard for the corridor test above: the shared `linear` loss has H∇L = 0.
    w, theta = jnp.array([1.0, 2.0]), jnp.array([0.3, -0.2])
    assert float(cr.corridor_score(linear, theta, (w, 0.5))) == 0.0
