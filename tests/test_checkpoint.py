"""Orbax checkpoints: round trips, checked restores, fallback on corruption, resharding."""
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import feasjax as fj
from feasjax.training.checkpoint import (check_compatible, checkpoint_manager, restore_checkpoint,
                                         save_checkpoint)
from tests._helpers import assert_bit_identical, schedule_free_fl


def _trained_state(n=16, d=3, steps=3):
    solver = schedule_free_fl(n)
    x = jax.random.normal(jax.random.key(0), (n, d))
    state = solver.init(jnp.zeros(d))
    for i in range(steps):
        idx = jnp.arange(4) + 4 * i
        state, _ = solver.step(state, {"x": x[idx], "y": jnp.ones(4)}, idx)
    return state


def _save(directory, steps, tree, **kw):
    with checkpoint_manager(directory, max_to_keep=None, **kw) as manager:
        for step in steps:
            save_checkpoint(manager, step, tree, meta={"step": step})
        manager.wait_until_finished()


def test_round_trip_of_full_state_key_and_meta(tmp_path):
    state = _trained_state()
    tree = {"state": state, "key": jax.random.fold_in(jax.random.key(7), 3)}
    _save(tmp_path, [3], tree)
    assert sorted(os.listdir(tmp_path)) == ["3"]  # the tmp directory was renamed: atomic
    with checkpoint_manager(tmp_path) as manager:
        target = {"state": schedule_free_fl(16).init(jnp.zeros(3)), "key": jax.random.key(0)}
        restored = restore_checkpoint(manager, target)
    assert restored.step == 3 and restored.meta == {"step": 3}
    assert isinstance(restored.tree["state"], fj.PrimalDualState)
    assert int(restored.tree["state"].primal_state.step_count) == 4
    assert_bit_identical(restored.tree["state"], state)
    np.testing.assert_array_equal(jax.random.key_data(restored.tree["key"]),
                                  jax.random.key_data(tree["key"]))
    np.testing.assert_array_equal(jax.random.uniform(restored.tree["key"], (3,)),
                                  jax.random.uniform(tree["key"], (3,)))


def test_max_to_keep_keeps_the_latest(tmp_path):
    with checkpoint_manager(tmp_path, max_to_keep=2) as manager:
        for step in (1, 2, 3, 4):
            save_checkpoint(manager, step, {"w": jnp.full(2, step)})
        manager.wait_until_finished()
        assert manager.all_steps() == [3, 4]


@pytest.mark.parametrize("change, leaf, saved, target", [
    ("model", "state/params", "shape=(3,) dtype=float32", "shape=(5,) dtype=float32"),
    ("n", "state/multipliers/samples", "shape=(16,) dtype=float32", "shape=(24,) dtype=float32"),
    ("dtype", "state/params", "shape=(3,) dtype=float32", "shape=(3,) dtype=bfloat16"),
])
def test_restore_into_another_model_n_or_dtype_names_the_leaf(tmp_path, change, leaf, saved,
                                                              target):
    _save(tmp_path, [1], {"state": schedule_free_fl(16).init(jnp.zeros(3))})
    if change == "model":
        other = schedule_free_fl(16).init(jnp.zeros(5))
    elif change == "n":
        other = schedule_free_fl(24).init(jnp.zeros(3))
    else:
        other = schedule_free_fl(16).init(jnp.zeros(3, jnp.bfloat16))
    with checkpoint_manager(tmp_path) as manager, pytest.raises(ValueError) as err:
        restore_checkpoint(manager, {"state": other})
    msg = str(err.value)
    assert f"leaf '{leaf}': checkpoint {saved}, target {target}" in msg


def test_check_compatible_reports_structure_differences():
    with pytest.raises(ValueError, match=r"only in the checkpoint \['b'\], only in the target "
                                         r"\['c'\]"):
        check_compatible({"a": jnp.zeros(2), "b": jnp.zeros(1)},
                         {"a": jnp.zeros(2), "c": jnp.zeros(1)})
    check_compatible({"a": jnp.zeros(2)}, {"a": jax.ShapeDtypeStruct((2,), jnp.float32)})


