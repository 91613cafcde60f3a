"""Taylor jets of a generic loss in a corridor, and elementary differentials.

In a corridor F = H∇L vanishes on an open set, so every partial derivative of F
vanishes at a point θ0 of it. These are polynomial relations between the partial
derivatives L_α = ∂^α L(θ0). Each can be solved for one derivative that carries the
direction x1: with ∂_1 L(θ0) ≠ 0,

    ∂^β F_i(θ0) = Σ_j Σ_{γ≤β} C(β, γ)·L_{e_i+e_j+γ}·L_{e_j+β−γ} = 0

contains L_{e_1+e_i+β}·L_{e_1} and otherwise only derivatives of lower order, or of the
same order with fewer indices 1. Solving them in that order expresses every L_α with
α_1 ≥ 1, |α| ≥ 2, through free derivatives. A polynomial in the L_α that reduces to 0
therefore vanishes at every point of every corridor (with ∂_1L ≠ 0).

All relations and elementary differentials are homogeneous in L, so ∂_1L(θ0) = 1 can
be assumed after scaling L; the arithmetic is then over the rationals (fast).
"""

import functools
import itertools
import math

import sympy as sp
from sympy.polys.domains import QQ
from sympy.polys.rings import PolyElement, ring

from .._checks import InvalidInputError

Tree = tuple
"""A rooted tree: the sorted tuple of its subtrees; `()` is the single node."""


