"""Solvers with model state (BatchNorm statistics, dropout RNG): train, sweep, mesh, resume."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import feasjax as fj
from feasjax.experiments import model_fns
from feasjax.models.nets import CNN
from feasjax.parallel.sweeps import stack_runs, sweep_epoch, train_sweep
from tests._helpers import assert_bit_identical

N, EPS = 96, 0.1


def _data():
    ds = fj.load_dataset("digits")
    return {"x": jnp.asarray(ds.x_train[:N]), "y": jnp.asarray(ds.y_train[:N])}


def _fns(seed=0, axis_name=None):
    model = CNN((8, 8, 1), 10, features=(4,), hidden=8, batch_norm=True, dropout=0.3,
                rngs=nnx.Rngs(seed))
    return model_fns(model, "classification", axis_name=axis_name)


def _fl(fns, num_samples=N, axis_name=None):
    # SGD, not Adam: Adam turns the rounding noise of zero gradients (biases before
    # BatchNorm) into steps of the full learning rate, so batched and single runs would drift.
    return fj.feasible_learning(fns.train_loss, optax.sgd(0.1, momentum=0.9),
                                num_samples=num_samples,
                                epsilon=EPS, stateful=True, axis_name=axis_name)


def test_stateful_solver_trains_and_carries_the_model_state():
    data, fns = _data(), _fns()
    fl = _fl(fns)
    state = fl.init(fns.params, model_state=fns.model_state)
    before = fns.eval_loss(state.params, data, state.model_state)
    state, hist = fj.train(fl, state, data, epochs=6, batch_size=16, key=jax.random.key(0),
                           progress=False)
    after = fns.eval_loss(state.params, data, state.model_state)
    assert float(after.mean()) < 0.75 * float(before.mean())  # eval mode: running stats
    stats = [x for p, x in jax.tree_util.tree_leaves_with_path(state.model_state)
             if "mean" in jax.tree_util.keystr(p)]
    assert stats and max(float(jnp.abs(s).max()) for s in stats) > 0  # running means moved
    counts = [x for p, x in jax.tree_util.tree_leaves_with_path(state.model_state)
              if "count" in jax.tree_util.keystr(p)]
    assert [int(c) for c in counts] == [6 * (N // 16)]  # one dropout draw per step
    assert int(state.skipped) == 0 and len(hist.mean_loss) == 6


def test_same_seed_is_bit_identical_and_dropout_changes_between_steps():
    data, fns = _data(), _fns()
    fl = _fl(fns)
    run = jax.jit(fj.epoch_fn(fl, 16))
    a, info_a = run(fl.init(fns.params, model_state=fns.model_state), data, jax.random.key(1))
    b, _ = run(fl.init(fns.params, model_state=fns.model_state), data, jax.random.key(1))
    assert_bit_identical(a, b)
    batch = {"x": data["x"][:16], "y": data["y"][:16]}
    first, ms = fns.train_loss(fns.params, batch, fns.model_state)
    second, _ = fns.train_loss(fns.params, batch, ms)
    assert not np.array_equal(first, second)  # a new dropout mask, same parameters
    del info_a


def test_stateless_models_refuse_a_missing_model_state_for_stateful_solvers():
    fns = _fns()
    with pytest.raises(ValueError, match="stateful solver needs init"):
        _fl(fns).init(fns.params)
    loss = lambda p, b: (fns.train_loss(p, b, fns.model_state))  # noqa: E731 - a tuple
    solver = fj.feasible_learning(loss, optax.sgd(0.1), num_samples=N, epsilon=EPS)
    with pytest.raises(TypeError, match="give the solver.s init its model_state"):
        solver.step(solver.init(fns.params), _data(), jnp.arange(4))


def test_vmapped_sweep_of_stateful_runs_equals_each_run_alone():
    data = _data()
    runs = [_fns(seed) for seed in (0, 1)]
    fl = _fl(runs[0])
    states = jax.vmap(lambda p, m: fl.init(p, model_state=m))(
        stack_runs([r.params for r in runs]), stack_runs([r.model_state for r in runs]))
    keys = jax.vmap(jax.random.key)(jnp.array([0, 1]))
    states, _ = train_sweep(sweep_epoch(fl, 16), states, data, epochs=2, keys=keys,
                            progress=False)
    for r, fns in enumerate(runs):
        alone, _ = fj.train(fl, fl.init(fns.params, model_state=fns.model_state), data,
                            epochs=2, batch_size=16, key=jax.random.key(r), progress=False)
        np.testing.assert_allclose(states.multipliers["samples"][r],
                                   alone.multipliers["samples"], rtol=1e-4, atol=1e-5)
        jax.tree.map(lambda a, b, r=r: np.testing.assert_allclose(a[r], b, rtol=1e-4,
                                                                  atol=1e-5),
                     states.params, alone.params)


def test_mesh_run_keeps_running_statistics_identical_on_every_device():
    data = _data()
    fns = _fns(axis_name=fj.DATA_AXIS)
    mesh = fj.data_mesh(2)
    sharded, layout = fj.shard_data({k: np.asarray(v) for k, v in data.items()}, mesh)
    fl = _fl(fns, layout.local_size, axis_name=fj.DATA_AXIS)
    state = fj.init_sharded(fl, fns.params, mesh, layout, model_state=fns.model_state)
    runner = fj.data_parallel_epoch(fl, 16, mesh, layout)
    state, _ = fj.train(fl, state, sharded, epochs=2, batch_size=16, key=jax.random.key(0),
                        progress=False, epoch_runner=runner)
    for leaf in jax.tree.leaves(state.model_state):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        shards = [np.asarray(s.data) for s in leaf.addressable_shards]
        for other in shards[1:]:
            np.testing.assert_array_equal(other, shards[0])
    assert int(state.skipped) == 0


def test_resume_restores_the_model_state_bit_for_bit(tmp_path):
    data, fns = _data(), _fns()
    fl = _fl(fns)

    def run(epochs, directory):  # the state is donated: build it from copies every time
        state = fl.init(*jax.tree.map(jnp.copy, (fns.params,)),
                        model_state=jax.tree.map(jnp.copy, fns.model_state))
        return fj.train_resumable(fl, state, data, epochs=epochs, batch_size=16,
                                  key=jax.random.key(0), checkpoint_dir=directory,
                                  checkpoint_every=4, progress=False)[0]

    whole = run(2, tmp_path / "whole")
    run(1, tmp_path / "split")
    resumed = run(2, tmp_path / "split")
    assert_bit_identical(whole, resumed)
