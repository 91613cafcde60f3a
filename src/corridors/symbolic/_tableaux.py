"""Symbolic Butcher tableaux of explicit Runge–Kutta methods, and their diffrax form."""

import dataclasses
from collections.abc import Mapping

import diffrax
import numpy as np
import sympy as sp

from .._checks import InvalidInputError


@dataclasses.dataclass(frozen=True)
class SymbolicTableau:
    """An explicit Runge–Kutta tableau with sympy entries.

    **Fields:**

    - `a`: the (s, s) strictly lower-triangular matrix.
    - `b`: the weights, a (1, s) matrix.
    - `c`: the nodes c_i = Σ_j a_ij, an (s, 1) matrix (what diffrax requires).
    - `symbols`: the free symbols, in order (empty for a concrete method).
    """

    a: sp.Matrix
    b: sp.Matrix
    c: sp.Matrix
    symbols: tuple[sp.Symbol, ...]

    @property
    def stages(self) -> int:
        """The number of stages s."""
        return self.a.shape[0]

    def subs(self, values: Mapping) -> "SymbolicTableau":
        """The tableau with `values` substituted for its symbols."""
        a, b, c = (m.subs(values) for m in (self.a, self.b, self.c))
        left = tuple(s for s in self.symbols if s not in values)
        return SymbolicTableau(a, b, c, left)


def symbolic_tableau(stages: int, *, consistent: bool = True) -> SymbolicTableau:
    """The general explicit tableau with `stages` stages, entries free symbols.

    **Arguments:**

    - `stages`: s ≥ 1.
    - `consistent`: impose Σ b_i = 1 by writing b_s = 1 − Σ_{i<s} b_i.

    **Returns:**

    A [`corridors.symbolic.SymbolicTableau`][] with symbols a_ij (i > j) and b_i.

    **Example:**

    ```python
    from corridors import symbolic as sym
    tableau = sym.symbolic_tableau(2)
    print(tableau.a, tableau.b)  # Matrix([[0, 0], [a21, 0]]) Matrix([[b1, 1 - b1]])
    ```
    """
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise InvalidInputError(
            f"symbolic_tableau: `stages` must be a positive int, got {stages!r}."
        )
    s = stages
    a = sp.zeros(s, s)
    free = []
    for i in range(s):
        for j in range(i):
            a[i, j] = sp.Symbol(f"a{i + 1}{j + 1}", real=True)
            free.append(a[i, j])
    weights = [sp.Symbol(f"b{i + 1}", real=True) for i in range(s)]
    if consistent:
        weights[-1] = 1 - sum(weights[:-1])
        free.extend(weights[:-1])
    else:
        free.extend(weights)
    b = sp.Matrix([weights])
    c = sp.Matrix([sum(a[i, j] for j in range(i)) for i in range(s)])
    return SymbolicTableau(a, b, c, tuple(free))


_NAMED = {
    "euler": ([[0]], [1]),
    "midpoint": ([[0, 0], [sp.Rational(1, 2), 0]], [0, 1]),
    "heun": ([[0, 0], [1, 0]], [sp.Rational(1, 2), sp.Rational(1, 2)]),
    "ralston": (
        [[0, 0], [sp.Rational(2, 3), 0]],
        [sp.Rational(1, 4), sp.Rational(3, 4)],
    ),
    "rk4": (
        [
            [0, 0, 0, 0],
            [sp.Rational(1, 2), 0, 0, 0],
            [0, sp.Rational(1, 2), 0, 0],
            [0, 0, 1, 0],
        ],
        [
            sp.Rational(1, 6),
            sp.Rational(1, 3),
            sp.Rational(1, 3),
            sp.Rational(1, 6),
        ],
    ),
}


def named_tableau(name: str) -> SymbolicTableau:
    """The exact (rational) tableau of "euler", "midpoint", "heun", "ralston" or "rk4".

    These are the methods `corridors.runge_kutta` accepts by name.

    **Example:**

    ```python
    from corridors import symbolic as sym
    print(sym.named_tableau("heun").b)  # Matrix([[1/2, 1/2]])
    ```
    """
    if name not in _NAMED:
        raise InvalidInputError(
            f"named_tableau: unknown `name` {name!r}; choose one of {sorted(_NAMED)}."
        )
    a_rows, weights = _NAMED[name]
    a = sp.Matrix(a_rows)
    s = a.shape[0]
    c = sp.Matrix([sum(a[i, j] for j in range(i)) for i in range(s)])
    return SymbolicTableau(a, sp.Matrix([weights]), c, ())


def butcher_tableau(
    tableau: SymbolicTableau, values: Mapping | None = None
) -> diffrax.ButcherTableau:
    """The numeric `diffrax.ButcherTableau` of a symbolic tableau.

    **Arguments:**

    - `tableau`: a [`corridors.symbolic.SymbolicTableau`][] with s ≥ 2 stages.
    - `values`: numbers for its free symbols (all of them must be given).

    **Returns:**

    A `diffrax.ButcherTableau` (no error estimate: `b_error` is zero), usable as
    `corridors.runge_kutta(..., tableau=...)`. diffrax itself refuses Σ b_i ≠ 1.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr
    from corridors import symbolic as sym
    tableau = sym.butcher_tableau(sym.named_tableau("heun"))
    print(cr.runge_kutta(lambda th: jnp.sum(th**2), jnp.ones(2), 0.1, 3, tableau=tableau).shape)  # (4, 2)
    ```
    """
    if tableau.stages < 2:
        raise InvalidInputError(
            "butcher_tableau: diffrax cannot represent a one-stage tableau; the only "
            "consistent one is Euler's method, `corridors.runge_kutta(..., "
            "tableau='euler')`."
        )
    concrete = tableau.subs(dict(values or {}))
    if concrete.symbols or any(
        not sp.sympify(entry).is_number for entry in (*concrete.a, *concrete.b)
    ):
        raise InvalidInputError(
            "butcher_tableau: every symbol needs a value; missing "
            f"{sorted(map(str, concrete.symbols))}."
        )
    s = concrete.stages
    a = np.array(concrete.a.evalf(), dtype=float)
    b = np.array(concrete.b.evalf(), dtype=float).reshape(-1)
    c = np.array(concrete.c.evalf(), dtype=float).reshape(-1)
    return diffrax.ButcherTableau(
        c=c[1:],
        b_sol=b,
        b_error=np.zeros(s),
        a_lower=tuple(a[i, :i] for i in range(1, s)),
    )
