"""sgd_sde, sgd_paths and weak_error against exact moments, flows and bad input."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import corridors as cr
from corridors.landscapes import LinearRegression

from .helpers import RUNTIME_ERRORS, compilations

# 99.9% two-sided normal quantile: a Monte Carlo mean farther than this many standard
# errors from the exact value is a bug, not bad luck (the keys are fixed anyway).
Z = 3.29


@pytest.fixture(scope="module")
def model():
    features = jax.random.normal(jax.random.key(3), (5, 2))
    targets = jax.random.normal(jax.random.key(4), (5,))
    return LinearRegression(features, targets, params0=jnp.array([1.5, -1.0]))


def _within(samples, exact, label):
    """The Monte Carlo mean of `samples` (axis 0) is within Z standard errors."""
    mean = samples.mean(0)
    stderr = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - exact) <= Z * stderr + 1e-12), (label, mean, exact)


@pytest.mark.parametrize(
    "replacement", [True, pytest.param(False, marks=pytest.mark.slow)]
)
def test_sgd_paths_match_exact_moments(model, replacement):
    lr, k, batch = 0.3, 12, 2
    runs = cr.sgd_paths(
        model.example_loss,
        model.params0,
        lr,
        model.data,
        batch_size=batch,
        n_steps=k,
        key=jax.random.key(0),
        n_paths=4000,
        replacement=replacement,
    )
    mean, second = model.sgd_moments(k, lr, batch, replacement=replacement)
    final = runs.params[:, -1]
    _within(final, mean, "mean")
    _within(jnp.sum(final**2, -1), jnp.trace(second), "E|θ|²")
    np.testing.assert_allclose(runs.ts, lr * np.arange(k + 1))
    # The noise is visible: E|θ|² differs from GD's |θ_k|² by many standard errors.
    gd_norm = np.sum(np.asarray(cr.gd(model.loss, model.params0, lr, k)[-1]) ** 2)
    assert abs(float(jnp.trace(second)) - gd_norm) > 0.05 * gd_norm


def test_sgd_sde_matches_exact_moments(model):
    # Heun on the Stratonovich form: its drift carries the −∇((h·c/4)tr Σ) correction;
    # without it E|Θ|² would be off by far more than the Monte Carlo error.
    lr, t, batch = 0.3, 1.2, 1
    paths = cr.sgd_sde(
        model.example_loss,
        model.params0,
        jnp.array([0.0, t]),
        lr,
        model.data,
        batch_size=batch,
        key=jax.random.key(1),
        n_paths=4000,
        order=2,
        dt=lr / 8,
    )
    mean, second = model.sme_moments(t, lr, batch, 2)
    final = paths.params[:, -1]
    _within(final, mean, "mean")
    _within(jnp.sum(final**2, -1), jnp.trace(second), "E|Θ|²")
    np.testing.assert_allclose(
        paths.variance[-1], jnp.trace(second) - mean @ mean, rtol=0.1
    )


def test_a_second_lr_reuses_the_compiled_sme(model):
    # lr, dt (default lr/4) and the save times are values of the compiled solve: a
    # sweep over lr compiles once. (3000 paths and three save times: shapes no
    # other test here uses, so the first call does compile.)
    ts = jnp.array([0.0, 0.6, 1.2])
    run = lambda lr: cr.sgd_sde(  # noqa: E731
        model.example_loss,
        model.params0,
        ts,
        lr,
        model.data,
        batch_size=1,
        key=jax.random.key(7),
        n_paths=3000,
    )
    assert compilations(lambda: run(0.25).params) >= 1
    second = []
    assert compilations(lambda: second.append(run(0.15)) or second[0].params) == 0
    (paths,) = second
    # 1.2 / (0.15/4) = 32 equal steps, not the first lr's 20.
    np.testing.assert_array_equal(paths.stats["num_steps"], 32)
    mean, moment = model.sme_moments(1.2, 0.15, 1, 1)
    final = paths.params[:, -1]
    _within(final, mean, "mean")
    _within(jnp.sum(final**2, -1), jnp.trace(moment), "E|Θ|²")


@pytest.mark.slow
# diffrax warns that Dopri8 is marked neither Itô nor Stratonovich: with no noise that
# does not matter, and it is the solver that reaches the flow to round-off.
@pytest.mark.filterwarnings("ignore:`Dopri8` is not marked")
def test_full_batch_sme_is_the_modified_flow(model):
    # B = N without replacement: no noise, and the order-2 SME is the modified flow.
    # Dopri8 with fixed dt = lr/4 is accurate to ~1e-12 here.
    lr, n = 0.2, model.features.shape[0]
    ts = jnp.linspace(0.0, 2.0, 6)
    full = lambda p: model.example_loss(p, model.data)  # noqa: E731
    for order, modified in ((2, lr), (1, None)):
        paths = cr.sgd_sde(
            model.example_loss,
            model.params0,
            ts,
            lr,
            model.data,
            batch_size=n,
            replacement=False,
            key=jax.random.key(2),
            order=order,
            solver=diffrax.Dopri8(),
        )
        flow = cr.gradient_flow(full, model.params0, ts, modified=modified)
        np.testing.assert_allclose(paths.params[0], flow.params, rtol=0, atol=1e-10)
        np.testing.assert_allclose(paths.variance, 0.0, atol=1e-20)


@pytest.mark.parametrize("function", ["sgd_sde", "sgd_paths"])
def test_bad_input_names_the_argument(model, function):
    x, y = model.data
    call = {
        "sgd_sde": lambda data=model.data, **kw: cr.sgd_sde(
            model.example_loss,
            model.params0,
            jnp.array([0.0, 1.0]),
            0.1,
            data,
            **{"batch_size": 2, "key": jax.random.key(0), **kw},
        ),
        "sgd_paths": lambda data=model.data, **kw: cr.sgd_paths(
            model.example_loss,
            model.params0,
            0.1,
            data,
            **{
                "batch_size": 2,
                "n_steps": 3,
                "key": jax.random.key(0),
                "n_paths": 2,
                **kw,
            },
        ),
    }[function]
    cases = [
        (dict(batch_size=6), "batch_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=2.0), "batch_size"),
        (dict(data=(x, jnp.asarray(1.0))), "data"),
        (dict(data=(x, y[:3])), "data"),
        (dict(data=(x.at[0, 0].set(jnp.nan), y)), "data"),
        (dict(key=3), "key"),
    ]
    if function == "sgd_sde":
        cases += [
            (dict(dt=0.06), "dt"),
            (dict(dt=-1.0), "dt"),
            (dict(order=3), "order"),
            (dict(noise_examples=9), "noise_examples"),
            (dict(solver="heun"), "solver"),
        ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=f"{function}: .*`{name}`"):
            call(**kwargs)
    if function == "sgd_sde":
        with pytest.raises(ValueError, match="sgd_sde: `ts` needs at least two"):
            cr.sgd_sde(
                model.example_loss, model.params0, jnp.array([0.0]), 0.1, model.data,
                batch_size=2, key=jax.random.key(0),
            )  # fmt: skip


def test_weak_error_checks_times(model):
    runs = cr.sgd_paths(
        model.example_loss,
        model.params0,
        0.1,
        model.data,
        batch_size=2,
        n_steps=4,
        key=jax.random.key(0),
        n_paths=3,
    )
    shifted = cr.sgd_paths(
        model.example_loss,
        model.params0,
        0.2,
        model.data,
        batch_size=2,
        n_steps=4,
        key=jax.random.key(0),
        n_paths=3,
    )
    with pytest.raises(ValueError, match="same flow times"):
        cr.weak_error(runs, shifted)
    with pytest.raises(ValueError, match="`f`"):
        cr.weak_error(runs, runs, "loss2")
    # Against itself: zero error; the interval of a linear functional is computed.
    err = cr.weak_error(runs, runs, lambda p: p @ jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(err.error, 0.0)
    assert err.half_width.shape == runs.ts.shape
    norm2 = cr.weak_error(runs, runs, "norm2")
    np.testing.assert_allclose(
        norm2.mean_sgd, jnp.mean(jnp.sum(runs.params**2, -1), 0), rtol=1e-12
    )


@pytest.mark.slow
def test_float32_paths_match_exact_moments(model):
    # The defaults (dt = lr/4, the Brownian tree's tolerance dt/8) fit float32.
    lr, t, batch = 0.3, 1.2, 1
    features, targets = (x.astype(jnp.float32) for x in model.data)
    model32 = LinearRegression(
        features, targets, params0=model.params0.astype(jnp.float32)
    )
    paths = cr.sgd_sde(
        model32.example_loss,
        model32.params0,
        jnp.array([0.0, t]),
        lr,
        model32.data,
        batch_size=batch,
        key=jax.random.key(5),
        n_paths=4000,
        order=2,
    )
    runs = cr.sgd_paths(
        model32.example_loss,
        model32.params0,
        lr,
        model32.data,
        batch_size=batch,
        n_steps=4,
        key=jax.random.key(6),
        n_paths=4000,
    )
    assert paths.params.dtype == jnp.float32 and runs.params.dtype == jnp.float32
    _, second = model.sme_moments(t, lr, batch, 2)
    _within(jnp.sum(paths.params[:, -1] ** 2, -1), jnp.trace(second), "SME float32")
    _, second = model.sgd_moments(4, lr, batch)
    _within(jnp.sum(runs.params[:, -1] ** 2, -1), jnp.trace(second), "SGD float32")


@pytest.mark.slow
def test_diverging_paths_raise_or_report(model):
    # lr = 5 is far beyond 2/λ_max: every path overflows.
    options = dict(
        batch_size=2, n_steps=400, key=jax.random.key(0), n_paths=2, every=400
    )
    with pytest.raises(
        RUNTIME_ERRORS, match="sgd_paths: The iterates became NaN or Inf"
    ):
        cr.sgd_paths(model.example_loss, model.params0, 5.0, model.data, **options)
    runs = cr.sgd_paths(
        model.example_loss, model.params0, 5.0, model.data, throw=False, **options
    )
    assert bool(jnp.all(runs.result == cr.RESULTS.diverged))
