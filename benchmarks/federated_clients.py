"""One federated round of K clients as one vmapped program vs a Python loop over the clients.

Both do the same work: every client runs ``--local-steps`` SGD steps of an MLP
(64 -> 32 -> 10, cross-entropy) on its own ``--rows`` rows (full batch), then the server averages
the size-weighted deltas (FedAvg). The vmapped round is
``feasjax.federated.federated_averaging(...).round`` (one jitted program for all clients); the
loop calls a jitted one-client trainer (``feasjax.federated.client_update``, compiled once and
reused for every client) K times and averages the deltas with one more jitted call. Both are
warmed up (compiled) before timing; repetitions are interleaved; medians are reported.

    PYTHONPATH=. python benchmarks/federated_clients.py --json federated_clients.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import feasjax as fj
from feasjax.federated import client_update, federated_averaging
from feasjax.models import per_sample_loss_fn


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--local-steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()

    graphdef, params = nnx.split(fj.MLP(64, [32], 10, rngs=nnx.Rngs(0)))
    loss = per_sample_loss_fn(graphdef)
    rng = np.random.default_rng(0)
    k, n = args.clients, args.rows
    clients = {"x": jnp.asarray(rng.standard_normal((k, n, 64)), jnp.float32),
               "y": jnp.asarray(rng.integers(0, 10, (k, n)), jnp.int32),
               "mask": jnp.ones((k, n), bool)}
    opt = optax.sgd(0.1)
    fed = federated_averaging(loss, opt, local_steps=args.local_steps)
    state = fed.init(params)
    train = jax.jit(client_update(loss, opt, args.local_steps))

    @jax.jit
    def server(params, trained, weights):
        deltas = [optax.tree.sub(t, params) for t in trained]
        total = jax.tree.map(lambda *d: sum(w * x for w, x in zip(weights, d)), *deltas)
        return optax.tree.add(params, optax.tree.scale(1.0 / sum(weights), total))

    def vmapped(key):
        return fed.round(state, clients, key)[0].params

    def loop(key):
        keys = jax.random.split(key, k)
        trained = [train(params, jax.tree.map(lambda v, i=i: v[i], clients), keys[i])
                   for i in range(k)]
        return server(params, trained, [float(n)] * k)

    key = jax.random.key(1)
    a, b = jax.block_until_ready(vmapped(key)), jax.block_until_ready(loop(key))  # compile
    agree = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a),
                                                                jax.tree.leaves(b)))
    times = {"vmapped": [], "loop": []}
    for r in range(args.repeats):  # interleaved
        for name, fn in (("vmapped", vmapped), ("loop", loop)):
            start = time.perf_counter()
            jax.block_until_ready(fn(jax.random.key(r)))
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(v) for name, v in times.items()}
    report = {
        "clients": k, "rows": n, "local_steps": args.local_steps, "repeats": args.repeats,
        "vmapped_seconds": med["vmapped"], "loop_seconds": med["loop"],
        "speedup": med["loop"] / med["vmapped"], "max_abs_difference": agree,
        "device": str(jax.devices()[0]), "device_count": jax.device_count(),
        "jax": jax.__version__, "optax": optax.__version__, "python": platform.python_version(),
    }
    print(f"one round of {k} clients x {args.local_steps} local steps: vmapped "
          f"{med['vmapped'] * 1e3:.2f} ms, Python loop {med['loop'] * 1e3:.2f} ms, speedup "
          f"{report['speedup']:.1f}x (results agree to {agree:.1e})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
