"""Examples of corridors, and a ruled surface that is not one (Section 2).

sympy, every dimension 1..4 (translated so that the centre c is 0):

- linear losses ⟨w, θ⟩ + b: H = 0;
- radial losses a·√(xᵀQx) with Q symmetric: H∇L = (a²/q²)·(q·(Q² − Q)x − xᵀ(Q² − Q)x·Qx),
  q = xᵀQx, an identity for a generic symmetric Q (derivatives via s = √q,
  s' = q'/(2s), reduced modulo s² = q). Hence H∇L = 0 whenever Q² = Q: the cone
  a‖x‖ (Q = I), the concave cone b − a‖x‖ (a → −a), and the cylinder cone
  a‖Px‖ with P an orthogonal projection (Q = PᵀP = P);
- a glued corridor b + max(a‖x‖, ⟨w_j, x⟩): each open piece is a cone or a plane;
- the saddle a·xy is ruled (L is affine along both coordinate lines through every
  point) but H∇L = a²(x, y) ≠ 0: corridor ⇒ ruled (Proposition 2.10: the graph
  contains (θ0 − t∇L(θ0), L(θ0) − t‖∇L(θ0)‖²)), not conversely.

Run alone: `python proofs/corridor_examples.py` (exit code 0 only when proved).
"""

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym
from corridors.landscapes import (
    ConcaveCone,
    Cone,
    CylinderCone,
    GluedCorridor,
    Linear,
    RuledSaddle,
)

jax.config.update("jax_enable_x64", True)

STATEMENT = 10
DIMENSIONS = (1, 2, 3, 4)
S = sp.Symbol("s", positive=True)  # s = √q, the (semi-)norm
A = sp.Symbol("a", real=True)


def symmetric(n: int, name: str) -> sp.Matrix:
    return sp.Matrix(
        n, n, lambda i, j: sp.Symbol(f"{name}{min(i, j) + 1}{max(i, j) + 1}", real=True)
    )


def radial(expr: sp.Expr, xs, Q: sp.Matrix):
    """(∇L, H∇L, q) for L = expr(s, x) with s = √(xᵀQx), differentiating s by
    s' = q'/(2s)."""
    x = sp.Matrix(xs)
    q = sp.expand((x.T * Q * x)[0])

    def d(e, i):
        return sp.diff(e, xs[i]) + sp.diff(e, S) * sp.diff(q, xs[i]) / (2 * S)

    n = len(xs)
    grad = sp.Matrix([d(expr, i) for i in range(n)])
    hess = sp.Matrix(n, n, lambda i, j: d(grad[i], j))
    return grad, hess * grad, q


