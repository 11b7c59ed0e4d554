"""Worker of the multi-host test: FL on a digits subset over a data mesh, one or several processes.

Run by ``python -m feasjax.parallel.launch --processes 2 --devices-per-process 2 --
tests/multihost_worker.py OUT.json``; the test imports :func:`train_digits` to compute the
one-process reference.
"""
import json
import sys

NUM_SAMPLES, BATCH, EPOCHS, EPSILON = 203, 32, 2, 0.1  # 203 = 4 * 50 + 3: padding exercised


def train_digits(mesh) -> dict:
    """Train FL on the first NUM_SAMPLES digits over ``mesh``; every process loads its part."""
    import jax
    import numpy as np
    import optax
    from flax import nnx

    import feasjax as fj
    from feasjax.data.datasets import load_dataset
    from feasjax.parallel.distributed import gather, global_loss_summary, process_sample_range
    from feasjax.parallel.layout import shard_layout, unpad_samples
    from feasjax.models.losses import per_sample_loss_fn
    from feasjax.models.nets import MLP
    from feasjax.parallel.mesh import data_parallel_epoch, init_sharded, shard_data

    ds = load_dataset("digits")
    lo, hi = process_sample_range(shard_layout(NUM_SAMPLES, mesh.size), mesh)
    part = {"x": ds.x_train[lo:hi], "y": ds.y_train[lo:hi]}  # only this process's samples
    data, layout = shard_data(part, mesh, num_samples=NUM_SAMPLES)
    graphdef, params = nnx.split(MLP(ds.x_train.shape[1], (16,), 10, rngs=nnx.Rngs(0)))
    loss_fn = per_sample_loss_fn(graphdef, "cross_entropy")
    solver = fj.feasible_learning(loss_fn, optax.sgd(0.05, momentum=0.9),
                                  num_samples=layout.local_size, epsilon=EPSILON,
                                  dual_optimizer=fj.ascent(optax.sgd(0.1, momentum=0.5)),
                                  axis_name="data")
    state = init_sharded(solver, params, mesh, layout)
    state, hist = fj.train(solver, state, data, epochs=EPOCHS, batch_size=BATCH,
                           key=jax.random.key(0), epsilon=EPSILON, progress=False,
                           epoch_runner=data_parallel_epoch(solver, BATCH, mesh, layout))
    losses = jax.jit(loss_fn)(state.params, data)
    host = gather({"params": state.params, "multipliers": state.multipliers["samples"]})
    return {"params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(host["params"])],
            "multipliers": unpad_samples(host["multipliers"], layout).tolist(),
            "summary": global_loss_summary(losses, EPSILON, layout),
            "mean_loss": hist.mean_loss, "processes": jax.process_count()}


def main(out_path: str) -> None:
    from feasjax.parallel.distributed import initialize

    initialize()  # FEASJAX_* environment variables set by feasjax.parallel.launch
    import jax

    from feasjax.parallel.mesh import data_mesh

    result = train_digits(data_mesh())
    if jax.process_index() == 0:
        with open(out_path, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
