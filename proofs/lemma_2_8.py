"""Lemma 2.8: along the gradient flow θ' = −∇L(θ), d/dt ∇L(θ(t)) = −H∇L(θ(t)).

Proof: the chain rule gives d/dt ∇L(θ(t)) = H(θ(t))·θ'(t); substitute θ' = −∇L.
sympy carries it out for a generic loss (an undefined `sympy.Function`) and a generic
curve θ(t) in every dimension 1..4.

Run alone: `python proofs/lemma_2_8.py` (exit code 0 only when proved).
"""

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym

jax.config.update("jax_enable_x64", True)

STATEMENT = 1
DIMENSIONS = (1, 2, 3, 4)


def chain_rule_residual(n: int):
    """d/dt ∇L(θ(t)) + H∇L(θ(t)) for a generic L and a flow line θ(t) in n dimensions."""
    t = sp.Symbol("t", real=True)
    xs = sym.coordinates(n)
    loss = sym.generic_function("L", xs)
    theta = [sp.Function(f"theta{i + 1}", real=True)(t) for i in range(n)]
    at_theta = dict(zip(xs, theta, strict=True))
    grad_t = sym.gradient(loss, xs).subs(at_theta)
    flow = {sp.Derivative(theta[i], t): -grad_t[i] for i in range(n)}
    derivative = sp.diff(grad_t, t).subs(flow)
    return derivative + sym.hessian_gradient(loss, xs).subs(at_theta)


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Lemma 2.8",
        "d/dt ∇L(θ(t)) = −H∇L(θ(t)) along every gradient-flow solution θ' = −∇L(θ).",
        method="symbolic chain rule, generic sympy.Function L and curve θ(t), "
        "every dimension n = 1..4",
        assumptions=[
            "L is C² on an open set containing the flow line.",
            "sympy proves the identity for n = 1..4; the chain-rule computation is "
            "the same in every dimension (not machine-checked for n > 4).",
        ],
    )
    for n in DIMENSIONS:
        proof.vanishes(
            f"n = {n}: d/dt ∇L(θ(t)) + H∇L(θ(t)) = 0 given θ' = −∇L(θ)",
            chain_rule_residual(n),
        )

    # Cross-checks: the symbolic H∇L of a concrete loss against corridors.hvp, and the
    # time derivative of ∇L along a flow solved by corridors.gradient_flow.
    rng = np.random.default_rng(0)
    for n in DIMENSIONS:
        xs = sym.coordinates(n)
        concrete = sym.sample_function(xs, seed=n)
        loss = sym.to_loss(concrete, xs)
        hessian_grad = sym.to_jax(
            sym.instantiate(
                sym.hessian_gradient(sym.generic_function("L", xs), xs),
                sym.generic_function("L", xs),
                concrete,
                xs,
            ),
            xs,
        )
        points = rng.normal(size=(3, n)) * 0.5
        errors = [
            hessian_grad(p) - cr.hvp(loss, jnp.asarray(p), jax.jit(jax.grad(loss))(p))
            for p in points
        ]
        proof.close(
            f"n = {n}: lambdified symbolic H∇L = corridors.hvp(L, θ, ∇L) at 3 random θ",
            np.asarray(errors),
            0.0,
            atol=1e-12,
        )

    n = 3
    xs = sym.coordinates(n)
    loss = sym.to_loss(sym.sample_function(xs, seed=n), xs)
    theta0 = jnp.asarray(rng.normal(size=n) * 0.5)
    delta, t = 1e-4, 0.3
    # Five times, like the other proofs on this loss, so the compiled solve is shared.
    flow = cr.gradient_flow(
        loss, theta0, jnp.array([0.0, t - delta, t, t + delta, 2 * t])
    )
    grad = jax.jit(jax.grad(loss))
    before, now, after = (flow.params[i] for i in (1, 2, 3))
    finite_difference = (grad(after) - grad(before)) / (2 * delta)
    expected = -cr.hvp(loss, now, grad(now))
    proof.close(
        "n = 3: central difference of ∇L along corridors.gradient_flow = −H∇L",
        finite_difference,
        expected,
        rtol=1e-6,
        atol=1e-7,
    )

    # Falsification: drop "θ solves the gradient flow". Along a line with another
    # velocity v, d/dt ∇L = H·v, which differs from −H∇L: search random v for one.
    witness, found = "", False
    directional = jax.jit(lambda p, v: jax.jvp(grad, (p,), (v,))[1])
    for trial in range(20):
        v = rng.normal(size=n)
        p = np.asarray(theta0)
        along_v = directional(jnp.asarray(p), jnp.asarray(v))
        gap = float(np.linalg.norm(along_v + cr.hvp(loss, jnp.asarray(p), grad(p))))
        if gap > 1e-3:
            witness = (
                f"θ(t) = θ0 + t·v with v = {np.round(v, 3).tolist()} (trial {trial}) "
                f"on the sample loss, n = 3: ‖d/dt ∇L + H∇L‖ = {gap:.3g} ≠ 0"
            )
            found = True
            break
    proof.falsification("θ' = −∇L(θ)", witness=witness, found=found)
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
