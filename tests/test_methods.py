"""The method registry: orders, clocks and modified-flow support of every method."""

import diffrax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import corridors as cr
from corridors import testing as T
from corridors._tableaux import tableau_order


@pytest.mark.parametrize(
    "solver",
    [diffrax.Heun, diffrax.Midpoint, diffrax.Ralston, diffrax.Bosh3, diffrax.Tsit5,
     diffrax.Dopri5, diffrax.Dopri8],
)  # fmt: skip
def test_butcher_conditions_give_diffrax_s_own_orders(solver):
    # An independent check: the rooted-tree conditions against diffrax's declared order.
    assert tableau_order(solver.tableau, max_order=9) == solver().order(None)
    info = cr.method_info(solver.tableau)
    assert (info.name, info.family, info.global_order) == (
        "tableau",
        "runge_kutta",
        solver().order(None),
    )


@given(st.floats(0.1, 2.0))
def test_the_two_stage_family_has_order_two_exactly_when_b2_c2_is_one_half(c):
    def tableau(b2):
        return diffrax.ButcherTableau(
            c=np.array([c]),
            b_sol=np.array([1 - b2, b2]),
            b_error=np.zeros(2),
            a_lower=(np.array([c]),),
        )

    assert tableau_order(tableau(0.5 / c)) == 2  # third order needs b₂c² = 1/3 too
    assert tableau_order(tableau(0.5 / c + 0.1)) == 1


@given(T.explicit_rk_tableaux())
def test_every_consistent_tableau_has_order_at_least_one(tableau):
    assert cr.method_info(tableau).global_order >= 1


@pytest.mark.parametrize(
    ("method", "order", "modified", "momentum"),
    [
        ("gd", 1, True, False),
        ("momentum", 1, False, True),
        ("nesterov", 1, False, True),
        ("euler", 1, True, False),
        ("midpoint", 2, False, False),
        ("heun", 2, False, False),
        ("ralston", 2, False, False),
        ("rk4", 4, False, False),
    ],
)
def test_named_methods(method, order, modified, momentum):
    info = cr.method_info(method)
    assert info.global_order == order and info.local_order == order + 1
    assert info.modified_flow is modified and info.momentum is momentum
    assert info.drift_order("flow") == order
    assert info.drift_order("modified", local=True) == (3 if modified else None)
    beta = 0.5
    ts = np.asarray(info.matched_times(0.1, 3, beta=beta))
    k = np.arange(4)
    if method == "momentum":  # Lemma A.1's closed form
        expected = 0.1 * (k - beta * (1 - beta**k) / (1 - beta)) / (1 - beta)
    elif method == "nesterov":
        expected = 0.1 * (k - beta**2 * (1 - beta**k) / (1 - beta)) / (1 - beta)
    else:
        expected = 0.1 * k
    np.testing.assert_allclose(ts, expected, rtol=1e-6, atol=1e-12)


def test_unknown_methods_are_refused_naming_the_caller():
    with pytest.raises(ValueError, match="method_info: unknown `method` 'rk5'"):
        cr.method_info("rk5")
    with pytest.raises(ValueError, match="measure_drift: `method` must be"):
        cr.measure_drift(lambda p: jnp.sum(p**2), jnp.ones(2), 0.1, 2, method=3)
