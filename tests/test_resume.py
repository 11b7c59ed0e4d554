"""Exact resume: chunked runs equal whole epochs, and killed runs resume bit for bit."""
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import feasjax as fj
from feasjax.training.loop import chunk_fn
from feasjax.training.resume import train_resumable
from tests._helpers import (assert_bit_identical, host_leaves, kill_child, linear_data,
                            schedule_free_fl, squared_errors)

N, D, B, EPOCHS = 30, 3, 4, 3  # 7 steps per epoch (2 samples left out each epoch)
EVERY = 2  # chunks of 2, 2, 2, 1 steps per epoch


def _losses(w, batch):
    return squared_errors(w, batch) + 0.0 * batch["poison"]


def _data(poison_at=None):
    poison = jnp.zeros(N) if poison_at is None else jnp.zeros(N).at[poison_at].set(jnp.nan)
    return {**linear_data(N, D), "poison": poison}


def _solver():
    return schedule_free_fl(N, _losses)


def _run(directory=None, data=None, **kw):
    solver = _solver()
    kw = dict(dict(epochs=EPOCHS, batch_size=B, key=jax.random.key(3), epsilon=0.1,
                   progress=False, checkpoint_dir=directory, checkpoint_every=EVERY), **kw)
    return train_resumable(solver, solver.init(jnp.zeros(D)), _data() if data is None else data,
                           **kw)


@pytest.fixture(scope="module")
def reference():
    """An uninterrupted run without checkpoints, through feasjax.train (whole epochs)."""
    solver = _solver()
    state, hist = fj.train(solver, solver.init(jnp.zeros(D)), _data(), epochs=EPOCHS,
                           batch_size=B, key=jax.random.key(3), epsilon=0.1, progress=False)
    return state, hist


def test_chunks_equal_a_whole_epoch_bit_for_bit():
    solver, data, key = _solver(), _data(), jax.random.key(5)
    whole, info = jax.jit(fj.epoch_fn(solver, B))(solver.init(jnp.zeros(D)), data, key)
    batches = fj.epoch_indices(key, N, B)
    state = solver.init(jnp.zeros(D))
    losses = []
    for start, length in ((0, 3), (3, 3), (6, 1)):
        state, chunk = jax.jit(chunk_fn(solver, length))(state, data, batches, start)
        losses.append(chunk.losses)
    assert_bit_identical(state, whole)
    np.testing.assert_array_equal(np.concatenate(losses), info.losses)


def test_chunk_fn_rejects_bad_length():
    with pytest.raises(ValueError, match="length must be a positive int, got length=0"):
        chunk_fn(_solver(), 0)


def test_checkpointed_run_equals_train(tmp_path, reference):
    state, hist = _run(tmp_path, max_to_keep=None)
    assert_bit_identical(state, reference[0])
    assert int(state.step) == EPOCHS * 7 and int(state.primal_state.step_count) == EPOCHS * 7 + 1
    np.testing.assert_allclose(hist.mean_loss, reference[1].mean_loss, rtol=1e-6)
    # at the first chunk end past every multiple of 2 steps (chunks never cross an epoch:
    # 2, 4, 6, 7 | 9, 11, 13, 14 | ...), and at the end
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == [2, 4, 6, 9, 11, 13, 14, 16,
                                                               18, 20, 21]


def test_resume_from_every_saved_step_is_bit_identical(tmp_path, reference):
    full = tmp_path / "full"
    _, hist = _run(full, max_to_keep=None)
    for step in (6, 14):  # one step before an epoch's end, at an epoch's end
        partial = tmp_path / f"from{step}"
        partial.mkdir()
        shutil.copytree(full / str(step), partial / str(step))
        state, resumed_hist = _run(partial)
        assert_bit_identical(state, reference[0])
        assert resumed_hist == hist  # history of the epochs before the checkpoint restored


def test_resume_refuses_another_configuration_or_a_used_directory(tmp_path):
    _run(tmp_path, epochs=1, config={"lr": 0.05})
    with pytest.raises(ValueError, match=r"another configuration \(lr: saved 0.05, now 0.1\)"):
        _run(tmp_path, config={"lr": 0.1})
    with pytest.raises(ValueError, match="already holds checkpoints"):
        _run(tmp_path, resume=False, config={"lr": 0.05})


