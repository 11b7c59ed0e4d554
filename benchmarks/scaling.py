"""Scale-out benchmark: step time vs devices, 10^8 sharded multipliers, vmapped sweep vs sequential.

    python benchmarks/scaling.py --json scaling.json            # CPU: 8 simulated devices
    python benchmarks/scaling.py --big-n 10000000 --json s.json  # smaller N if memory is short

On a CPU the simulated devices share the same cores: part 1 checks the code path, it does not
measure a speed-up. Timings exclude compilation (one warm-up call), block on the results, and
report medians over repetitions; ratios are against baselines measured in the same process.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import feasjax as fj  # noqa: E402
from feasjax import parallel  # noqa: E402
from feasjax.data.datasets import load_dataset  # noqa: E402
from feasjax.experiments import RunConfig, build_model, build_solver  # noqa: E402
from feasjax.models.losses import per_sample_loss_fn  # noqa: E402
from feasjax.models.nets import MLP  # noqa: E402
from feasjax.parallel import sweeps  # noqa: E402
from feasjax.parallel.layout import shard_layout  # noqa: E402


def _median_seconds(fn, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_time_vs_devices(reps, num_samples=8192, batch=256):
    """Seconds per FL step of an MLP 64-64-10 over D = 1, 2, 4, 8 devices (same global batch)."""
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(num_samples, 64)).astype(np.float32),
            "y": rng.integers(0, 10, num_samples).astype(np.int32)}
    graphdef, params = nnx.split(MLP(64, (64,), 10, rngs=nnx.Rngs(0)))
    loss_fn = per_sample_loss_fn(graphdef, "cross_entropy")
    out = {}
    for d in [d for d in (1, 2, 4, 8) if d <= len(jax.devices())]:
        mesh = parallel.data_mesh(d)
        sharded, layout = parallel.shard_data(data, mesh)
        solver = fj.feasible_learning(loss_fn, optax.sgd(0.05, momentum=0.9),
                                      num_samples=layout.local_size, epsilon=0.1,
                                      axis_name="data")
        state = parallel.init_sharded(solver, params, mesh, layout)
        runner = parallel.data_parallel_epoch(solver, batch, mesh, layout)
        holder = [state]

        def epoch(holder=holder, runner=runner, sharded=sharded):
            holder[0], info = runner(holder[0], sharded, jax.random.key(0))
            return holder[0]

        epoch()
        steps = (num_samples // d) // (batch // d)
        out[str(d)] = _median_seconds(epoch, reps) / steps
    return out


def step_time_many_multipliers(big_n, reps, steps=200, batch=256, small_n=10_000):
    """Seconds per FL step (fixed number of random minibatches) at N = small_n and N = big_n,
    multipliers sharded over all devices; data generated on the devices."""
    mesh = parallel.data_mesh()
    d = mesh.size
    loss = fj.per_example(lambda w, ex: (ex["x"] @ w - ex["y"]) ** 2)
    out = {}
    for n in (small_n, big_n):
        n = (n // d) * d
        layout = shard_layout(n, d)
        sharding = NamedSharding(mesh, P("data"))

        def make_data():
            k1, k2 = jax.random.split(jax.random.key(0))
            return {"x": jax.random.normal(k1, (n, 4)), "y": jax.random.normal(k2, (n,))}

        data = jax.jit(make_data, out_shardings={"x": sharding, "y": sharding})()
        solver = fj.feasible_learning(loss, optax.sgd(0.01), num_samples=layout.local_size,
                                      epsilon=0.1, axis_name="data")
        state = parallel.init_sharded(solver, jnp.zeros(4), mesh, layout)
        local_batch = batch // d

        def sampler(key, m):
            key = jax.random.fold_in(key, jax.lax.axis_index("data"))
            return jax.random.randint(key, (steps, local_batch), 0, m, jnp.int32)

        local = fj.epoch_fn(solver, local_batch, sampler=sampler)
        specs = parallel.state_partition_specs(state)
        info_specs = fj.training.EpochInfo(indices=P(None, "data"), losses=P(None, "data"), ok=P())
        runner = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(specs, P("data"), P()),
                                       out_specs=(specs, info_specs), check_vma=False),
                         donate_argnums=0)
        holder = [state]

        def run(holder=holder, runner=runner, data=data):
            holder[0], _ = runner(holder[0], data, jax.random.key(1))
            return holder[0]

        run()
        out[str(n)] = _median_seconds(run, reps) / steps
        del data, state, holder
    return {"devices": d, "step_seconds": out,
            "big_over_small": out[str((big_n // d) * d)] / out[str((small_n // d) * d)]}


def sweep_vs_sequential(reps, runs=8, epochs=10):
    """The demo model (digits, MLP 64-64-10, batch 64, FL) for `runs` seeds: one vmapped
    program vs `runs` sequential runs of the compiled epoch, on one device."""
    dataset, config = load_dataset("digits"), RunConfig()
    graphdef, _ = nnx.split(build_model(dataset, config))
    loss_fn = per_sample_loss_fn(graphdef, "cross_entropy")
    n = len(dataset.y_train)
    data = {"x": jnp.asarray(dataset.x_train), "y": jnp.asarray(dataset.y_train)}
    solver = build_solver("fl", loss_fn, n, config)
    seeds = list(range(runs))
    params = [nnx.split(build_model(dataset, config._replace(seed=s)))[1] for s in seeds]
    keys = [jax.random.key(s) for s in seeds]
    epoch = jax.jit(fj.epoch_fn(solver, config.batch_size))  # no donation: states are reused
    vmapped = jax.jit(jax.vmap(fj.epoch_fn(solver, config.batch_size), in_axes=(0, None, 0)))
    stacked_keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))

    def sequential():
        finals = []
        for p, k in zip(params, keys):
            state = solver.init(p)
            for e in range(epochs):
                state, _ = epoch(state, data, jax.random.fold_in(k, e))
            finals.append(state)
        return finals

    def together():
        states = jax.vmap(solver.init)(sweeps.stack_runs(params))
        for e in range(epochs):
            states, _ = vmapped(states, data, fold(stacked_keys, e))
        return states

    seq_states, vec_states = sequential(), together()  # warm-up (compilation)
    pairs = [(np.asarray(a)[r], np.asarray(b)) for r, s in enumerate(seq_states)
             for a, b in zip(jax.tree.leaves((vec_states.params, vec_states.multipliers)),
                             jax.tree.leaves((s.params, s.multipliers)))]
    same = all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in pairs)
    max_abs = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    t_seq, t_vec = _median_seconds(sequential, reps), _median_seconds(together, reps)

    # The same through the library's drivers (a host sync per epoch for the history):
    # feasjax.train per seed with one precompiled donated runner vs feasjax.parallel.train_sweep.
    runner = jax.jit(fj.epoch_fn(solver, config.batch_size), donate_argnums=0)
    sweep_runner = sweeps.sweep_epoch(solver, config.batch_size)

    def train_each():
        return [fj.train(solver, solver.init(jax.tree.map(jnp.copy, p)), data, epochs=epochs,
                         batch_size=config.batch_size, key=k, progress=False,
                         epoch_runner=runner)[0] for p, k in zip(params, keys)]

    def train_together():
        states = jax.vmap(solver.init)(sweeps.stack_runs(params))
        return sweeps.train_sweep(sweep_runner, states, data, epochs=epochs, keys=stacked_keys,
                                  progress=False)[0]

    train_each(), train_together()
    t_each = _median_seconds(train_each, reps)
    t_together = _median_seconds(train_together, reps)
    return {"runs": runs, "epochs": epochs,
            "train_loop": {"sequential_seconds": t_each, "vmapped_seconds": t_together,
                           "speedup": t_each / t_together},
            "sequential_seconds": t_seq, "vmapped_seconds": t_vec, "speedup": t_seq / t_vec,
            "same_results_rtol_1e-5": same, "max_abs_difference": max_abs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--big-n", type=float, default=1e8, help="multipliers for part 2")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: "
                        "devices,multipliers,sweep")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    dev = jax.devices()[0]
    report = {"device": f"{dev.platform}:{dev.device_kind}", "num_devices": len(jax.devices()),
              "jax": jax.__version__, "python": platform.python_version(),
              "cpu_count": os.cpu_count()}
    if "devices" not in skip:
        report["step_seconds_vs_devices"] = step_time_vs_devices(args.reps)
        print("step seconds vs devices:", report["step_seconds_vs_devices"], flush=True)
    if "multipliers" not in skip:
        report["many_multipliers"] = step_time_many_multipliers(int(args.big_n), args.reps)
        print("many multipliers:", report["many_multipliers"], flush=True)
    if "sweep" not in skip:
        report["sweep"] = sweep_vs_sequential(args.reps)
        print("sweep:", report["sweep"], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
