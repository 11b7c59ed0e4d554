"""Multiplier bootstrap: the vmapped driver against Python-loop baselines, same work, same process.

Linear regression, d = 20, n = 20 000 streamed samples (batch 1), B = 200 replicas plus the main
chain, SGD with ``η_k = η_0 k^(−2/3)`` and Polyak–Ruppert averaging, ``W ~ Exp(1)``. Three forms:

- vmap: :func:`feasjax.uncertainty.multiplier_bootstrap`, all B + 1 chains in one ``lax.scan``,
  the replica axis sharded over the local devices (the driver's ``sharding=``). On a CPU the
  script asks XLA for one host device per core (unless ``XLA_FLAGS`` already sets a count), so
  the replicas use every core; the one-device time is reported too (``vmap_one_device_seconds``).
  The baselines are sequential by construction: each runs one chain at a time;
- (a) step loop: what one writes without the library, a Python loop over steps and chains calling
  a jitted single-chain step (weights drawn inside it). Too slow to run whole: a slice of
  ``--slice-steps`` steps (x B + 1 chains) is timed and extrapolated to n steps, as printed;
- (b) scan loop: a Python loop over the B + 1 chains, each a whole-chain jitted ``lax.scan``.

Everything is compiled and warmed up before timing; medians of ``--repeats`` runs.

    python benchmarks/bootstrap_vmap.py --json bootstrap_vmap.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # One CPU device per core, so that sharding the replica axis uses every core (ignored by
    # GPU/TPU backends, whose devices are the accelerators).
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_"
                               f"device_count={os.cpu_count() or 1}").strip()

import jax
import jax.numpy as jnp
import numpy as np
import optax

from feasjax.core.weighting import weighted_sum
from feasjax.uncertainty.bootstrap import multiplier_bootstrap, power_decay_schedule


def loss(theta, z):
    return 0.5 * (z[:-1] @ theta - z[-1]) ** 2


def make_single_chain(eta0, gamma, burn_in):
    """One chain's step, written as a user without the library would (same maths as the driver)."""
    opt = optax.sgd(power_decay_schedule(eta0, gamma))

    def step(carry, batch, key, is_main):
        params, opt_state, avg, count = carry
        count = count + 1
        w = jnp.where(is_main, 1.0, jax.random.exponential(jax.random.fold_in(key, count), (batch.shape[0],)))
        grads = jax.grad(lambda p: weighted_sum(jax.vmap(loss, in_axes=(None, 0))(p, batch), w))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        j = count - burn_in
        avg = jnp.where(j <= 1, params, avg + (params - avg) / jnp.maximum(j, 1).astype(params.dtype))
        return params, opt_state, avg, count

    def init(d):
        params = jnp.zeros(d)
        return params, opt.init(params), params, jnp.zeros((), jnp.int32)

    return init, step


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, default=20)
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--replicas", type=int, default=200)
    p.add_argument("--eta0", type=float, default=0.3)
    p.add_argument("--gamma", type=float, default=2 / 3)
    p.add_argument("--burn-in", type=int, default=1000)
    p.add_argument("--slice-steps", type=int, default=20, help="steps of baseline (a) actually timed")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=str, default=None)
    args = p.parse_args()
    d, n, B = args.d, args.n, args.replicas
    kx, ke, kb = jax.random.split(jax.random.key(0), 3)
    theta = jnp.linspace(-1.0, 1.0, d) * jnp.sqrt(3.0 / d)
    x = jax.random.normal(kx, (n, 1, d))
    stream = jnp.concatenate([x, (x @ theta + jax.random.normal(ke, (n, 1)))[..., None]], axis=-1)

    def time_driver(sharding):
        boot = multiplier_bootstrap(loss, B, learning_rate=args.eta0, gamma=args.gamma,
                                    burn_in=args.burn_in, sharding=sharding)
        run = jax.jit(boot.run)
        state0 = boot.init(jnp.zeros(d), kb)
        jax.block_until_ready(run(state0, stream))  # compile
        return median_time(lambda: run(state0, stream), args.repeats)

    shards = max(k for k in range(1, len(jax.devices()) + 1) if B % k == 0)
    vmap_one_s = time_driver(None)
    vmap_s = time_driver(jax.make_mesh((shards,), ("replicas",))) if shards > 1 else vmap_one_s

    init, step = make_single_chain(args.eta0, args.gamma, args.burn_in)
    keys = list(jax.random.split(kb, B + 1))
    flags = [jnp.asarray(b == 0) for b in range(B + 1)]

    @jax.jit
    def whole_chain(key, is_main, stream):
        return jax.lax.scan(lambda c, z: (step(c, z, key, is_main), None), init(d), stream)[0]

    jax.block_until_ready(whole_chain(keys[0], flags[0], stream))
    scan_s = median_time(lambda: [whole_chain(k, f, stream) for k, f in zip(keys, flags)], args.repeats)

    jit_step = jax.jit(step)
    carries = [init(d) for _ in range(B + 1)]
    jax.block_until_ready(jit_step(carries[0], stream[0], keys[0], flags[0]))

    def step_slice():
        cs = list(carries)
        for k in range(args.slice_steps):
            batch = stream[k]
            for b in range(B + 1):
                cs[b] = jit_step(cs[b], batch, keys[b], flags[b])
        return cs

    step_s = median_time(step_slice, args.repeats) * n / args.slice_steps

    dev = jax.devices()[0]
    result = {
        "device": f"{dev.platform}:{dev.device_kind}",
        "replicas": B,
        "vmap_seconds": vmap_s,
        "vmap_devices": shards,
        "vmap_one_device_seconds": vmap_one_s,
        "speedup_one_device": step_s / vmap_one_s,
        "step_loop_seconds": step_s,
        "scan_loop_seconds": scan_s,
        "speedup": step_s / vmap_s,
        "speedup_over_scan_loop": scan_s / vmap_s,
    }
    print(f"device {result['device']} (jax {jax.__version__}, python {platform.python_version()}, "
          f"{len(jax.devices())} devices); d={d} n={n} B={B} (+ main chain), median of {args.repeats}")
    print(f"vmap driver, one lax.scan:           {vmap_s:10.3f} s  (replicas over {shards} "
          f"devices; {vmap_one_s:.3f} s on one)")
    print(f"(a) python loop steps x chains:      {step_s:10.3f} s  (extrapolated: timed {args.slice_steps} "
          f"of {n} steps x {B + 1} chains, scaled by {n / args.slice_steps:g})")
    print(f"(b) python loop chains, lax.scan:    {scan_s:10.3f} s")
    print(f"speedup over (a): {result['speedup']:.0f}x   over (b): {result['speedup_over_scan_loop']:.2f}x"
          f"   (one device: {result['speedup_one_device']:.0f}x over (a))")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
