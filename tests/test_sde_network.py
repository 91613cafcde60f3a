"""Monte Carlo: SGD on a small tanh network against its order-1 and order-2 SME.

Measured while writing the tests (2000 paths each, float64, horizon t = 2, N = 16,
B = 4, SME dt = lr/8; SGD saved every n/4 steps, so other keys than the tests'),
|E L_SGD − E L_SME| against the 99% half-width (E L ≈ 0.032 at t = 2):

| lr   | order 1            | order 2            |
|------|--------------------|--------------------|
| 0.05 | 4.9e-4 vs 2.5e-4   | 8.2e-5 vs 2.4e-4   |
| 0.2  | 1.6e-3 vs 5.5e-4   | 1.2e-4 vs 5.2e-4   |

At lr = 0.01 (dt = lr/4) the order-1 SME's interval holds SGD's mean (asserted).
"""

import jax
import jax.numpy as jnp
import pytest

import corridors as cr

HORIZON = 2.0
PATHS = 2000
BATCH = 4


def _problem():
    x = jax.random.normal(jax.random.key(0), (16, 2))
    w_teacher = jax.random.normal(jax.random.key(5), (2,))
    y = jnp.tanh(x @ w_teacher) + 0.3 * jax.random.normal(jax.random.key(6), (16,))
    params0 = (
        0.8 * jax.random.normal(jax.random.key(1), (2, 4)),
        jnp.zeros(4),
        0.5 * jax.random.normal(jax.random.key(2), (4,)),
    )

    def loss(params, batch):
        (w1, b1, w2), (xb, yb) = params, batch
        return 0.5 * jnp.mean((jnp.tanh(xb @ w1 + b1) @ w2 - yb) ** 2)

    return loss, params0, (x, y)


def _errors(lr, orders, dt_fraction=8):
    loss, params0, data = _problem()
    n = round(HORIZON / lr)
    runs = cr.sgd_paths(
        loss,
        params0,
        lr,
        data,
        batch_size=BATCH,
        n_steps=n,
        every=n,
        key=jax.random.key(10),
        n_paths=PATHS,
    )
    out = {}
    for order in orders:
        sme = cr.sgd_sde(
            loss,
            params0,
            runs.ts,
            lr,
            data,
            batch_size=BATCH,
            order=order,
            key=jax.random.key(11),
            n_paths=PATHS,
            dt=lr / dt_fraction,
        )
        err = cr.weak_error(runs, sme, "loss", level=0.99)
        out[order] = (float(err.error[-1]), float(err.half_width[-1]))
    return out


@pytest.mark.slow
def test_small_lr_sgd_inside_the_sme_interval():
    order1 = _errors(0.01, (1,), dt_fraction=4)[1]
    assert order1[0] <= order1[1], order1
    order2 = _errors(0.05, (2,))[2]
    assert order2[0] <= order2[1], order2


@pytest.mark.slow
def test_order_two_closer_at_the_largest_lr():
    errors = _errors(0.2, (1, 2))
    assert errors[2][0] < errors[1][0], errors
    # The order-1 model is rejected there; the order-2 one is not.
    assert errors[1][0] > errors[1][1] and errors[2][0] <= errors[2][1], errors
