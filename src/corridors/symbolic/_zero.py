"""Deciding that a sympy expression is identically zero."""

from collections.abc import Callable
from typing import Any

import sympy as sp

from .._checks import InvalidInputError

_SIMPLIFIERS: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "expand": lambda e: sp.expand(e),
    "cancel": lambda e: sp.cancel(sp.together(sp.expand(e))),
    "doit": lambda e: sp.expand(e.doit()),
    "trigsimp": lambda e: sp.trigsimp(sp.expand(e)),
    "simplify": lambda e: sp.simplify(e),
}
_DEFAULT = ("expand", "cancel", "simplify")


def _entries(expr: Any) -> list[sp.Expr]:
    if isinstance(expr, sp.MatrixBase):
        return list(expr)
    if isinstance(expr, (list, tuple)):
        return [entry for item in expr for entry in _entries(item)]
    return [sp.sympify(expr)]


def is_zero(expr: Any, *, methods: tuple[str, ...] | None = None) -> tuple[bool, str]:
    """Whether `expr` is identically zero, trying cheap simplifications first.

    Every entry of a matrix (or list) must vanish. An entry vanishes when one of the
    `methods` turns it into the literal 0; sympy's `simplify` is never trusted to
    prove a *non*-zero result, so `False` means "not shown to vanish".

    **Arguments:**

    - `expr`: a sympy expression, a matrix, or a (nested) list of them.
    - `methods`: names among "expand", "cancel" (rational functions), "doit"
      (unevaluated derivatives and substitutions), "trigsimp", "simplify"; tried in
      order. Default: ("expand", "cancel", "simplify").

    **Returns:**

    `(holds, how)`: whether every entry vanished, and the strongest method needed
    ("literal" if nothing was needed, "failed" if some entry did not vanish).

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    (x,) = sym.coordinates(1)
    print(sym.is_zero(sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1))  # (True, 'simplify')
    ```
    """
    methods = _DEFAULT if methods is None else tuple(methods)
    unknown = [m for m in methods if m not in _SIMPLIFIERS]
    if unknown or not methods:
        raise InvalidInputError(
            f"is_zero: `methods` must be a non-empty tuple of {sorted(_SIMPLIFIERS)}, "
            f"got {methods!r}."
        )
    strongest = -1
    for entry in _entries(expr):
        if entry == 0:
            continue
        for rank, name in enumerate(methods):
            if _SIMPLIFIERS[name](entry) == 0:
                strongest = max(strongest, rank)
                break
        else:
            return False, "failed"
    return True, "literal" if strongest < 0 else methods[strongest]
