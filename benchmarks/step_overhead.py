"""Compiled step time of Feasible Learning against ERM, and its dependence on N.

Both methods run the same model, primal optimizer and minibatches, ``--steps`` steps per call
inside one jitted ``lax.scan`` with the state donated (as ``feasjax.train`` runs an epoch), so
per-step Python overhead is excluded. Compilation is excluded by a warm-up call; the reported
time is the median over ``--repeats`` calls divided by the number of steps, the configurations
measured round-robin so that all of them see the same machine load.

For the N-scaling the minibatch rows come from a pool of ``--pool`` samples (``x[idx % pool]``)
while the indices, multipliers and dual state span all ``N`` samples: what is measured is the
cost of the per-sample dual state, which must stay O(batch).

Usage::

    python benchmarks/step_overhead.py --json step_overhead.json
    python benchmarks/step_overhead.py --hidden 64 --batch-size 64   # the demo's tiny model
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
from flax import nnx

import feasjax as fj
from feasjax.models.losses import per_sample_loss_fn
from feasjax.models.nets import MLP


def _runner(solver, data, pool: int, steps: int):
    def run(state, batches):
        def body(state, idx):
            rows = idx % pool
            batch = {"x": data["x"][rows], "y": data["y"][rows]}
            state, _ = solver.step(state, batch, idx)
            return state, None

        return jax.lax.scan(body, state, batches)[0]

    return jax.jit(run, donate_argnums=0)


class Timed:
    """One configuration to time: a compiled scan, its donated state and its index stream."""

    def __init__(self, solver, params, data, *, num_samples, batch_size, steps, pool, seed=0):
        self.run = _runner(solver, data, pool, steps)
        self.num_samples, self.batch_size, self.steps = num_samples, batch_size, steps
        self.key = jax.random.key(seed)
        self.state = solver.init(jax.tree.map(jnp.copy, params))  # the state is donated
        self.times = []
        self.once(record=False)  # compile and warm up

    def once(self, record: bool = True) -> None:
        batches = jax.random.randint(jax.random.fold_in(self.key, len(self.times)),
                                     (self.steps, self.batch_size), 0, self.num_samples,
                                     dtype=jnp.int32)
        jax.block_until_ready(batches)
        start = time.perf_counter()
        self.state = jax.block_until_ready(self.run(self.state, batches))
        if record:
            self.times.append((time.perf_counter() - start) / self.steps)

    def median(self) -> float:
        return statistics.median(self.times)


def time_interleaved(configs: dict, repeats: int) -> dict:
    """Median seconds per step of each configuration, measured round-robin.

    Interleaving the repeats makes every configuration see the same machine load, so the
    ratios stay meaningful on a busy machine.
    """
    for _ in range(repeats):
        for timed in configs.values():
            timed.once()
    return {name: timed.median() for name, timed in configs.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pool", type=int, default=4096, help="distinct data rows")
    parser.add_argument("--sizes", type=float, nargs="+",
                        default=[1e3, 1e4, 1e5, 1e6, 1e7],
                        help="numbers of samples N for the scaling (1e8 on a GPU)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)

    model = MLP(64, args.hidden, 10, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    loss_fn = per_sample_loss_fn(graphdef, "cross_entropy")
    kx, ky = jax.random.split(jax.random.key(1))
    data = {"x": jax.random.normal(kx, (args.pool, 64)),
            "y": jax.random.randint(ky, (args.pool,), 0, 10, dtype=jnp.int32)}
    primal = optax.sgd(0.01, momentum=0.9)
    common = dict(batch_size=args.batch_size, steps=args.steps, pool=args.pool)

    def fl(n):
        return fj.feasible_learning(loss_fn, primal, num_samples=n, epsilon=0.1,
                                    dual_optimizer=fj.ascent(optax.sgd(0.1)))

    base_n = int(args.sizes[0])
    configs = {"erm": Timed(fj.empirical_risk(loss_fn, primal), params, data,
                            num_samples=base_n, **common)}
    for n in map(int, args.sizes):
        configs[str(n)] = Timed(fl(n), params, data, num_samples=n, **common)
    medians = time_interleaved(configs, args.repeats)
    erm_time, fl_time = medians.pop("erm"), medians[str(base_n)]
    scaling = medians
    for n, seconds in scaling.items():
        print(f"N={int(n):>11,d}: FL {seconds * 1e6:9.1f} us/step", flush=True)

    device = jax.devices()[0]
    report = {
        "device": f"{device.platform}:{device.device_kind}",
        "step_seconds": {"erm": erm_time, "fl": fl_time},
        "fl_over_erm": fl_time / erm_time,
        "n_scaling": scaling,
        "largest_over_smallest": scaling[str(int(args.sizes[-1]))] / scaling[str(base_n)],
        "model": f"MLP 64-{'-'.join(map(str, args.hidden))}-10",
        "batch_size": args.batch_size,
        "versions": {"jax": jax.__version__, "optax": optax.__version__,
                     "python": platform.python_version()},
    }
    print(f"{report['model']}, batch {args.batch_size}, {report['device']}: "
          f"ERM {erm_time * 1e6:.1f} us/step, FL {fl_time * 1e6:.1f} us/step, "
          f"FL/ERM {report['fl_over_erm']:.3f}, "
          f"N={int(args.sizes[-1]):,d} over N={base_n:,d}: {report['largest_over_smallest']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
