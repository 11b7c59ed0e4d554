"""Coverage study of multiplier-bootstrap confidence sets for Polyak–Ruppert averaged SGD (issue 5).

Linear regression (``y = xᵀθ* + N(0, 1)``) and logistic regression (``y ~ Bernoulli(σ(xᵀθ*))``),
``x ~ N(0, I_d)``, with a known ``θ*``; each repetition streams ``n`` fresh samples (batch size
``--batch``; 1 is the paper's setting) through :func:`feasjax.uncertainty.multiplier_bootstrap` with
``B`` replicas. All repetitions run in one program (``vmap`` over repetitions of the driver's
``run``, the stream generated in chunks inside ``jit``). Reports the empirical coverage of
percentile, basic and normal per-coordinate intervals (averaged over coordinates) at 90% and 95%
and of the 95% ball, plus the ratio of mean bootstrap sd to the Monte-Carlo sd of ``θ̄``.

    python benchmarks/coverage.py --json coverage.json
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.uncertainty.bootstrap import bootstrap_estimates, multiplier_bootstrap
from feasjax.uncertainty.confidence import confidence_ball, coordinate_intervals

LOSSES = {
    "linear": lambda theta, z: 0.5 * (z[:-1] @ theta - z[-1]) ** 2,
    "logistic": lambda theta, z: jax.nn.softplus(z[:-1] @ theta) - z[-1] * (z[:-1] @ theta),
}


def true_theta(d: int) -> jax.Array:
    """A fixed ``θ*`` with ``||θ*|| ≈ 1`` (so logits stay moderate)."""
    return jnp.linspace(-1.0, 1.0, d) * jnp.sqrt(3.0 / d)


def sample(model: str, key: jax.Array, theta: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Samples ``z = (x, y)`` of shape ``(*shape, d + 1)``."""
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (*shape, theta.shape[0]))
    logit = x @ theta
    if model == "linear":
        y = logit + jax.random.normal(ky, shape)
    else:
        y = jax.random.bernoulli(ky, jax.nn.sigmoid(logit)).astype(x.dtype)
    return jnp.concatenate([x, y[..., None]], axis=-1)


def study(model, d, *, n, replicas, reps, batch, eta0, gamma, burn_in, chunk, seed=0):
    theta = true_theta(d)
    boot = multiplier_bootstrap(
        LOSSES[model], replicas, learning_rate=eta0, gamma=gamma, burn_in=burn_in // batch
    )
    steps = n // batch
    if steps % chunk:
        raise ValueError(f"chunk must divide n // batch = {steps}, got {chunk=}")
    rep_keys = jax.random.split(jax.random.key(seed), reps)
    init = jax.jit(jax.vmap(lambda k: boot.init(jnp.zeros(d), jax.random.fold_in(k, 0))))

    @jax.jit
    def advance(states, c):
        def one(state, key):
            stream = sample(model, jax.random.fold_in(jax.random.fold_in(key, 1), c), theta, (chunk, batch))
            return boot.run(state, stream)

        return jax.vmap(one)(states, rep_keys)

    start = time.perf_counter()
    states = init(rep_keys)
    for c in range(steps // chunk):
        states = advance(states, c)
    center, boots = jax.vmap(bootstrap_estimates)(states)
    center.block_until_ready()
    seconds = time.perf_counter() - start
    row = {"model": model, "d": d, "seconds": seconds}
    for level in (0.90, 0.95):
        for method in ("percentile", "basic", "normal"):
            ci = jax.vmap(lambda c, b: coordinate_intervals(c, b, level=level, method=method))(center, boots)
            row[f"{method}_{round(level * 100)}"] = float(jnp.mean(ci.contains(theta[None, :])))
    ball = jax.vmap(lambda c, b: confidence_ball(c, b, level=0.95))(center, boots)
    row["ball_95"] = float(jnp.mean(jax.vmap(lambda b: b.contains(theta))(ball)))
    mc_sd = jnp.std(center, axis=0, ddof=1)
    row["sd_ratio"] = float(jnp.mean(jnp.mean(jnp.std(boots, axis=1, ddof=1), axis=0) / mc_sd))
    boot_sq = jnp.mean(jnp.sum((boots - center[:, None, :]) ** 2, axis=-1))
    row["norm_ratio"] = float(jnp.sqrt(boot_sq / jnp.mean(jnp.sum((center - theta[None, :]) ** 2, axis=-1))))
    row["rmse"] = float(jnp.sqrt(jnp.mean((center - theta[None, :]) ** 2)))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["linear", "logistic"], choices=list(LOSSES))
    p.add_argument("--dims", nargs="+", type=int, default=[5, 20])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--replicas", type=int, default=200)
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--eta0", type=float, nargs="+", default=None, help="one per model in --models order (default 0.3 each)")
    p.add_argument("--gamma", type=float, default=0.55)
    p.add_argument("--burn-in", type=int, default=2000, help="in samples")
    p.add_argument("--chunk", type=int, default=1000, help="steps per compiled call")
    p.add_argument("--json", type=str, default=None)
    args = p.parse_args()
    default_eta = {"linear": 0.3, "logistic": 0.3}
    etas = dict(zip(args.models, args.eta0)) if args.eta0 else default_eta
    rows = []
    header = f"{'model':9} {'d':>3} " + " ".join(
        f"{k:>8}" for k in ("perc90", "basic90", "norm90", "perc95", "basic95", "norm95", "ball95", "sd_rat", "nrm_rat", "rmse", "sec")
    )
    print(header)
    for model in args.models:
        for d in args.dims:
            row = study(model, d, n=args.n, replicas=args.replicas, reps=args.reps, batch=args.batch,
                        eta0=etas[model], gamma=args.gamma, burn_in=args.burn_in, chunk=args.chunk)
            row["eta0"] = etas[model]
            rows.append(row)
            keys = ("percentile_90", "basic_90", "normal_90", "percentile_95", "basic_95", "normal_95", "ball_95", "sd_ratio", "norm_ratio", "rmse", "seconds")
            print(f"{model:9} {d:>3} " + " ".join(f"{row[k]:8.3f}" for k in keys), flush=True)
    if args.json:
        meta = {"device": jax.devices()[0].device_kind, "platform": jax.devices()[0].platform,
                "jax": jax.__version__, "python": platform.python_version()}
        with open(args.json, "w") as f:
            json.dump({"config": vars(args), "meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