def _data_files(step_dir: pathlib.Path):
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file()
             and p.parent.name == "d"]
    assert files
    return files


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_latest_falls_back_with_a_warning(tmp_path, damage):
    _save(tmp_path, [1, 2], {"w": jnp.arange(64.0)}, async_save=False)
    _save(tmp_path / "ref", [2], {"w": jnp.arange(64.0) + 1}, async_save=False)
    # Make step 2 hold other values, then damage its data files.
    for f in _data_files(tmp_path / "2"):
        size = f.stat().st_size
        f.write_bytes(b"" if damage == "truncate" else os.urandom(size))
    with checkpoint_manager(tmp_path) as manager:
        with pytest.warns(UserWarning, match="checkpoint 2 .* cannot be read .* falling back"):
            restored = restore_checkpoint(manager, {"w": jnp.zeros(64)})
    assert restored.step == 1
    np.testing.assert_array_equal(restored.tree["w"], np.arange(64.0))


def test_no_readable_checkpoint_is_a_clear_error(tmp_path):
    _save(tmp_path, [1, 2], {"w": jnp.arange(8.0)}, async_save=False)
    for step in ("1", "2"):
        for f in _data_files(tmp_path / step):
            f.write_bytes(b"")
    with checkpoint_manager(tmp_path) as manager:
        with pytest.warns(UserWarning), pytest.raises(ValueError,
                                                      match="no readable checkpoint in .*step 2"):
            restore_checkpoint(manager, {"w": jnp.zeros(8)})
    with checkpoint_manager(tmp_path / "empty") as manager:
        with pytest.raises(FileNotFoundError, match="no checkpoint in"):
            restore_checkpoint(manager, {"w": jnp.zeros(8)})


def test_crashed_save_leaves_previous_checkpoint_and_is_ignored(tmp_path):
    _save(tmp_path, [1], {"w": jnp.arange(4.0)})
    (tmp_path / "2.orbax-checkpoint-tmp" / "state").mkdir(parents=True)  # a save killed midway
    with checkpoint_manager(tmp_path) as manager:
        assert manager.all_steps() == [1]
        assert restore_checkpoint(manager, {"w": jnp.zeros(4)}).step == 1


def _placed(state, multiplier_sharding, replicated):
    return state._replace(
        multipliers={"samples": jax.device_put(state.multipliers["samples"],
                                               multiplier_sharding)},
        dual_states=jax.device_put(state.dual_states, multiplier_sharding),
        params=jax.device_put(state.params, replicated),
        primal_state=jax.device_put(state.primal_state, replicated),
        formulation_states=jax.device_put(state.formulation_states, replicated),
        step=jax.device_put(state.step, replicated),
        skipped=jax.device_put(state.skipped, replicated))


def test_restore_8_devices_onto_1_and_back(tmp_path):
    assert len(jax.devices()) >= 8, "conftest sets 8 simulated CPU devices"
    mesh = jax.make_mesh((8,), ("data",), devices=jax.devices()[:8])
    sharded, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    single = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    state = _trained_state()
    on8 = _placed(state, sharded, replicated)
    assert len(on8.multipliers["samples"].sharding.device_set) == 8
    _save(tmp_path / "eight", [1], {"state": on8})
    target1 = {"state": _placed(schedule_free_fl(16).init(jnp.zeros(3)), single, single)}
    with checkpoint_manager(tmp_path / "eight") as manager:
        on1 = restore_checkpoint(manager, target1).tree["state"]
    assert on1.multipliers["samples"].sharding.device_set == {jax.devices()[0]}
    assert_bit_identical(on1, state)

    _save(tmp_path / "one", [1], {"state": on1})
    target8 = {"state": _placed(schedule_free_fl(16).init(jnp.zeros(3)), sharded, replicated)}
    with checkpoint_manager(tmp_path / "one") as manager:
        back = restore_checkpoint(manager, target8).tree["state"]
    assert back.multipliers["samples"].sharding.is_equivalent_to(sharded, 1)
    assert len(back.dual_states["samples"].inner[1][0].trace.sharding.device_set) == 8
    assert_bit_identical(back, state)


def test_bad_manager_options():
    with pytest.raises(ValueError, match="max_to_keep must be a positive int or None"):
        checkpoint_manager("/tmp/unused", max_to_keep=0)
    with pytest.raises(ValueError, match="save_interval_steps must be a positive int"):
        checkpoint_manager("/tmp/unused", save_interval_steps=0)
