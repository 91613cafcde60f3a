"""Appendix C: a quadratic has a corridor only if it is linear (A = 0).

For L = ½θᵀAθ + bᵀθ + c with A symmetric, H∇L = A(Aθ + b) = A²θ + Ab. If it vanishes on
an open set, so does its Jacobian A²; and for symmetric A, tr(A²) = tr(AᵀA) = Σ A_ij²,
so A² = 0 forces A = 0. Conversely A = 0 makes L linear, a corridor everywhere.
sympy checks the identities with a generic symmetric A in every dimension 1..4.

Falsifications found by search: the 1-D quadratic aθ²/2 + bθ (a ≠ 0) has no corridor
and GD leaves its flow; without symmetry, A² = 0 does not force A = 0 (a nilpotent
matrix).

Run alone: `python proofs/appendix_c.py` (exit code 0 only when proved).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym
from corridors.landscapes import Quadratic

jax.config.update("jax_enable_x64", True)

STATEMENT = 9
DIMENSIONS = (1, 2, 3, 4)


def symmetric_matrix(n: int) -> sp.Matrix:
    return sp.Matrix(
        n, n, lambda i, j: sp.Symbol(f"a{min(i, j) + 1}{max(i, j) + 1}", real=True)
    )


def quadratic(n: int):
    xs = sym.coordinates(n)
    A = symmetric_matrix(n)
    b = sp.Matrix(sym.coordinates(n, "b"))
    c = sp.Symbol("c", real=True)
    theta = sp.Matrix(xs)
    loss = (theta.T * A * theta)[0] / 2 + (b.T * theta)[0] + c
    return loss, xs, A, b


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Appendix C",
        "A quadratic L = ½θᵀAθ + bᵀθ + c with A symmetric has a corridor (an open set "
        "where H∇L = 0) only if A = 0; then L is linear and a corridor everywhere.",
        method="symbolic with a generic symmetric A, every dimension n = 1..4",
        assumptions=[
            "A is real symmetric (the Hessian of a quadratic form always is).",
            "Checked for n = 1..4; the argument tr(A²) = Σ A_ij² holds in every "
            "dimension.",
        ],
    )
    for n in DIMENSIONS:
        loss, xs, A, b = quadratic(n)
        theta = sp.Matrix(xs)
        corridor = sym.hessian_gradient(loss, xs)
        proof.equal(f"n = {n}: H∇L = A(Aθ + b)", corridor, A * (A * theta + b))
        proof.equal(
            f"n = {n}: the Jacobian of H∇L is A² (so H∇L = 0 on an open set ⇒ A² = 0)",
            corridor.jacobian(xs),
            A * A,
        )
        squares = sum(A[i, j] ** 2 for i in range(n) for j in range(n))
        proof.equal(
            f"n = {n}: tr(A²) = Σ A_ij² for symmetric A", (A * A).trace(), squares
        )
        entries = [A[i, j] for i in range(n) for j in range(n)]
        proof.fact(
            f"n = {n}: Σ A_ij² ≥ A_kl² ≥ 0 for every entry (each difference is a sum "
            "of squares of reals), so tr(A²) = 0 forces A = 0",
            all(bool((squares - e**2).is_nonnegative) for e in entries)
            and all(bool((e**2).is_nonnegative) for e in entries),
            squares,
        )
        proof.vanishes(
            f"n = {n}: A = 0 ⇒ H∇L = 0 everywhere (L linear)",
            corridor.subs({A[i, j]: 0 for i in range(n) for j in range(n)}),
        )

    # Cross-checks: lambdified A(Aθ + b) = corridors.hvp(L, θ, ∇L) on random
    # landscapes.Quadratic; corridor_score is 0 exactly when A = 0.
    rng = np.random.default_rng(9)
    for n in DIMENSIONS:
        loss, xs, A, b = quadratic(n)
        upper = [(i, j) for i in range(n) for j in range(i, n)]
        parameters = (*(A[i, j] for i, j in upper), *b)
        corridor = sym.to_jax(sym.hessian_gradient(loss, xs), xs, parameters)
        a_value = rng.normal(size=(n, n))
        a_value = a_value + a_value.T
        b_value = rng.normal(size=n)
        landscape = Quadratic(jnp.asarray(a_value), jnp.asarray(b_value))
        point = jnp.asarray(rng.normal(size=n))
        symbolic = corridor(point, *(a_value[i, j] for i, j in upper), *b_value)
        numeric = cr.hvp(landscape.loss, point, jax.grad(landscape.loss)(point))
        proof.close(
            f"n = {n}: lambdified A(Aθ + b) = corridors.hvp(Quadratic, θ, ∇L)",
            symbolic,
            numeric,
            rtol=1e-12,
            atol=1e-12,
        )
        flat = Quadratic(np.zeros((n, n)), jnp.asarray(b_value))
        proof.check(
            f"n = {n}: corridor_score(Quadratic with A = 0) = 0",
            cr.corridor_score(flat.loss, point),
            1e-14,
        )
        score = float(cr.corridor_score(landscape.loss, point))
        proof.check(
            f"n = {n}: corridor_score(random A) = {score:.3g} > 0 (error: 1e-6 − "
            "score, clipped at 0)",
            max(0.0, 1e-6 - score),
            0.0,
        )

    # Falsification (i): drop symmetry. Search integer 2×2 matrices for A ≠ 0, A² = 0.
    nilpotent = None
    for entries in itertools.product((-1, 0, 1), repeat=4):
        M = sp.Matrix(2, 2, entries)
        if M != sp.zeros(2, 2) and M * M == sp.zeros(2, 2):
            nilpotent = M
            break
    proof.falsification(
        "A symmetric (in A² = 0 ⇒ A = 0)",
        witness=f"A = {nilpotent.tolist()} ≠ 0 with A² = 0 (tr(A²) = 0 but tr(AᵀA) = "
        f"{(nilpotent.T * nilpotent).trace()})"
        if nilpotent is not None
        else "",
        found=nilpotent is not None,
    )

    # Falsification (ii): drop A = 0. In the 1-D family aθ²/2 + θ, search a for GD
    # iterates off the exact flow θ(t) = −1/a + (θ0 + 1/a)e^{−at}.
    witness, found = "", False
    for a in (0.0, 0.5, 1.0, 2.0):
        landscape = Quadratic(jnp.asarray([[a]]), jnp.asarray([1.0]))
        start = jnp.asarray([0.8])
        iterates = cr.gd(landscape.loss, start, 0.1, 5)
        distance = float(
            np.max(np.abs(iterates - landscape.exact_flow(start, 0.1 * np.arange(6.0))))
        )
        if distance > 1e-6:
            witness = (
                f"1-D quadratic {a}·θ²/2 + θ: H∇L = {a}·({a}θ + 1) ≠ 0 off one point, "
                f"and corridors.gd (h = 0.1) is {distance:.3g} off the exact flow in 5 "
                "steps"
            )
            found = True
            break
    proof.falsification("A = 0", witness=witness, found=found)
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
