"""Appendix A.3: SGD's implicit regularizers in a corridor.

With m batch losses L_k, full-batch loss L = (1/m)Σ L_k and batch gradients
g_k = ∇L_k = ∇L + ε_k:

1. (1/m)Σ‖g_k‖² = ‖∇L‖² + (1/m)Σ‖g_k − ∇L‖² (sympy, m = 1..8 batches, coordinatewise,
   hence in every dimension; and as vectors for n = 1..4, m = 2, 3);
2. ∇(‖∇L‖²) = 2H∇L (generic loss, n = 1..4), so the full-batch regularizer
   (h/4)‖∇L‖² has gradient (h/2)H∇L = 0 in a corridor;
3. the per-batch term (h/4m)Σ‖∇L_k − ∇L‖² need not be stationary there: for
   L_± = ⟨w, θ⟩ ± ½θᵀAθ the mean ⟨w, θ⟩ is a corridor everywhere, yet the per-batch
   term is (h/4)‖Aθ‖² with gradient (h/2)A²θ (sympy, generic symmetric A, n = 2).

Run alone: `python proofs/sgd_a3.py` (exit code 0 only when proved).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym

jax.config.update("jax_enable_x64", True)

STATEMENT = 8
DIMENSIONS = (1, 2, 3, 4)
BATCHES = tuple(range(1, 9))


def split_identity(m: int, n: int = 1) -> sp.Matrix:
    """(1/m)Σ‖g_k‖² − ‖ḡ‖² − (1/m)Σ‖g_k − ḡ‖² for m symbolic vectors in n dimensions."""
    grads = [sp.Matrix(sym.coordinates(n, f"g{k + 1}_")) for k in range(m)]
    mean = sum(grads, sp.zeros(n, 1)) / m
    norm2 = lambda v: (v.T * v)[0]  # noqa: E731
    return sp.Matrix(
        [
            sum(norm2(g) for g in grads) / m
            - norm2(mean)
            - sum(norm2(g - mean) for g in grads) / m
        ]
    )


def batch_loss(theta, w, a):
    """L_k(θ) = ⟨w_k, θ⟩ + ½θᵀA_kθ (one batch)."""
    return w @ theta + 0.5 * theta @ a @ theta


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "SGD regularizers (A.3)",
        "(1/m)Σ‖∇L_k‖² = ‖∇L‖² + (1/m)Σ‖∇L_k − ∇L‖²; the full-batch regularizer's "
        "gradient is (h/2)H∇L, zero in a corridor of L; the per-batch term "
        "(h/4m)Σ‖∇L_k − ∇L‖² need not be stationary there.",
        method="symbolic: the split for m = 1..8 batches (coordinatewise, any "
        "dimension); ∇‖∇L‖² = 2H∇L for a generic sympy.Function L, n = 1..4; an "
        "explicit family with a generic symmetric A for the per-batch term",
        assumptions=[
            "Equal-size batches, L = (1/m)Σ L_k; each L_k is C³.",
            "The split is proved for m ≤ 8 batches (the same algebra for any m).",
        ],
    )
    for m in BATCHES:
        proof.vanishes(
            f"m = {m}: (1/m)Σa_k² = ā² + (1/m)Σ(a_k − ā)² (each coordinate)",
            split_identity(m),
        )
    for n in DIMENSIONS:
        for m in (2, 3):
            proof.vanishes(
                f"n = {n}, m = {m}: the split for vectors g_k",
                split_identity(m, n),
            )
    for n in DIMENSIONS:
        xs = sym.coordinates(n)
        loss = sym.generic_function("L", xs)
        grad = sym.gradient(loss, xs)
        proof.equal(
            f"n = {n}: ∇((h/4)‖∇L‖²) = (h/2)H∇L",
            sym.gradient((grad.T * grad)[0] / 4, xs),
            sym.hessian_gradient(loss, xs) / 2,
        )

    # The family L_± = ⟨w, θ⟩ ± ½θᵀAθ (n = 2), generic symmetric A.
    xs = sym.coordinates(2)
    theta = sp.Matrix(xs)
    a11, a12, a22, w1, w2 = sp.symbols("a11 a12 a22 w1 w2", real=True)
    A = sp.Matrix([[a11, a12], [a12, a22]])
    w = sp.Matrix([w1, w2])
    batches = [(w.T * theta)[0] + s * (theta.T * A * theta)[0] / 2 for s in (1, -1)]
    mean = sum(batches) / 2
    batch_grads = [sym.gradient(b, xs) for b in batches]
    mean_grad = sym.gradient(mean, xs)
    per_batch = sum(((g - mean_grad).T * (g - mean_grad))[0] for g in batch_grads) / 2
    proof.vanishes(
        "L_± = ⟨w,θ⟩ ± ½θᵀAθ: the mean loss has H∇L = 0 everywhere",
        sym.hessian_gradient(mean, xs),
    )
    proof.equal(
        "L_±: per-batch term (1/m)Σ‖∇L_k − ∇L‖² = ‖Aθ‖², its gradient 2A²θ",
        sp.Matrix([per_batch, *sym.gradient(per_batch, xs)]),
        sp.Matrix([((A * theta).T * (A * theta))[0], *(2 * A * A * theta)]),
    )
    rng = np.random.default_rng(8)
    witness_point = None
    for trial in range(20):
        values = {s: sp.Rational(int(rng.integers(-3, 4)), 2) for s in (a11, a12, a22)}
        point = {x: sp.Rational(int(rng.integers(-3, 4)), 2) for x in xs}
        value = (2 * A * A * theta).subs({**values, **point})
        if any(v != 0 for v in value):
            witness_point = (trial, values, point, value)
            break
    proof.fact(
        "L_±: the per-batch gradient 2A²θ is non-zero at a point found by search"
        + (
            f" (A = {A.subs(witness_point[1]).tolist()}, θ = "
            f"{[witness_point[2][x] for x in xs]}: 2A²θ = {list(witness_point[3])})"
            if witness_point
            else ""
        ),
        witness_point is not None,
        witness_point[3] if witness_point else sp.S.Zero,
    )

    # Cross-checks with corridors.sgd_regularizers on the family (n = 2, m = 2).
    per_batch_grad = sym.to_jax(
        sym.gradient(per_batch, xs) / 4 * sp.Symbol("h"),
        xs,
        (a11, a12, a22, sp.Symbol("h")),
    )
    lr = 0.3
    for trial in range(2):
        a_value = rng.normal(size=(2, 2))
        a_value = jnp.asarray(a_value + a_value.T)
        w_value = jnp.asarray(rng.normal(size=2))
        theta_value = jnp.asarray(rng.normal(size=2))
        batches_value = (
            np.stack([w_value, w_value]),
            np.stack([a_value, -a_value]),
        )
        regularizers = cr.sgd_regularizers(batch_loss, theta_value, lr, batches_value)
        expected_grad = per_batch_grad(
            theta_value, a_value[0, 0], a_value[0, 1], a_value[1, 1], lr
        )
        proof.close(
            f"family, trial {trial}: sgd_regularizers: full_batch_grad = 0, "
            "full_batch = (h/4)‖w‖², per_batch = (h/4)‖Aθ‖², per_batch_grad = "
            "lambdified (h/2)A²θ",
            np.concatenate(
                [
                    regularizers.full_batch_grad,
                    np.stack([regularizers.full_batch, regularizers.per_batch]),
                    regularizers.per_batch_grad,
                ]
            ),
            np.concatenate(
                [
                    np.zeros(2),
                    np.stack(
                        [
                            lr / 4 * w_value @ w_value,
                            lr / 4 * np.sum((a_value @ theta_value) ** 2),
                        ]
                    ),
                    expected_grad,
                ]
            ),
            atol=1e-12,
        )
    # The split with JAX batch gradients of random batch losses (m = 5, n = 3).
    ws = jnp.asarray(rng.normal(size=(5, 3)))
    As = jnp.asarray(rng.normal(size=(5, 3, 3)))
    As = As + np.swapaxes(As, 1, 2)
    theta_value = jnp.asarray(rng.normal(size=3))
    grads = eqx.filter_jit(jax.vmap(jax.grad(batch_loss), (None, 0, 0)))(
        theta_value, ws, As
    )
    mean_grad_value = grads.mean(0)
    proof.close(
        "m = 5, n = 3, random quadratic batches: mean ‖g_k‖² = ‖ḡ‖² + mean ‖g_k − ḡ‖² "
        "(JAX gradients)",
        np.mean(np.sum(grads**2, 1)),
        np.sum(mean_grad_value**2) + np.mean(np.sum((grads - mean_grad_value) ** 2, 1)),
        rtol=1e-13,
    )

    # Falsification: drop the corridor. Search batch families whose mean loss is a
    # quadratic with B ≠ 0: the full-batch regularizer's gradient (h/2)B²θ ≠ 0.
    witness, found = "", False
    for scale in (0.0, 0.5, 1.0):
        b_value = scale * np.eye(2)
        batches_value = (
            np.stack([w_value[:2], w_value[:2]]),
            np.stack([b_value + a_value, b_value - a_value]),
        )
        regularizers = cr.sgd_regularizers(
            batch_loss, theta_value[:2], lr, batches_value
        )
        size = float(np.linalg.norm(regularizers.full_batch_grad))
        if size > 1e-6:
            witness = (
                f"mean loss ⟨w,θ⟩ + {scale}·‖θ‖²/2 (not a corridor): "
                f"‖full_batch_grad‖ = {size:.3g} (corridors.sgd_regularizers)"
            )
            found = True
            break
    proof.falsification("H∇L = 0 for the full-batch loss", witness=witness, found=found)
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
