"""Step-time overhead of parameter averaging over the bare optimizer, on the demo MLP.

Model: MLP 64 -> 64 -> 10 (ReLU), softmax cross-entropy on one batch of 64 random digits-like
inputs (8x8 images with values in [0, 1]); optimizer: SGD with momentum 0.9. Each method runs
``--steps`` training steps inside one jitted ``lax.scan`` (no per-step Python overhead); the
methods are timed interleaved, ``--repeats`` times each after a warm-up, and the medians are
compared in the same process. LAWA is timed twice: with rare snapshots (``every=100``, the
ratio reported as ``lawa``) and with a snapshot at every step (``lawa_snapshot_step``).

Usage: python benchmarks/averaging_overhead.py [--steps 2000] [--repeats 15] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from feasjax.averaging.averagers import ema, lawa, polyak, swa
from feasjax.averaging.schedules import swa_schedule
from feasjax.averaging.wrappers import averaged, averaged_params

LR, MOMENTUM = 0.05, 0.9


def init_mlp(key: jax.Array) -> dict:
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (64, 64)) / 8.0,
        "b1": jnp.zeros(64),
        "w2": jax.random.normal(k2, (64, 10)) / 8.0,
        "b2": jnp.zeros(10),
    }


def loss_fn(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    h = jax.nn.relu(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def optimizers(steps: int) -> dict[str, optax.GradientTransformation]:
    sgd = optax.sgd(LR, momentum=MOMENTUM)
    swa_lr = swa_schedule(LR, start_step=steps // 2, swa_lr=LR, cycle_length=10, min_lr=LR / 10)
    return {
        "bare": sgd,
        "ema": averaged(sgd, ema(0.999, "linear")),
        "polyak": averaged(sgd, polyak(0)),
        "lawa": averaged(sgd, lawa(k=5, every=100)),
        "lawa_snapshot_step": averaged(sgd, lawa(k=5, every=1)),
        "swa": averaged(optax.sgd(swa_lr, momentum=MOMENTUM), swa(10, steps // 2)),
    }


def make_run(tx: optax.GradientTransformation, steps: int):
    def step(carry, _):
        params, state, x, y = carry
        grads = jax.grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state, x, y), None

    @jax.jit
    def run(params, state, x, y):
        (params, state, _, _), _ = jax.lax.scan(step, (params, state, x, y), length=steps)
        return params, state

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=str, default=None, help="write the results to this path")
    args = parser.parse_args()

    kp, kx, ky = jax.random.split(jax.random.key(0), 3)
    params = init_mlp(kp)
    x = jnp.round(16 * jax.random.uniform(kx, (64, 64))) / 16  # digits-like: 17 grey levels
    y = jax.random.randint(ky, (64,), 0, 10)

    txs = optimizers(args.steps)
    runs, states = {}, {}
    for name, tx in txs.items():
        runs[name], states[name] = make_run(tx, args.steps), tx.init(params)
        out = runs[name](params, states[name], x, y)  # warm-up: compile and run once
        jax.block_until_ready(out)
        if name != "bare":
            jax.block_until_ready(averaged_params(out[1], out[0]))
    times: dict[str, list[float]] = {name: [] for name in txs}
    for _ in range(args.repeats):
        for name in txs:  # interleaved so that load changes hit every method alike
            t0 = time.perf_counter()
            jax.block_until_ready(runs[name](params, states[name], x, y))
            times[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    dev = jax.devices()[0]
    result = {
        "device": f"{dev.platform}:{dev.device_kind}",
        "ratios": {m: median[m] / median["bare"] for m in ("ema", "polyak", "lawa", "swa")},
        "lawa_snapshot_step_ratio": median["lawa_snapshot_step"] / median["bare"],
        "us_per_step": {name: 1e6 * t / args.steps for name, t in median.items()},
        "steps": args.steps,
        "repeats": args.repeats,
        "versions": {"jax": jax.__version__, "optax": optax.__version__, "python": platform.python_version()},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