def test_injected_nan_is_skipped_and_counted(tmp_path):
    key, skip_step = jax.random.key(3), 4
    poisoned = int(fj.epoch_indices(jax.random.fold_in(key, 0), N, B)[skip_step, 1])
    state, hist = _run(tmp_path, data=_data(poisoned), epochs=1)
    assert int(state.skipped) == 1 and hist.skipped == [1]
    assert bool(jnp.all(jnp.isfinite(state.multipliers["samples"])))
    # The same as running the epoch step by step and leaving out that step.
    solver, data = _solver(), _data()
    expected = solver.init(jnp.zeros(D))
    for s, idx in enumerate(fj.epoch_indices(jax.random.fold_in(key, 0), N, B)):
        if s != skip_step:
            expected, _ = solver.step(expected, jax.tree.map(lambda a: a[idx], data), idx)
    np.testing.assert_allclose(state.params, expected.params, rtol=1e-6)
    np.testing.assert_allclose(state.multipliers["samples"], expected.multipliers["samples"],
                               rtol=1e-6)
    with pytest.raises(FloatingPointError, match=rf"epoch 0, step {skip_step} \(global step "
                                                 rf"{skip_step}\).*sample indices \[{poisoned}\]"):
        _run(tmp_path / "raise", data=_data(poisoned), on_nonfinite="raise")


CHILD = """
state, hist = t._run(directory, after_save=after_save)
np.savez(out, **host_leaves(state))
with open(out + ".json", "w") as f:
    json.dump(hist._asdict(), f)
print("done", flush=True)
"""


def _child(tmp_path, die_after=-1):
    return kill_child(tmp_path, "test_resume", CHILD, die_after=die_after, wait=False)


def _limit(seconds: float) -> float:
    """A wall-clock limit that only catches hangs: generous, scaled by
    ``FEASJAX_TEST_TIMEOUT_SCALE`` on slow or loaded machines."""
    return seconds * float(os.environ.get("FEASJAX_TEST_TIMEOUT_SCALE", "1"))


def _output(proc) -> str:
    """The child's whole stdout once it exits; one that hangs is killed after a long limit."""
    try:
        return proc.communicate(timeout=_limit(600))[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the child did not finish within {_limit(600):.0f} s")


def _check_final(out, reference):
    final = np.load(out)
    expected = host_leaves(reference[0])
    assert sorted(final.files) == sorted(expected)
    for k in expected:
        np.testing.assert_array_equal(final[k], expected[k], err_msg=k, strict=True)


@pytest.mark.slow
def test_kill_9_during_an_async_save_then_resume(tmp_path, reference):
    die_after = random.Random(0).choice([4, 9, 13, 18])
    proc, out = _child(tmp_path, die_after)
    lines = _output(proc).split()
    assert proc.wait() == -signal.SIGKILL and "done" not in lines
    proc, out = _child(tmp_path)
    assert "done" in _output(proc) and proc.wait() == 0
    _check_final(out, reference)
    _, hist = _run(tmp_path / "uninterrupted")
    assert json.load(open(out + ".json")) == json.loads(json.dumps(hist._asdict()))


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume(tmp_path, reference):
    rng = random.Random(1)
    for _ in range(2):  # two kills at random points, then run to the end
        proc, out = _child(tmp_path)
        target, seen = rng.randint(1, 9), 0
        # Progress is polled (the saves the child reports), never timed; the watchdog only
        # ends a child that hangs.
        watchdog = threading.Timer(_limit(600), proc.kill)
        watchdog.start()
        try:
            while seen < target:
                line = proc.stdout.readline()
                if not line or line.startswith("done"):
                    break
                seen += 1
        finally:
            watchdog.cancel()
        time.sleep(rng.uniform(0, 0.02))  # anywhere in the next chunk or save
        proc.send_signal(signal.SIGKILL)
        _output(proc)
    proc, out = _child(tmp_path)
    assert "done" in _output(proc) and proc.wait() == 0
    _check_final(out, reference)
    assert not any(p.name.endswith("tmp") for p in (tmp_path / "ckpt").iterdir())
    assert os.path.exists(out)
