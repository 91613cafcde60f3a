"""Named explicit Runge–Kutta methods as diffrax solvers, and solvers from any tableau."""

from collections import OrderedDict
from typing import ClassVar

import diffrax
import numpy as np

from ._checks import InvalidInputError

_RK4_TABLEAU = diffrax.ButcherTableau(
    c=np.array([0.5, 0.5, 1.0]),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    b_error=np.zeros(4),  # no embedded method: only ever run with a constant step
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
)


class RK4(diffrax.AbstractERK):
    """The classical 4-stage, 4th-order Runge–Kutta method (constant steps only)."""

    tableau: ClassVar[diffrax.ButcherTableau] = _RK4_TABLEAU
    interpolation_cls: ClassVar = (
        diffrax.ThirdOrderHermitePolynomialInterpolation.from_k
    )

    def order(self, terms):
        return 4


NAMED_METHODS: dict[str, diffrax.AbstractSolver] = {
    "euler": diffrax.Euler(),
    "midpoint": diffrax.Midpoint(),
    "heun": diffrax.Heun(),
    "ralston": diffrax.Ralston(),
    "rk4": RK4(),
}

# One solver class per distinct user tableau, so repeated calls hit the jit cache.
# ButcherTableau holds numpy arrays and is unhashable: the key is its entries' bytes.
# Bounded, so a stream of random tableaux (property tests) does not pin memory.
_FROM_TABLEAU: OrderedDict[tuple, diffrax.AbstractSolver] = OrderedDict()
_MAX_CACHED = 64


def _entries(tableau: diffrax.ButcherTableau) -> tuple:
    arrays = (tableau.c, tableau.b_sol, tableau.b_error, *tableau.a_lower)
    return tuple(np.asarray(x, dtype=np.float64).tobytes() for x in arrays)


def _solver_from_tableau(tableau: diffrax.ButcherTableau) -> diffrax.AbstractSolver:
    if tableau.implicit:
        raise InvalidInputError(
            "runge_kutta: `tableau` must be explicit (no diagonal entries)."
        )
    key = _entries(tableau)
    if key in _FROM_TABLEAU:
        _FROM_TABLEAU.move_to_end(key)
        return _FROM_TABLEAU[key]
    solver_class = type(
        "ExplicitRungeKutta",
        (diffrax.AbstractERK,),
        {
            "tableau": tableau,
            "interpolation_cls": diffrax.ThirdOrderHermitePolynomialInterpolation.from_k,
            "order": lambda self, terms: None,
            "__module__": __name__,
        },
    )
    _FROM_TABLEAU[key] = solver_class()
    if len(_FROM_TABLEAU) > _MAX_CACHED:
        _FROM_TABLEAU.popitem(last=False)
    return _FROM_TABLEAU[key]


def explicit_solver(
    tableau: str | diffrax.ButcherTableau | diffrax.AbstractSolver,
) -> diffrax.AbstractSolver:
    """The diffrax solver for a method name, a `ButcherTableau`, or a solver instance.

    Names: "euler", "midpoint", "heun", "ralston", "rk4". diffrax checks Σ bᵢ = 1
    (consistency) when a `ButcherTableau` is built.
    """
    if isinstance(tableau, str):
        if tableau not in NAMED_METHODS:
            raise InvalidInputError(
                f"runge_kutta: unknown `tableau` {tableau!r}; choose one of "
                f"{sorted(NAMED_METHODS)}, a diffrax.ButcherTableau or a diffrax solver."
            )
        return NAMED_METHODS[tableau]
    if isinstance(tableau, diffrax.ButcherTableau):
        return _solver_from_tableau(tableau)
    if isinstance(tableau, diffrax.AbstractSolver):
        return tableau
    raise InvalidInputError(
        "runge_kutta: `tableau` must be a name, a diffrax.ButcherTableau or a diffrax "
        f"solver, got {type(tableau).__name__}."
    )
