"""Theorem 3.1: gradient descent lies on the gradient flow for every lr ⇔ corridor.

One GD step θ1 = θ0 − h∇L(θ0) against the flow φ at time h (sympy, generic loss,
every dimension 1..4, Lie series of the flow):

    φ(h) − θ1 = (h²/2)·H∇L − (h³/6)·(D³L[∇L, ∇L] + H²∇L) + O(h⁴).

(⇒) If θ_k = φ(kh) for every h, then already φ(h) − θ1 ≡ 0 for small h, so its h²
coefficient H∇L/2 vanishes at θ0, and θ0 is arbitrary. (⇐) In a corridor the flow line
is θ0 − t∇L(θ0) with ∇L constant on it (Theorem 2.11); by induction θ_k = θ0 − kh∇L(θ0)
= φ(kh), checked for symbolic k.

Run alone: `python proofs/theorem_3_1.py` (exit code 0 only when proved).
"""

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym
from corridors.landscapes import Cone, Quadratic

jax.config.update("jax_enable_x64", True)

STATEMENT = 4
DIMENSIONS = (1, 2, 3, 4)


def expansion(n: int):
    """(φ(h) − θ1, its claimed expansion to h³, the symbols) for a generic L."""
    h = sp.Symbol("h", positive=True)
    xs = sym.coordinates(n)
    loss = sym.generic_function("L", xs)
    grad = sym.gradient(loss, xs)
    hess_grad = sym.hessian(loss, xs) * grad
    flow = sym.flow_series(-grad, xs, h, 3)
    drift = flow - sym.gd_step(loss, xs, h)
    claimed = h**2 / 2 * hess_grad - h**3 / 6 * (
        sym.third_derivative(loss, xs, grad, grad) + sym.hessian(loss, xs) * hess_grad
    )
    return drift, claimed, h, xs, loss


