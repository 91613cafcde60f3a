"""corridors.train measurements against the core functions they stand for."""

import logging

import numpy as np
import pytest

pytest.importorskip("flax")

import diffrax
import jax
import jax.numpy as jnp
import optax

import corridors as cr
from corridors.train._measure import MeasureOptions, Measurer
from corridors.train._optim import make_optimizer


def smooth_loss(params, x, y, batch_stats):
    """A tanh MLP with squared error, in the measured-loss signature."""
    del batch_stats
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - y) ** 2)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    params = {
        "w1": jnp.asarray(rng.normal(size=(3, 6)), jnp.float64),
        "b1": jnp.asarray(rng.normal(size=6) * 0.1, jnp.float64),
        "w2": jnp.asarray(rng.normal(size=(6, 2)) / 2, jnp.float64),
    }
    x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float64)
    y = jnp.asarray(rng.normal(size=(8, 2)), jnp.float64)
    return params, x, y


def tight(**options):
    return MeasureOptions(
        flow_tol=1e-9, flow_solver="tsit5", flow_max_steps=10_000, **options
    )


def test_measurements_equal_the_core_functions(problem):
    params, x, y = problem
    lr = 0.3
    optimizer = make_optimizer("sgd")
    state = optimizer.init(params, lr)
    measurer = Measurer(smooth_loss, optimizer, tight(microbatches=2))
    record = measurer.measure(
        params, {}, state, x, y, sharpness_key=jax.random.PRNGKey(0)
    )
    args = (x, y, {})
    assert record["lr"] == pytest.approx(lr)  # stored in float32 by the optimizer
    lr = record["lr"]
    drift = cr.measure_drift(smooth_loss, params, lr, 1, args)
    np.testing.assert_allclose(record["drift"], drift.distance[-1], rtol=1e-6)
    np.testing.assert_allclose(
        record["relative_drift"],
        drift.distance[-1] / (lr * record["grad_norm"]),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        record["corridor_score"],
        cr.corridor_score(smooth_loss, params, args),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        record["predicted_drift"],
        cr.predicted_step_drift(smooth_loss, params, lr, args),
        rtol=1e-10,
    )
    grad = jax.grad(smooth_loss)(params, *args)
    np.testing.assert_allclose(
        record["grad_norm"], np.sqrt(sum(np.sum(g**2) for g in jax.tree.leaves(grad)))
    )
    np.testing.assert_allclose(record["loss"], smooth_loss(params, *args))
    regs = cr.sgd_regularizers(
        smooth_loss, params, lr, (x.reshape(2, 4, 3), y.reshape(2, 4, 2)), ({},)
    )
    np.testing.assert_allclose(record["sgd_full_batch"], regs.full_batch, rtol=1e-10)
    np.testing.assert_allclose(record["sgd_per_batch"], regs.per_batch, rtol=1e-10)
    # Sharpness: the top eigenvalue of the dense Hessian.
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    hessian = jax.hessian(lambda v: smooth_loss(unravel(v), *args))(flat)
    top = np.linalg.eigvalsh(np.asarray(hessian))[-1]
    np.testing.assert_allclose(record["sharpness"], top, rtol=1e-3)
    # The drift is (lr²/2)‖H∇L‖ + O(lr³): close to the prediction for this small step.
    assert record["drift"] == pytest.approx(record["predicted_drift"], rel=0.5)


def test_float32_drift_is_accurate_at_the_default_tolerance(problem):
    params, x, y = problem
    lr = 0.3
    params32 = jax.tree.map(lambda p: p.astype(jnp.float32), params)
    x32, y32 = x.astype(jnp.float32), y.astype(jnp.float32)
    optimizer = make_optimizer("sgd")
    measurer = Measurer(smooth_loss, optimizer, MeasureOptions(microbatches=0))
    record = measurer.measure(params32, {}, optimizer.init(params32, lr), x32, y32)
    reference = cr.measure_drift(smooth_loss, params, lr, 1, (x, y, {})).distance[-1]
    assert record["drift"] == pytest.approx(float(reference), rel=1e-2)
    assert record["flow_evaluations"] < 100