def reduced(expr_matrix: sp.Matrix, q: sp.Expr) -> sp.Matrix:
    """Each entry times s⁶ (clearing the powers of 1/s that differentiation makes),
    reduced modulo s² − q: zero iff the entry vanishes for s = √q."""
    out = []
    for entry in expr_matrix:
        numerator = sp.expand(entry * S**6)
        if any(
            term.as_powers_dict().get(S, 0) < 0 for term in sp.Add.make_args(numerator)
        ):
            raise ValueError("reduced: a power of 1/s beyond s⁻⁶ is left")
        out.append(sp.expand(sp.rem(numerator, S**2 - q, S)))
    return sp.Matrix(out)


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Corridor examples",
        "Linear losses, cones a‖θ − c‖ + b, concave cones b − a‖θ − c‖, cylinder cones "
        "a‖P(θ − c)‖ + b (P an orthogonal projection) and glued corridors have H∇L = 0 "
        "wherever they are smooth; the saddle a·xy is ruled but not a corridor.",
        method="symbolic, every dimension n = 1..4, radial losses reduced modulo "
        "s² = ‖·‖²",
        assumptions=[
            "Away from the apex (s > 0) and, for glued corridors, off the seams, where "
            "the losses are smooth; c = 0 after translation.",
            "The cylinder identity holds for every symmetric Q; P = Pᵀ = P² gives "
            "Q = PᵀP = P and Q² − Q = 0.",
            "Checked for n = 1..4 (the saddle lives in n = 2).",
        ],
    )
    b = sp.Symbol("b", real=True)
    for n in DIMENSIONS:
        xs = sym.coordinates(n)
        x = sp.Matrix(xs)
        w = sp.Matrix(sym.coordinates(n, "w"))
        linear = (w.T * x)[0] + b
        proof.vanishes(
            f"n = {n}: linear ⟨w, θ⟩ + b: H∇L = 0", sym.hessian_gradient(linear, xs)
        )

        Q = symmetric(n, "q")
        _, hess_grad, q = radial(A * S, xs, Q)
        E = Q * Q - Q
        cofactor = A**2 / S**4 * (S**2 * E * x - (x.T * E * x)[0] * Q * x)
        proof.vanishes(
            f"n = {n}: a√(xᵀQx), generic symmetric Q: H∇L = (a²/q²)(q(Q²−Q)x − "
            "xᵀ(Q²−Q)x·Qx) (mod s² = q)",
            reduced(hess_grad - cofactor, q),
        )
        identity = sp.eye(n)
        for name, expr in (
            ("cone a‖x‖ + b", A * S + b),
            ("concave cone b − a‖x‖", b - A * S),
        ):
            _, hess_grad, q = radial(expr, xs, identity)
            proof.vanishes(
                f"n = {n}: {name}: H∇L = 0 (mod s² = ‖x‖²)", reduced(hess_grad, q)
            )
        u = sp.Matrix(sym.coordinates(n, "u"))
        outer, norm2 = u * u.T, (u.T * u)[0]  # P = outer/norm2, Q = PᵀP = outer²/norm2²
        proof.vanishes(
            f"n = {n}: P = uuᵀ/‖u‖² (generic u) is an orthogonal projection (Pᵀ = P, "
            "P² = P) and Q = PᵀP has Q² = Q, so the cylinder a‖Px‖ has H∇L = 0 "
            "(numerators after clearing ‖u‖²)",
            sp.Matrix.vstack(
                outer - outer.T,
                outer * outer - norm2 * outer,
                outer**4 - norm2**2 * outer**2,
            ),
            methods=("expand",),
        )
        glued_pieces = (A * S + b, (w.T * x)[0] + b)
        piece_residuals = [
            reduced(*radial(piece, xs, identity)[1:]) for piece in glued_pieces
        ]
        proof.vanishes(
            f"n = {n}: glued b + max(a‖x‖, ⟨w, x⟩): each open piece (cone, plane) has "
            "H∇L = 0",
            sp.Matrix.vstack(*piece_residuals),
        )

    xs = sym.coordinates(2)
    x, y = xs
    saddle = A * x * y
    t = sp.Symbol("t", real=True)
    p1, p2 = sp.symbols("p1 p2", real=True)
    along = [saddle.subs({x: p1 + t, y: p2}), saddle.subs({x: p1, y: p2 + t})]
    proof.vanishes(
        "saddle a·xy is ruled: L is affine along both coordinate lines through every "
        "point (d²/dt² = 0)",
        sp.Matrix([sp.diff(e, t, 2) for e in along]),
    )
    saddle_hg = sym.hessian_gradient(saddle, xs)
    proof.equal("saddle: H∇L = a²(x, y)", saddle_hg, A**2 * sp.Matrix(xs))

    # Cross-checks against corridors.landscapes (n = 3; the saddle in n = 2): the
    # lambdified symbolic gradients equal jax.grad of the landscape and
    # corridor_score is 0 (corridors); the saddle's lambdified H∇L = corridors.hvp.
    rng = np.random.default_rng(10)
    n = 3
    xs3 = sym.coordinates(n)
    x3 = sp.Matrix(xs3)
    slope, offset = 1.3, 0.4
    direction = rng.normal(size=n)
    projection = np.outer(direction, direction) / (direction @ direction)
    center = rng.normal(size=n)
    cone_grad = radial(A * S, xs3, sp.eye(n))[0]
    cylinder_grad = radial(A * S, xs3, sp.Matrix(projection))[0]
    norm = sp.sqrt((x3.T * x3)[0])
    cylinder_norm = sp.sqrt((x3.T * sp.Matrix(projection) * x3)[0])
    landscapes = {
        "linear": (
            Linear(jnp.asarray(direction), offset),
            sp.Matrix(direction),
        ),
        "cone": (Cone(jnp.asarray(center), slope, offset), cone_grad.subs(S, norm)),
        "concave cone": (
            ConcaveCone(jnp.asarray(center), slope, offset),
            -cone_grad.subs(S, norm),
        ),
        "cylinder cone": (
            CylinderCone(
                jnp.asarray(center), slope, jnp.asarray(projection), offset=offset
            ),
            cylinder_grad.subs(S, cylinder_norm),
        ),
    }
    for name, (landscape, grad_expr) in landscapes.items():
        shift = np.zeros(n) if name == "linear" else center
        grad_fn = sym.to_jax(grad_expr.subs(A, sp.Float(slope)), xs3)
        points = [jnp.asarray(rng.normal(size=n) * 2 + shift) for _ in range(3)]
        proof.close(
            f"{name}, n = 3: lambdified symbolic ∇L = jax.grad(landscape) and "
            "corridor_score = 0 at 3 random points",
            np.concatenate(
                [
                    np.concatenate(
                        [grad_fn(p - shift), cr.corridor_score(landscape.loss, p)[None]]
                    )
                    for p in points
                ]
            ),
            np.concatenate(
                [
                    np.concatenate([jax.grad(landscape.loss)(p), np.zeros(1)])
                    for p in points
                ]
            ),
            atol=1e-12,
        )
    glued = GluedCorridor(np.zeros(2), 1.0, jnp.asarray([[2.0, 0.0], [-2.0, 0.5]]))
    glued_points = jnp.asarray([[3.0, 0.1], [-3.0, 0.4], [0.1, 2.0], [0.2, -1.5]])
    inside = [bool(glued.in_corridor(p)) for p in glued_points]
    proof.close(
        "glued corridor, n = 2: corridor_score = 0 at points in two planes and the cone "
        "piece (all in_corridor)",
        np.stack([cr.corridor_score(glued.loss, p) for p in glued_points])
        + jnp.asarray([0.0 if ok else 1.0 for ok in inside]),
        np.zeros(4),
        atol=1e-12,
    )
    saddle_landscape = RuledSaddle(0.7)
    hg_fn = sym.to_jax(saddle_hg.subs(A, sp.Float(0.7)), xs)
    saddle_points = [jnp.asarray(rng.normal(size=2)) for _ in range(3)]
    proof.close(
        "saddle: lambdified a²(x, y) = corridors.hvp(RuledSaddle, θ, ∇L) at 3 random θ",
        np.stack([hg_fn(p) for p in saddle_points]),
        np.stack(
            [
                cr.hvp(saddle_landscape.loss, p, jax.grad(saddle_landscape.loss)(p))
                for p in saddle_points
            ]
        ),
        atol=1e-12,
    )

    # Falsifications. (i) Ruled does not imply corridor: search points of the saddle
    # for H∇L ≠ 0. (ii) Drop "P is a projection": search Q = diag(1, λ) for a radial
    # loss a√(xᵀQx) with H∇L ≠ 0 (λ = 1 is the cone).
    witness, found = "", False
    for trial in range(10):
        point = rng.normal(size=2)
        value = saddle_hg.subs(
            {
                A: 1,
                x: sp.nsimplify(round(point[0], 2)),
                y: sp.nsimplify(round(point[1], 2)),
            }
        )
        score = float(cr.corridor_score(RuledSaddle(1.0).loss, jnp.asarray(point)))
        if any(v != 0 for v in value) and score > 1e-6:
            witness = (
                f"saddle xy at θ ≈ {np.round(point, 2).tolist()} (trial {trial}): "
                f"H∇L = {list(value)} ≠ 0, corridor_score = {score:.3g}"
            )
            found = True
            break
    proof.falsification(
        "H∇L = 0 (a ruled graph is not enough)", witness=witness, found=found
    )
    witness, found = "", False
    xs2 = sym.coordinates(2)
    for lam in (1, 2, 3):
        Q = sp.diag(1, lam)
        _, hess_grad, q = radial(S, xs2, Q)
        residual = reduced(hess_grad * S**4, q)
        if any(r != 0 for r in residual):
            witness = (
                f"Q = diag(1, {lam}) (Q² ≠ Q): √(xᵀQx) has H∇L·q² = "
                f"{[sp.factor(r) for r in residual]} ≠ 0"
            )
            found = True
            break
    proof.falsification(
        "P is an orthogonal projection (Q² = Q)", witness=witness, found=found
    )
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
