"""Grimberg et al.'s mean-estimation check of optimal mixing, over a grid of (variance, bias).

For every setting, :func:`feasjax.federated.mean_estimation` simulates K clients x R repetitions
in one program and compares, per client,

- the estimate ``estimate_mixing_alpha(own samples, other clients' samples, debiased=...)``
  averaged over repetitions, with the Monte Carlo MSE-optimal ``alpha`` (the minimiser of the
  empirical MSE of the mix): acceptance, mean absolute gap <= 0.05 across the grid;
- the predicted "mixing helps" range ``0 < alpha < 2 alpha*`` (``mixing_helps``) with the grid
  points where the Monte Carlo MSE of the mix is below the local model's, everywhere and away
  from the boundary (``|alpha - 2 alpha*| > --margin``).

    PYTHONPATH=. python benchmarks/federated_theory.py --json federated_theory.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.federated import mean_estimation


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repetitions", type=int, default=200)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--dim", type=int, default=10)
    p.add_argument("--variances", default="0.5,1,2,4")
    p.add_argument("--biases", default="0,0.5,1,2,4")
    p.add_argument("--margin", type=float, default=0.1)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()
    grid = jnp.linspace(0.0, 1.0, 41)
    rows = []
    for debiased in (True, False):
        for v, b in itertools.product(map(float, args.variances.split(",")),
                                      map(float, args.biases.split(","))):
            res = mean_estimation(jax.random.key(0), num_clients=args.clients,
                                  num_samples=args.samples, dim=args.dim, variance=v, bias=b,
                                  repetitions=args.repetitions, alphas=grid, debiased=debiased)
            away = np.abs(np.asarray(grid)[None] - 2 * np.asarray(res.alpha_star)[:, None]) \
                > args.margin
            agree = np.asarray(res.helps_predicted == res.helps_observed)
            rows.append({
                "debiased": debiased, "variance": v, "bias": b,
                "alpha_star": float(res.alpha_star.mean()),
                "alpha_mse": float(res.alpha_mse.mean()),
                "alpha_estimated": float(res.alpha_estimated.mean()),
                "gap_estimated_vs_mse": float(jnp.mean(jnp.abs(res.alpha_estimated.mean(0)
                                                               - res.alpha_mse))),
                "gap_star_vs_mse": float(jnp.mean(jnp.abs(res.alpha_star - res.alpha_mse))),
                "helps_agreement": float(agree.mean()),
                "helps_agreement_away_from_boundary": float(agree[away].mean()),
            })
    print(f"{'debiased':>8} {'var':>5} {'bias':>5} {'a*':>6} {'a_mse':>6} {'a_est':>6} "
          f"{'|est-mse|':>9} {'helps ok':>8} {'away ok':>8}")
    for r in rows:
        print(f"{r['debiased']!s:>8} {r['variance']:>5} {r['bias']:>5} {r['alpha_star']:>6.3f} "
              f"{r['alpha_mse']:>6.3f} {r['alpha_estimated']:>6.3f} "
              f"{r['gap_estimated_vs_mse']:>9.3f} {r['helps_agreement']:>8.3f} "
              f"{r['helps_agreement_away_from_boundary']:>8.3f}")
    summary = {}
    for debiased in (True, False):
        mine = [r for r in rows if r["debiased"] == debiased]
        summary["debiased" if debiased else "plug_in"] = {
            "mean_gap_estimated_vs_mse": float(np.mean([r["gap_estimated_vs_mse"]
                                                        for r in mine])),
            "helps_agreement": float(np.mean([r["helps_agreement"] for r in mine])),
            "helps_agreement_away_from_boundary": float(np.min(
                [r["helps_agreement_away_from_boundary"] for r in mine])),
        }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": rows, "summary": summary, "args": vars(args),
                       "device": str(jax.devices()[0]), "jax": jax.__version__,
                       "python": platform.python_version()}, f, indent=2)


if __name__ == "__main__":
    main()
