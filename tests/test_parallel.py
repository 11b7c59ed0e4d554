"""Data parallelism over a mesh of 8 simulated CPU devices: equivalence, placement, padding."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

import feasjax as fj
from feasjax import parallel as par
from feasjax.data.datasets import load_dataset
from feasjax.models.losses import per_sample_loss_fn
from feasjax.models.nets import MLP
from feasjax.parallel import layout as lay
from feasjax.parallel.pmap import pmap_epoch

EPS, BATCH = 0.1, 64


def _digits(n):
    ds = load_dataset("digits")
    return {"x": ds.x_train[:n], "y": ds.y_train[:n]}


def _model():
    graphdef, params = nnx.split(MLP(64, (16,), 10, rngs=nnx.Rngs(0)))
    return per_sample_loss_fn(graphdef, "cross_entropy"), params


def _fl(loss_fn, num_samples, axis_name=None):
    return fj.feasible_learning(loss_fn, optax.sgd(0.05, momentum=0.9), num_samples=num_samples,
                                epsilon=EPS, dual_optimizer=fj.ascent(optax.sgd(0.5, momentum=0.5)),
                                axis_name=axis_name)


def _sharded_run(n, devices=8, epochs=2):
    loss_fn, params = _model()
    mesh = par.data_mesh(devices)
    data, layout = par.shard_data(_digits(n), mesh)
    solver = _fl(loss_fn, layout.local_size, "data")
    state = par.init_sharded(solver, params, mesh, layout)
    runner = par.data_parallel_epoch(solver, BATCH, mesh, layout)
    records = []
    for epoch in range(epochs):
        state, info = runner(state, data, jax.random.fold_in(jax.random.key(0), epoch))
        records.append(info)
    return loss_fn, params, mesh, data, layout, solver, state, runner, records


@pytest.mark.parametrize("n", [256, 203])  # 203: not divisible by 8, padded
def test_mesh_equals_one_device_fed_the_same_global_minibatches(n):
    loss_fn, params, _, _, layout, _, state, _, records = _sharded_run(n)
    ref = _fl(loss_fn, n)
    ref_state = ref.init(params)
    host = jax.tree.map(jnp.asarray, _digits(n))
    for info in records:
        idx = jnp.asarray(lay.global_indices(info.indices, layout), jnp.int32)
        assert len(np.unique(np.asarray(idx))) == idx.size  # a permutation prefix, no padding
        epoch = jax.jit(fj.epoch_fn(ref, BATCH, sampler=lambda key, m, idx=idx: idx))
        ref_state, ref_info = epoch(ref_state, host, jax.random.key(0))
        np.testing.assert_allclose(np.asarray(info.losses), np.asarray(ref_info.losses),
                                   rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(jax.device_get(state.params), ref_state.params, rtol=1e-5,
                                atol=1e-7)
    lam = lay.unpad_samples(np.asarray(state.multipliers[fj.SAMPLES]), layout)
    np.testing.assert_allclose(lam, ref_state.multipliers[fj.SAMPLES], rtol=1e-5, atol=1e-6)
    assert not np.allclose(lam, 1.0)  # the multipliers did move
    momentum = lay.unpad_samples(np.asarray(jax.tree.leaves(state.dual_states)[0]), layout)
    np.testing.assert_allclose(momentum, jax.tree.leaves(ref_state.dual_states)[0], rtol=1e-5,
                               atol=1e-6)
    pad = ~lay.sample_mask(layout)
    np.testing.assert_array_equal(np.asarray(state.multipliers[fj.SAMPLES])[pad], 1.0)
    assert (pad.sum() > 0) == (n % 8 > 0)


def test_dual_state_stays_on_its_device_and_no_all_gather_is_compiled():
    _, _, mesh, data, layout, solver, state, runner, _ = _sharded_run(203, epochs=1)
    before = jax.tree.map(jax.typeof, state)
    lowered = runner.lower(state, data, jax.random.key(1))
    text = lowered.compile().as_text()
    assert "all-reduce" in text
    assert "all-gather" not in text and "all-to-all" not in text
    assert f"f32[{layout.padded_size}]" not in text  # only per-device blocks in the program
    state, _ = runner(state, data, jax.random.key(1))
    assert jax.tree.map(jax.typeof, state) == before
    per_sample = [state.multipliers[fj.SAMPLES], *jax.tree.leaves(state.dual_states)]
    for leaf in per_sample:
        assert leaf.sharding.spec == P("data")
        for shard in leaf.addressable_shards:
            block = shard.index[0].start // layout.local_size
            assert shard.device == mesh.devices.flat[block]
            assert shard.data.shape == (layout.local_size,)
    assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state.params))


def test_pmap_path_equals_mesh_path():
    _, _, mesh, data, layout, solver, state, runner, _ = _sharded_run(203, epochs=1)
    host_state = jax.device_get(state)
    mesh_state, mesh_info = runner(state, data, jax.random.key(5))
    pmap_state, pmap_info = pmap_epoch(solver, BATCH, layout)(host_state, data,
                                                              jax.random.key(5))
    np.testing.assert_array_equal(np.asarray(pmap_info.indices), np.asarray(mesh_info.indices))
    chex.assert_trees_all_close(jax.device_get(pmap_state), jax.device_get(mesh_state),
                                rtol=1e-6, atol=1e-7)


def test_padding_layout_round_trip_and_indices():
    layout = lay.shard_layout(11, 4)
    assert lay.shard_counts(layout).tolist() == [3, 3, 3, 2]
    x = np.arange(11) * 10
    padded = lay.pad_samples(x, layout)
    assert padded.shape == (12,)
    np.testing.assert_array_equal(lay.unpad_samples(padded, layout), x)
    np.testing.assert_array_equal(padded[lay.sample_mask(layout)], x)
    local = np.array([[2, 0, 1, 1]])  # one local index per device
    assert lay.global_indices(local, layout).tolist() == [[2, 3, 7, 10]]


def test_bad_sizes_raise_clear_errors():
    with pytest.raises(ValueError, match="num_samples must be >= num_shards"):
        lay.shard_layout(3, 8)
    layout = lay.shard_layout(203, 8)
    with pytest.raises(ValueError, match="divisible by the number of devices 8"):
        par.local_epoch_fn(None, 60, layout)
    with pytest.raises(ValueError, match=r"batch_size must be in \[8, 200\]"):
        par.local_epoch_fn(None, 208, layout)
    with pytest.raises(ValueError, match=r"num_devices must be an int in \[1, 8\]"):
        par.data_mesh(9)
    loss_fn, params = _model()
    with pytest.raises(ValueError, match="num_samples=layout.local_size=26"):
        par.init_sharded(_fl(loss_fn, 203, "data"), params, par.data_mesh(8), layout)
    with pytest.raises(ValueError, match="data must have 203 rows"):
        lay.pad_samples(np.zeros(200), layout)


def test_global_metrics_are_exact_over_all_samples():
    from feasjax.parallel.distributed import global_loss_summary

    values = np.random.default_rng(0).exponential(size=203).astype(np.float32)
    losses, layout = par.shard_data(values, par.data_mesh(8))
    got = global_loss_summary(losses, 0.5, layout)
    assert got["max_loss"] == pytest.approx(values.max())
    assert got["q90_loss"] == pytest.approx(np.quantile(values, 0.9), rel=1e-6)
    assert got["feasible_fraction"] == pytest.approx(np.mean(values <= 0.5))
    assert got["mean_loss"] == pytest.approx(values.mean(), rel=1e-6)