def measured_order(hs, errors) -> float:
    return cr.drift_order(hs, errors).order


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Theorem 3.1",
        "GD iterates lie on the gradient flow, θ_k = φ(kh) for all k and every small "
        "lr h, ⇔ H∇L = 0 (corridor); in general φ(h) − θ1 = (h²/2)H∇L + O(h³).",
        method="symbolic Lie series of the flow to O(h³), generic sympy.Function L, "
        "every dimension n = 1..4; induction for symbolic k",
        assumptions=[
            "L is smooth (C⁴ for the h³ term) near θ0; the flow is analytic in h "
            "there, so φ(h) − θ1 ≡ 0 forces every Taylor coefficient to vanish.",
            "(⇐) uses Theorem 2.11 (proofs/theorem_2_11.py): ∇L = ∇L(θ0) along the "
            "flow line while it stays in the corridor.",
            "The expansion is checked for n = 1..4; the computation is the same in "
            "every dimension.",
        ],
    )
    for n in DIMENSIONS:
        drift, claimed, h, _, _ = expansion(n)
        proof.equal(
            f"n = {n}: φ(h) − θ1 = (h²/2)H∇L − (h³/6)(D³L[∇L,∇L] + H²∇L) + O(h⁴)",
            drift,
            claimed,
        )
        proof.vanishes(
            f"n = {n}: coefficient of h¹ in φ(h) − θ1 is 0 (GD is consistent)",
            sym.coefficient(drift, h, 1),
        )

    k = sp.Symbol("k", integer=True, nonnegative=True)
    lr, g0, p0 = sp.symbols("h g0 theta0", real=True)
    iterate = (
        p0 - k * lr * g0
    )  # induction hypothesis θ_k = θ0 − k·h·g0 (per coordinate)
    step = iterate - lr * g0  # ∇L(θ_k) = g0 on the corridor line (Theorem 2.11)
    proof.equal(
        "corridor: θ_k = θ0 − kh∇L(θ0) ⇒ θ_{k+1} = θ0 − (k+1)h∇L(θ0) = φ((k+1)h), "
        "symbolic k (each coordinate)",
        step,
        iterate.subs(k, k + 1),
    )

    # Cross-checks on a concrete loss (n = 3): corridors.gd against
    # corridors.gradient_flow for several h; the expansion's remainder is O(h⁴).
    drift, claimed, h, xs, generic = expansion(3)
    concrete = sym.sample_function(xs, seed=3)
    loss = sym.to_loss(concrete, xs)
    predicted = sym.to_jax(sym.instantiate(claimed, generic, concrete, xs), xs, (h,))
    theta0 = jnp.asarray([0.3, -0.4, 0.2])
    hs = np.array([0.02, 0.01, 0.005, 0.0025])
    flow = cr.gradient_flow(
        loss, theta0, jnp.asarray(np.concatenate([[0.0], hs[::-1]]))
    )
    at_h = flow.params[1:][::-1]
    steps = np.stack([cr.gd(loss, theta0, float(lr), 1)[1] for lr in hs])
    gaps = np.linalg.norm(np.asarray(at_h - steps), axis=1)
    remainders = np.linalg.norm(
        np.asarray(at_h - steps - np.stack([predicted(theta0, lr) for lr in hs])),
        axis=1,
    )
    proof.check(
        "n = 3: ‖φ(h) − θ1‖ from corridors.gradient_flow and corridors.gd has order "
        "2 in h (|slope − 2|)",
        abs(measured_order(hs, gaps) - 2.0),
        0.1,
    )
    proof.check(
        "n = 3: subtracting the lambdified h² and h³ terms leaves O(h⁴) (|slope − 4|)",
        abs(measured_order(hs, remainders) - 4.0),
        0.3,
    )
    hessian_grad = sym.to_jax(
        sym.instantiate(sym.hessian_gradient(generic, xs), generic, concrete, xs),
        xs,
    )
    proof.close(
        "n = 3: corridors.predicted_step_drift = (h²/2)‖H∇L‖ (lambdified), h = 0.05",
        cr.predicted_step_drift(loss, theta0, 0.05),
        0.5 * 0.05**2 * np.linalg.norm(hessian_grad(theta0)),
        rtol=1e-12,
    )

    # (⇐) numerically: on a cone, corridors.gd is on the exact flow for many lrs.
    rng = np.random.default_rng(2)
    cone = Cone(jnp.asarray(rng.normal(size=3)), 0.9)
    start = cone.center + jnp.asarray([3.0, 1.0, -2.0])
    worst = 0.0
    for lr in (0.01, 0.1, 0.37, 1.0):
        n_steps = 3
        iterates = cr.gd(cone.loss, start, lr, n_steps)
        exact = cone.exact_flow(start, lr * np.arange(n_steps + 1.0))
        worst = max(worst, float(np.max(np.abs(iterates - exact))))
    proof.check(
        "cone (corridor), n = 3: corridors.gd = exact flow at t = kh for h ∈ "
        "{0.01, 0.1, 0.37, 1}, k ≤ 3",
        worst,
        1e-12,
    )

    # Falsification: drop the corridor. Search quadratics s·‖θ‖²/2 + ⟨w, θ⟩ and lrs
    # for GD iterates off the exact flow.
    w = jnp.asarray([1.0, -0.5])
    start = jnp.asarray([0.7, 0.2])
    witness, found = "", False
    for s in (0.0, 0.5, 1.0):
        quadratic = Quadratic(s * np.eye(2), w)
        for lr in (0.05, 0.2):
            iterates = cr.gd(quadratic.loss, start, lr, 4)
            exact = quadratic.exact_flow(start, lr * np.arange(5.0))
            distance = float(np.max(np.linalg.norm(iterates - exact, axis=1)))
            if not found and distance > 1e-6:
                witness = (
                    f"L = {s}·‖θ‖²/2 + ⟨(1, −0.5), θ⟩, h = {lr}: corridors.gd is "
                    f"{distance:.3g} off the exact flow within 4 steps"
                )
                found = True
    proof.falsification("H∇L = 0", witness=witness, found=found)
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
