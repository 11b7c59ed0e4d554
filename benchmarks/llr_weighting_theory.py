"""Loss weighting in last-layer retraining on the class-conditional Gaussian model, by Monte Carlo.

The model of Stromberg, Thrampoulidis and Sankar (2025, *Thumb on the Scale*, arXiv 2506.20025):
``y = ±1`` with ``P(y = +1) = π_+`` (the minority), ``x = y μ + z``, ``z ~ N(0, I_d)``,
``||μ|| = snr``; ``n`` retraining samples, ``δ = d / n``. A linear head ``(w, b)`` is fitted by
the weighted logistic loss (minority weight ``ω``, majority 1, a small ridge, damped
Newton steps), and its per-class
test errors are exact for this model:

    err_+ = Φ(-(w·μ + b) / ||w||),      err_- = Φ(-(w·μ - b) / ||w||).

For every ``δ`` in ``--deltas`` and every ``ω`` of a log grid, ``--reps`` repetitions are fitted
in one ``vmap`` (over repetitions and weights); the script reports the mean per-class errors and
the weight that equalises them (log-linear interpolation of the crossing of ``err_+ - err_-``),
beside the importance weight ``π_- / π_+`` that is optimal in the population limit ``δ → 0``.
We could not obtain the paper's closed-form prescription, so only this comparison is made.

    python benchmarks/llr_weighting_theory.py --json theory.json --plot theory.png
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

from feasjax.core import weighted_sum
from feasjax.data import gaussian_classes


def fit_errors(key, omega, *, n, d, pi_plus, snr, steps, ridge):
    """Per-class test errors of the weighted logistic head on one training draw.

    The head minimises ``(1/n) Σ_i ω_i softplus(-y_i (w·x_i + b)) + ridge/2 ||w||²`` by damped
    Newton steps (``steps`` of them, each at most of norm 10): first-order methods converge
    too slowly here for the equalising weight, which is sensitive to the intercept, to settle.
    """
    x, y = gaussian_classes(key, n, d, pi_plus=pi_plus, snr=snr)
    weights = jnp.where(y > 0, omega, 1.0)
    features = jnp.concatenate([x, jnp.ones((n, 1))], axis=1)
    penalty = jnp.full((d + 1,), ridge).at[d].set(1e-8)  # the intercept is not shrunk

    def loss(theta):
        return (weighted_sum(jax.nn.softplus(-y * (features @ theta)), weights)
                + 0.5 * jnp.sum(penalty * theta ** 2))

    def step(theta, _):
        grad, hess = jax.grad(loss)(theta), jax.hessian(loss)(theta)
        delta = jnp.linalg.solve(hess, grad)
        scale = jnp.minimum(1.0, 10.0 / jnp.maximum(jnp.linalg.norm(delta), 1e-12))
        return theta - scale * delta, None

    theta, _ = jax.lax.scan(step, jnp.zeros((d + 1,)), None, length=steps)
    w, b = theta[:d], theta[d]
    norm_w = jnp.maximum(jnp.linalg.norm(w), 1e-12)
    return norm.cdf(-(snr * w[0] + b) / norm_w), norm.cdf(-(snr * w[0] - b) / norm_w)


def equalizing_weight(omegas, gap):
    """Where ``gap(ω) = err_+ - err_-`` crosses zero (log-linear), or nan if it never does."""
    sign = np.sign(gap)
    cross = np.flatnonzero(sign[:-1] * sign[1:] <= 0)
    if not cross.size:
        return float("nan")
    i = cross[0]
    lo, hi = np.log(omegas[i]), np.log(omegas[i + 1])
    t = gap[i] / (gap[i] - gap[i + 1]) if gap[i] != gap[i + 1] else 0.0
    return float(np.exp(lo + t * (hi - lo)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", default="0.02,0.05,0.1,0.2,0.3,0.5,1,2,4")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--reps", type=int, default=32)
    parser.add_argument("--pi-plus", type=float, default=0.2)
    parser.add_argument("--snr", type=float, default=1.5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--ridge", type=float, default=1e-3)
    parser.add_argument("--json")
    parser.add_argument("--plot")
    args = parser.parse_args()
    omegas = np.geomspace(1.0, 256.0, 17)
    keys = jax.random.split(jax.random.key(0), args.reps)
    rows, start = [], time.perf_counter()
    for delta in [float(v) for v in args.deltas.split(",")]:
        d = max(1, round(delta * args.n))
        fit = jax.jit(jax.vmap(jax.vmap(
            lambda k, o: fit_errors(k, o, n=args.n, d=d, pi_plus=args.pi_plus, snr=args.snr,
                                    steps=args.steps, ridge=args.ridge),
            in_axes=(None, 0)), in_axes=(0, None)))
        err_plus, err_minus = (np.asarray(e) for e in fit(keys, jnp.asarray(omegas)))
        mean_plus, mean_minus = err_plus.mean(0), err_minus.mean(0)
        rows.append({"delta": delta, "d": d, "omegas": omegas.tolist(),
                     "minority_error": mean_plus.tolist(), "majority_error": mean_minus.tolist(),
                     "equalizing_weight": equalizing_weight(omegas, mean_plus - mean_minus)})
        print(f"delta={delta:<4} d={d:<4} equalizing weight {rows[-1]['equalizing_weight']:.2f}"
              f"  (errors at w=1: minority {mean_plus[0]:.3f}, majority {mean_minus[0]:.3f})",
              flush=True)
    report = {"n": args.n, "reps": args.reps, "pi_plus": args.pi_plus, "snr": args.snr,
              "steps": args.steps, "ridge": args.ridge,
              "importance_weight": (1 - args.pi_plus) / args.pi_plus, "rows": rows,
              "seconds": time.perf_counter() - start, "device": jax.devices()[0].device_kind,
              "jax": jax.__version__, "python": platform.python_version()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.5))
        for row in rows:
            line, = ax.plot(omegas, row["minority_error"], label=f"δ={row['delta']:g}")
            ax.plot(omegas, row["majority_error"], "--", color=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("minority weight ω")
        ax.set_ylabel("test error (solid: minority, dashed: majority)")
        ax.legend(fontsize=7)
        bx.plot([r["delta"] for r in rows], [r["equalizing_weight"] for r in rows], "o-",
                label="equalizing ω (Monte Carlo)")
        bx.axhline(report["importance_weight"], color="gray", ls=":", label="π_-/π_+")
        bx.set_xscale("log")
        bx.set_yscale("log")
        bx.set_xlabel("δ = d / n")
        bx.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
