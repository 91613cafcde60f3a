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


def _rooted_trees(max_order: int) -> list[list[tuple]]:
    """Rooted trees by order, each a sorted tuple of its subtrees (Butcher's trees)."""
    by_order: list[list[tuple]] = [[], [()]]
    for order in range(2, max_order + 1):
        smaller = [tree for trees in by_order for tree in trees]
        by_order.append(sorted(set(_forests(order - 1, len(smaller) - 1, smaller))))
    return by_order


def _forests(total: int, largest: int, trees: list[tuple]):
    """Multisets of `trees[:largest + 1]` (indices non-increasing) of order `total`,
    each as a sorted tuple: the subtrees of a root."""
    if total == 0:
        yield ()
        return
    for index in range(largest, -1, -1):
        size = _size(trees[index])
        if size <= total:
            for rest in _forests(total - size, index, trees):
                yield tuple(sorted((trees[index], *rest)))


def tableau_order(tableau: diffrax.ButcherTableau, max_order: int = 6) -> int:
    """The classical order of an explicit tableau: the largest p ≤ `max_order` whose
    Butcher conditions b·Φ(t) = 1/γ(t) hold for every rooted tree t of order ≤ p."""
    stages = tableau.num_stages
    a = np.zeros((stages, stages))
    for i, row in enumerate(tableau.a_lower, start=1):
        a[i, : len(row)] = row
    b = np.asarray(tableau.b_sol, dtype=np.float64)

    def weights(tree: tuple) -> tuple[np.ndarray, int]:
        """The stage vector Φ(t) and the density γ(t) of `tree`."""
        phi, gamma, size = np.ones(stages), 1, 1
        for child in tree:
            child_phi, child_gamma = weights(child)
            phi = phi * (a @ child_phi)
            gamma *= child_gamma
            size += _size(child)
        return phi, gamma * size

    trees = _rooted_trees(max_order)
    for order in range(1, max_order + 1):
        for tree in trees[order]:
            phi, gamma = weights(tree)
            # Round-off relative to the terms summed.
            allowed = 1e-10 * (np.abs(b) @ np.abs(phi) + 1.0 / gamma)
            if abs(b @ phi - 1.0 / gamma) > allowed:
                return order - 1
    return max_order


def _size(tree: tuple) -> int:
    return 1 + sum(_size(child) for child in tree)


def _entries(tableau: diffrax.ButcherTableau) -> tuple:
    arrays = (tableau.c, tableau.b_sol, tableau.b_error, *tableau.a_lower)
    return tuple(np.asarray(x, dtype=np.float64).tobytes() for x in arrays)


def _solver_from_tableau(
    where: str, name: str, tableau: diffrax.ButcherTableau
) -> diffrax.AbstractSolver:
    if tableau.implicit:
        raise InvalidInputError(
            f"{where}: `{name}` must be an explicit tableau (no diagonal entries)."
        )
    key = _entries(tableau)
    order = tableau_order(tableau)
    if key in _FROM_TABLEAU:
        _FROM_TABLEAU.move_to_end(key)
        return _FROM_TABLEAU[key]
    solver_class = type(
        "ExplicitRungeKutta",
        (diffrax.AbstractERK,),
        {
            "tableau": tableau,
            "interpolation_cls": diffrax.ThirdOrderHermitePolynomialInterpolation.from_k,
            "order": lambda self, terms: order,
            "__module__": __name__,
        },
    )
    _FROM_TABLEAU[key] = solver_class()
    if len(_FROM_TABLEAU) > _MAX_CACHED:
        _FROM_TABLEAU.popitem(last=False)
    return _FROM_TABLEAU[key]


def explicit_solver(
    where: str,
    tableau: str | diffrax.ButcherTableau | diffrax.AbstractSolver,
    name: str = "tableau",
) -> diffrax.AbstractSolver:
    """The diffrax solver for a method name, a `ButcherTableau`, or a solver instance.

    Names: "euler", "midpoint", "heun", "ralston", "rk4". diffrax checks Σ bᵢ = 1
    (consistency) when a `ButcherTableau` is built. Errors name `where` (the function
    the user called) and the argument `name`.
    """
    if isinstance(tableau, str):
        if tableau not in NAMED_METHODS:
            raise InvalidInputError(
                f"{where}: unknown `{name}` {tableau!r}; choose one of "
                f"{sorted(NAMED_METHODS)}, a diffrax.ButcherTableau or a diffrax solver."
            )
        return NAMED_METHODS[tableau]
    if isinstance(tableau, diffrax.ButcherTableau):
        return _solver_from_tableau(where, name, tableau)
    if isinstance(tableau, diffrax.AbstractSolver):
        explicit = isinstance(tableau, (diffrax.AbstractERK, diffrax.Euler))
        if not explicit or isinstance(tableau, diffrax.AbstractImplicitSolver):
            raise InvalidInputError(
                f"{where}: `{name}` must be an explicit Runge–Kutta solver (a "
                f"diffrax.AbstractERK such as diffrax.Bosh3()), got "
                f"{type(tableau).__name__}."
            )
        return tableau
    raise InvalidInputError(
        f"{where}: `{name}` must be a name, a diffrax.ButcherTableau or a diffrax "
        f"solver, got {type(tableau).__name__}."
    )