@pytest.mark.parametrize("name", ["clr", "momentum", "chebyshev"])
def test_the_measured_step_is_the_optimizers_step(problem, name):
    params, x, y = problem
    options = {"cycle": 4, "spectrum": (0.5, 4.0)} if name == "chebyshev" else {}
    optimizer = make_optimizer(name, max_lr=0.7, **options)
    state = optimizer.init(params, 0.2)
    measurer = Measurer(smooth_loss, optimizer, tight(microbatches=0))
    if name == "chebyshev":  # two updates into the cycle
        grads = jax.grad(smooth_loss)(params, x, y, {})
        for _ in range(2):
            _, state = optimizer.tx.update(grads, state, params)
    record = measurer.measure(params, {}, state, x, y)
    loss = float(smooth_loss(params, x, y, {}))
    if name == "clr":
        expected = min(loss / record["grad_norm"] ** 2, 0.7)
    elif name == "momentum":
        expected = 0.2
    else:
        expected = cr.lr.chebyshev_steps(0.5, 4.0, 4)[2]
    assert record["lr"] == pytest.approx(expected, rel=1e-6)
    drift = cr.measure_drift(smooth_loss, params, record["lr"], 1, (x, y, {}))
    np.testing.assert_allclose(record["drift"], drift.distance[-1], rtol=1e-6)


def test_a_failed_solve_is_reported_not_raised(problem, caplog):
    params, x, y = problem
    optimizer = make_optimizer("sgd")
    measurer = Measurer(
        smooth_loss,
        optimizer,
        MeasureOptions(
            microbatches=0, flow_max_steps=1, flow_tol=1e-9, sharpness_iters=2
        ),
    )
    with caplog.at_level(logging.ERROR):
        record = measurer.measure(
            params,
            {},
            optimizer.init(params, 1.0),
            x,
            y,
            sharpness_key=jax.random.PRNGKey(0),
        )
    assert record["drift"] is None
    assert record["drift_error"].startswith(
        "step_drift: the ODE solver hit max_steps=1"
    )
    assert record["sharpness"] is None and "Lanczos" in record["sharpness_error"]
    assert record["corridor_score"] > 0  # the rest is still measured
    assert "pure_callback failed" not in caplog.text


def solve_options(options: MeasureOptions) -> dict:
    """`corridors.step_drift` options equal to the measurement's."""
    return dict(
        rtol=options.flow_tol,
        atol=float(jnp.finfo(jnp.float32).tiny),
        solver=diffrax.Tsit5(),
        max_steps=options.flow_max_steps,
    )


def flow_distance(loss, params, new_params, time, args):
    """‖new_params − φ(time)‖ from an independent tight `corridors.gradient_flow`."""
    flow = cr.gradient_flow(loss, params, jnp.asarray([0.0, time]), args)
    end = jax.tree.map(lambda leaf: leaf[-1], flow.params)
    return float(optax.tree.norm(optax.tree.sub(new_params, end)))


def test_a_plain_optax_adam_step_is_measured_as_taken(problem):
    # Any optax transform, no `next_lr`: the drift is step_drift of the update adam
    # takes from its (advanced) state, the GD comparison is at the given lr.
    params, x, y = problem
    args = (x, y, {})
    lr = 0.05
    adam = optax.adam(lr)
    state = adam.init(params)
    grads = jax.grad(smooth_loss)(params, *args)
    for _ in range(2):  # moments away from their start
        _, state = adam.update(grads, state, params)
    options = tight(microbatches=0)
    record = Measurer(smooth_loss, adam, options, lr=lr).measure(
        params, {}, state, x, y
    )
    update, _ = adam.update(grads, state, params)
    expected = cr.step_drift(smooth_loss, params, update, None, args,
                             **solve_options(options))  # fmt: skip
    np.testing.assert_allclose(record["drift"], expected.drift, rtol=1e-12)
    np.testing.assert_allclose(record["drift_time"], expected.time, rtol=1e-12)
    np.testing.assert_allclose(
        record["relative_drift"], expected.drift / optax.tree.norm(update), rtol=1e-12
    )
    # Against an independent solve at the same flow time (tolerance of `tight`).
    reached = optax.apply_updates(params, update)
    reference = flow_distance(smooth_loss, params, reached, expected.time, args)
    np.testing.assert_allclose(record["drift"], reference, rtol=1e-6)
    # Adam's step leaves the flow line far more than the GD step of the same lr.
    gd = cr.measure_drift(smooth_loss, params, lr, 1, args).distance[-1]
    np.testing.assert_allclose(record["gd_drift"], gd, rtol=1e-6)
    assert record["drift"] > 10 * record["gd_drift"]
    # Without `lr`, h is the update's own flow time.
    record = Measurer(smooth_loss, adam, options).measure(params, {}, state, x, y)
    np.testing.assert_allclose(record["lr"], expected.time, rtol=1e-12)