@functools.cache
def rooted_trees(order: int) -> tuple[Tree, ...]:
    """All rooted trees with `order` nodes (1, 1, 2, 4, 9, 20, … of them).

    **Arguments:**

    - `order`: the number of nodes, a positive int.

    **Returns:**

    A tuple of trees; a tree is the sorted tuple of its subtrees, `()` a single node.

    **Example:**

    ```python
    from corridors import symbolic as sym
    print(len(sym.rooted_trees(4)))  # 4: the rooted trees with 4 nodes
    ```
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise InvalidInputError(
            f"rooted_trees: `order` must be a positive int, got {order!r}."
        )
    if order == 1:
        return ((),)

    def partitions(remaining: int, largest: int):
        if remaining == 0:
            yield ()
            return
        for size in range(min(remaining, largest), 0, -1):
            for rest in partitions(remaining - size, size):
                yield (size, *rest)

    found = set()
    for sizes in partitions(order - 1, order - 1):
        for children in itertools.product(*(rooted_trees(size) for size in sizes)):
            found.add(tuple(sorted(children)))
    return tuple(sorted(found, key=lambda tree: (len(tree), repr(tree))))


def tree_order(tree: Tree) -> int:
    """The number of nodes of a rooted tree.

    **Example:**

    ```python
    from corridors import symbolic as sym
    print([sym.tree_order(tree) for tree in sym.rooted_trees(3)])  # [3, 3]
    ```
    """
    return 1 + sum(tree_order(child) for child in tree)


def tree_label(tree: Tree) -> str:
    """Butcher's bracket notation: "f" for a node, "[f, f]" style for the rest.

    **Example:**

    ```python
    from corridors import symbolic as sym
    print([sym.tree_label(tree) for tree in sym.rooted_trees(3)])  # ['f^(1)(f^(1)(f))', 'f^(2)(f, f)']
    ```
    """
    if not tree:
        return "f"
    return "f^(" + str(len(tree)) + ")(" + ", ".join(map(tree_label, tree)) + ")"


class CorridorJet:
    """The Taylor jet at θ0 of a generic loss in n dimensions, in a corridor.

    Derivatives L_α = ∂^α L(θ0) of orders 1..`order` are symbols; those fixed by the
    corridor relations (see the module docstring) are replaced by their solved values.
    The gradient is normalized to ∂_1 L(θ0) = 1 (scaling L; every quantity here is
    homogeneous in L).

    **Arguments:**

    - `n`: the dimension.
    - `order`: the highest derivative order kept (elementary differentials of order
      p need `order` ≥ p).
    """

    def __init__(self, n: int, order: int):
        for name, value, low in (("n", n, 1), ("order", order, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(
                    f"CorridorJet: `{name}` must be an int ≥ {low}, got {value!r}."
                )
        self.n = n
        self.order = order
        self._unit = tuple(tuple(int(i == k) for k in range(n)) for i in range(n))
        indices = [
            alpha
            for total in range(1, order + 1)
            for alpha in itertools.product(range(total + 1), repeat=n)
            if sum(alpha) == total
        ]
        # Relations are solved in this order: lower order first, then fewer indices 1.
        indices.sort(key=lambda alpha: (sum(alpha), alpha[0], alpha))
        self.indices = tuple(indices)
        free = [alpha for alpha in self.indices if alpha != self._unit[0]]
        self.ring, *generators = ring([self._name(alpha) for alpha in free], QQ)
        self._raw: dict[tuple, PolyElement] = dict(zip(free, generators, strict=True))
        self._raw[self._unit[0]] = self.ring(1)
        self._solved: dict[tuple, PolyElement] = {}
        for alpha in self.indices:
            if sum(alpha) >= 2 and alpha[0] >= 1:
                self._solved[alpha] = self._solve(alpha)
        self._differentials: dict[Tree, tuple[PolyElement, ...]] = {}

    def _name(self, alpha: tuple) -> str:
        return "L_" + "".join(str(i + 1) * count for i, count in enumerate(alpha))

    def symbol(self, alpha: tuple) -> sp.Symbol:
        """The sympy symbol standing for ∂^α L(θ0)."""
        return sp.Symbol(self._name(alpha))

    @property
    def relations(self) -> int:
        """How many corridor relations were solved."""
        return len(self._solved)

    @property
    def free(self) -> int:
        """How many derivatives stay free (the jet's degrees of freedom)."""
        return len(self.indices) - 1 - len(self._solved)

    def _add(self, *alphas: tuple) -> tuple:
        return tuple(map(sum, zip(*alphas, strict=True)))

    def value(self, alpha: tuple) -> PolyElement:
        """∂^α L(θ0) in a corridor, through the free derivatives (a ring element)."""
        if sum(alpha) > self.order:
            raise InvalidInputError(
                f"CorridorJet: derivative of order {sum(alpha)} exceeds the jet's "
                f"order {self.order}."
            )
        return self._solved.get(alpha, self._raw[alpha])

    def _solve(self, target: tuple) -> PolyElement:
        """Solve ∂^β F_i(θ0) = 0 for L_target, target = e_1 + e_i + β."""
        rest = list(target)
        rest[0] -= 1
        i = next(k for k in range(self.n) if rest[k] >= 1)
        rest[i] -= 1
        beta = tuple(rest)
        total = self.ring(0)
        for j in range(self.n):
            for gamma in itertools.product(*(range(b + 1) for b in beta)):
                if j == 0 and gamma == beta:
                    continue  # the term L_target·L_{e_1}, with L_{e_1} = 1
                weight = math.prod(
                    math.comb(b, g) for b, g in zip(beta, gamma, strict=True)
                )
                remainder = tuple(b - g for b, g in zip(beta, gamma, strict=True))
                total += (
                    weight
                    * self.value(self._add(self._unit[i], self._unit[j], gamma))
                    * self.value(self._add(self._unit[j], remainder))
                )
        return -total

    def elementary_differential(self, tree: Tree) -> tuple[PolyElement, ...]:
        """F(τ)(θ0) for the gradient field f = −∇L, in a corridor (ring elements).

        F(•) = f and F([τ_1, …, τ_m]) = f^(m)(F(τ_1), …, F(τ_m)), where
        ∂^β f_i = −L_{e_i+β}.
        """
        if tree in self._differentials:
            return self._differentials[tree]
        if tree_order(tree) > self.order:
            raise InvalidInputError(
                f"CorridorJet.elementary_differential: a tree of order "
                f"{tree_order(tree)} needs a jet of order ≥ {tree_order(tree)}, this "
                f"one has order {self.order}."
            )
        children = [self.elementary_differential(child) for child in tree]
        result = []
        for i in range(self.n):
            entry = self.ring(0)
            for js in itertools.product(range(self.n), repeat=len(children)):
                term = -self.value(
                    self._add(self._unit[i], *(self._unit[j] for j in js))
                )
                for child, j in zip(children, js, strict=True):
                    term = term * child[j]
                entry += term
            result.append(entry)
        self._differentials[tree] = tuple(result)
        return self._differentials[tree]

    def as_expr(self, element: PolyElement) -> sp.Expr:
        """A ring element as a sympy expression in the symbols L_α."""
        return element.as_expr()
