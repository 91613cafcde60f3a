"""Certificates: what a proof script establishes, how, and whether it succeeded."""

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import sympy as sp

from .._checks import InvalidInputError
from ._zero import is_zero


@dataclasses.dataclass(frozen=True)
class Identity:
    """A symbolic identity: `residual` must simplify to zero.

    **Fields:**

    - `label`: what the identity says, in words.
    - `residual`: the sympy expression (or matrix) that must vanish, e.g. `lhs - rhs`.
    - `holds`: whether sympy reduced it to zero.
    - `how`: the simplification that did ("expand", "cancel", "simplify", ...), or
      "failed".
    """

    label: str
    residual: Any
    holds: bool
    how: str


@dataclasses.dataclass(frozen=True)
class NumericCheck:
    """A numerical cross-check, usually of a symbolic identity against the JAX code.

    **Fields:**

    - `label`: what was compared.
    - `error`: the measured discrepancy (or the value that must stay small).
    - `tolerance`: the largest acceptable `error`.
    - `passed`: `error <= tolerance` (and `error` finite).
    """

    label: str
    error: float
    tolerance: float
    passed: bool


@dataclasses.dataclass(frozen=True)
class Falsification:
    """A counterexample that shows a hypothesis cannot be dropped.

    **Fields:**

    - `hypothesis`: the hypothesis dropped, in words.
    - `witness`: the counterexample the script found (empty if none).
    - `found`: whether the search produced one.
    """

    hypothesis: str
    witness: str
    found: bool


@dataclasses.dataclass(frozen=True)
class Certificate:
    """The outcome of one proof script.

    **Fields:**

    - `name`: the statement's name, e.g. "Lemma 2.8".
    - `statement`: the claim, in words and formulas.
    - `method`: how it is established, e.g. "symbolic, general (sympy.Function)" or
      "symbolic, every dimension 1..4"; what is only checked numerically is said in
      `assumptions`.
    - `assumptions`: the hypotheses and the honest limits of the proof.
    - `identities`: the [`corridors.symbolic.Identity`][] objects proved.
    - `checks`: the [`corridors.symbolic.NumericCheck`][] cross-checks run.
    - `falsifications`: the [`corridors.symbolic.Falsification`][] searches run.
    - `seconds`: wall-clock time taken.

    `verdict` is `True` when every identity holds, every check passes, every
    falsification found its counterexample, and there is at least one of each.
    """

    name: str
    statement: str
    method: str
    assumptions: tuple[str, ...]
    identities: tuple[Identity, ...]
    checks: tuple[NumericCheck, ...]
    falsifications: tuple[Falsification, ...]
    seconds: float

    @property
    def verdict(self) -> bool:
        """Whether the statement is proved (see the class docstring)."""
        return (
            bool(self.identities and self.checks and self.falsifications)
            and all(identity.holds for identity in self.identities)
            and all(check.passed for check in self.checks)
            and all(falsification.found for falsification in self.falsifications)
        )

    def failures(self) -> list[str]:
        """One line for each part that failed (empty when `verdict` is `True`)."""
        lines = [f"identity: {i.label}" for i in self.identities if not i.holds]
        lines += [
            f"check: {c.label} (error {c.error:.3g} > {c.tolerance:.3g})"
            for c in self.checks
            if not c.passed
        ]
        lines += [
            f"falsification: {f.hypothesis}" for f in self.falsifications if not f.found
        ]
        for kind, items in (
            ("identities", self.identities),
            ("checks", self.checks),
            ("falsifications", self.falsifications),
        ):
            if not items:
                lines.append(f"no {kind}")
        return lines

    def report(self) -> str:
        """A short human-readable account of the proof."""
        mark = lambda ok: "ok  " if ok else "FAIL"  # noqa: E731
        lines = [
            f"{self.name}: {self.statement}",
            f"  method: {self.method}",
        ]
        lines += [f"  assumes: {assumption}" for assumption in self.assumptions]
        lines += [
            f"  [{mark(i.holds)}] identity ({i.how}): {i.label}"
            for i in self.identities
        ]
        lines += [
            f"  [{mark(c.passed)}] check (error {c.error:.1e}, tolerance "
            f"{c.tolerance:.1e}): "
            f"{c.label}"
            for c in self.checks
        ]
        for f in self.falsifications:
            lines.append(f"  [{mark(f.found)}] without '{f.hypothesis}': {f.witness}")
        verdict = "PROVED" if self.verdict else "NOT PROVED"
        lines.append(f"  verdict: {verdict} in {self.seconds:.1f} s")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