def test_nesterov_momentum_drift_is_that_of_its_update(problem):
    params, x, y = problem
    args = (x, y, {})
    lr, beta = 0.125, 0.5  # exact in float32, the dtype of optax's hyperparameters
    optimizer = make_optimizer("momentum", momentum=beta, nesterov=True)
    state = optimizer.init(params, lr)
    grads = jax.grad(smooth_loss)(params, *args)
    _, state = optimizer.tx.update(grads, state, params)  # a trace m = ∇L
    options = tight(microbatches=0)
    record = Measurer(smooth_loss, optimizer, options).measure(params, {}, state, x, y)
    # Nesterov after one step: m = g + βg, update = −h(g + βm) = −h(1 + β + β²)g.
    update = jax.tree.map(lambda g: -lr * (1 + beta + beta**2) * g, grads)
    expected = cr.step_drift(smooth_loss, params, update, None, args,
                             **solve_options(options))  # fmt: skip
    np.testing.assert_allclose(record["drift"], expected.drift, rtol=1e-12)
    np.testing.assert_allclose(record["drift_time"], lr * 1.75, rtol=1e-12)
    assert record["lr"] == lr
    gd = cr.measure_drift(smooth_loss, params, lr, 1, args).distance[-1]
    np.testing.assert_allclose(record["gd_drift"], gd, rtol=1e-6)


@pytest.mark.parametrize(
    ("name", "options", "factory"),
    [
        ("adam", {"b1": 0.5, "b2": 0.75}, lambda: optax.adam(0.125, b1=0.5, b2=0.75)),
        ("adamw", {"b1": 0.5, "b2": 0.75, "decoupled_weight_decay": 0.25},
         lambda: optax.adamw(0.125, b1=0.5, b2=0.75, weight_decay=0.25)),
        ("lion", {"b1": 0.5, "b2": 0.75, "decoupled_weight_decay": 0.25},
         lambda: optax.lion(0.125, b1=0.5, b2=0.75, weight_decay=0.25)),
        ("sgd", {"momentum": 0.5}, lambda: optax.sgd(0.125, momentum=0.5)),
    ],
)  # fmt: skip
def test_make_optimizer_builds_optax_optimizers(problem, name, options, factory):
    params, x, y = problem
    optimizer = make_optimizer(name, **options)
    assert optimizer.uses_lr and not optimizer.gd_step
    ours, theirs = optimizer.init(params, 0.125), factory().init(params)
    grads = jax.grad(smooth_loss)(params, x, y, {})
    for _ in range(3):
        mine, ours = optimizer.tx.update(grads, ours, params)
        reference, theirs = factory().update(grads, theirs, params)
        # Our hyperparameters are float32 (one compiled step for every lr): the
        # values above are exact in float32, so the updates agree to rounding.
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(reference), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert float(optimizer.lr_used(ours)) == 0.125


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("sgd", {"b1": 0.9}, "`b1` applies to adam, adamw, lion, not 'sgd'"),
        ("lion", {"eps": 1e-8}, "`eps` applies to adam, adamw, not 'lion'"),
        ("adam", {"decoupled_weight_decay": 0.1}, "`decoupled_weight_decay` applies"),
        ("sgd", {"nesterov": True}, "`nesterov` needs momentum"),
        ("adamax", {}, "unknown optimizer 'adamax'"),
    ],
)
def test_make_optimizer_refuses_options_it_would_ignore(name, options, message):
    with pytest.raises(cr.InvalidInputError, match=f"^make_optimizer: {message}"):
        make_optimizer(name, **options)