class Proof:
    """Collects the parts of a proof and issues its [`corridors.symbolic.Certificate`][].

    The clock starts when the `Proof` is created.

    **Arguments:**

    - `name`: the statement's name, e.g. "Lemma 2.8".
    - `statement`: the claim.
    - `method`: how it is established (general, per dimension, ...).
    - `assumptions`: hypotheses and limits, more can be added with `assume`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import sympy as sp
    from corridors import symbolic as sym

    proof = sym.Proof("Pythagoras", "sin² + cos² = 1", method="symbolic")
    (x,) = sym.coordinates(1)
    proof.vanishes("sin² + cos² − 1 = 0", sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1)
    proof.close("at x = 0.3", jnp.sin(0.3) ** 2 + jnp.cos(0.3) ** 2, 1.0, atol=1e-6)
    proof.falsification("sin² − cos² = 1", witness="x = 0", found=True)
    print(proof.certificate().verdict)  # True
    ```
    """

    def __init__(
        self,
        name: str,
        statement: str,
        *,
        method: str,
        assumptions: Iterable[str] = (),
    ):
        for argument, value in (
            ("name", name),
            ("statement", statement),
            ("method", method),
        ):
            if not isinstance(value, str) or not value:
                raise InvalidInputError(
                    f"Proof: `{argument}` must be a non-empty string, got {value!r}."
                )
        self.name = name
        self.statement = statement
        self.method = method
        self._assumptions = [str(a) for a in assumptions]
        self._identities: list[Identity] = []
        self._checks: list[NumericCheck] = []
        self._falsifications: list[Falsification] = []
        self._start = time.perf_counter()

    def assume(self, assumption: str) -> None:
        """Record a hypothesis, or a limit of the proof (what is only checked)."""
        self._assumptions.append(str(assumption))

    def vanishes(
        self, label: str, residual: Any, *, methods: tuple[str, ...] | None = None
    ) -> bool:
        """Record that `residual` (an expression or matrix) simplifies to zero.

        **Arguments:**

        - `label`: what the identity says.
        - `residual`: the expression that must vanish.
        - `methods`: simplifications to try in order (see
          [`corridors.symbolic.is_zero`][]); default: cheapest first.

        **Returns:**

        Whether it vanished (also recorded in the certificate).
        """
        holds, how = is_zero(residual, methods=methods)
        self._identities.append(Identity(label, residual, holds, how))
        return holds

    def equal(
        self,
        label: str,
        lhs: Any,
        rhs: Any,
        *,
        methods: tuple[str, ...] | None = None,
    ) -> bool:
        """Record that `lhs == rhs` symbolically (their difference vanishes)."""
        if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
            lhs, rhs = sp.Matrix(lhs), sp.Matrix(rhs)
            if lhs.shape != rhs.shape:
                self._identities.append(
                    Identity(label, sp.nan, False, f"shapes {lhs.shape} ≠ {rhs.shape}")
                )
                return False
        return self.vanishes(label, lhs - rhs, methods=methods)

    def fact(self, label: str, holds: bool, residual: Any = sp.S.Zero) -> bool:
        """Record an exact fact decided by other means (e.g. a sympy inequality or a
        solved equation); `residual` documents it."""
        holds = bool(holds)
        self._identities.append(
            Identity(label, residual, holds, "decided" if holds else "failed")
        )
        return holds

    def check(self, label: str, error: Any, tolerance: float) -> bool:
        """Record a numerical check that `error` ≤ `tolerance`."""
        error = float(np.max(np.abs(np.asarray(error, dtype=float))))
        passed = math.isfinite(error) and error <= tolerance
        self._checks.append(NumericCheck(label, error, float(tolerance), passed))
        return passed

    def close(
        self,
        label: str,
        actual: Any,
        expected: Any,
        *,
        rtol: float = 0.0,
        atol: float = 1e-10,
    ) -> bool:
        """Record a numerical check that `actual` ≈ `expected`.

        The error is max |actual − expected|; the tolerance is
        atol + rtol·max |expected|.
        """
        actual = np.asarray(actual, dtype=float)
        expected = np.asarray(expected, dtype=float)
        actual, expected = np.broadcast_arrays(actual, expected)
        if not actual.size:
            return self.check(label, 0.0, atol)
        error = np.max(np.abs(actual - expected))
        tolerance = atol + rtol * float(np.max(np.abs(expected)))
        return self.check(label, error, tolerance)

    def falsification(self, hypothesis: str, *, witness: str, found: bool) -> bool:
        """Record the search for a counterexample once `hypothesis` is dropped."""
        found = bool(found)
        self._falsifications.append(
            Falsification(hypothesis, witness if found else "none found", found)
        )
        return found

    def certificate(self) -> Certificate:
        """The certificate of everything recorded so far."""
        return Certificate(
            name=self.name,
            statement=self.statement,
            method=self.method,
            assumptions=tuple(self._assumptions),
            identities=tuple(self._identities),
            checks=tuple(self._checks),
            falsifications=tuple(self._falsifications),
            seconds=time.perf_counter() - self._start,
        )


def run_proof(prove: Callable[[], Certificate]) -> int:
    """Run a proof script's `prove()`, print its report, and return an exit code.

    Use it as the body of a proof script's `__main__` block:
    `raise SystemExit(run_proof(prove))`.

    **Returns:**

    0 when the certificate's verdict is `True`, else 1.

    **Example:**

    ```python
    import jax.numpy as jnp
    import sympy as sp
    from corridors import symbolic as sym

    def prove():
        proof = sym.Proof("Pythagoras", "sin² + cos² = 1", method="symbolic")
        (x,) = sym.coordinates(1)
        proof.vanishes("sin² + cos² − 1 = 0", sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1)
        proof.close("at x = 0.3", jnp.sin(0.3) ** 2 + jnp.cos(0.3) ** 2, 1.0, atol=1e-6)
        proof.falsification("sin² − cos² = 1", witness="x = 0", found=True)
        return proof.certificate()

    exit_code = sym.run_proof(prove)  # prints the report, ending "verdict: PROVED in … s"
    print(exit_code)  # 0
    ```
    """
    certificate = prove()
    if not isinstance(certificate, Certificate):
        raise InvalidInputError(
            f"run_proof: `prove()` must return a Certificate, got "
            f"{type(certificate).__name__}."
        )
    print(certificate.report())
    if not certificate.verdict:
        print("  failed parts:")
        for line in certificate.failures():
            print(f"    - {line}")
    return 0 if certificate.verdict else 1
