"""Recovery from damaged checkpoints, and resumes that must refuse (other data, fewer epochs).

A run is stopped after a few checkpoints, its latest one is damaged in one of the ways a disk or
a killed copy does it, and the resumed run must end bit-identical to an uninterrupted one, with
the damaged step moved aside (never deleted) and the readable ones untouched.
"""
import hashlib
import pathlib
import shutil
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from feasjax.training.checkpoint import checkpoint_manager, restore_checkpoint, save_checkpoint
from feasjax.training.resume import train_resumable
from feasjax.training.run_checkpoints import data_fingerprint
from tests._helpers import assert_bit_identical, kill_child, linear_data, schedule_free_fl

N, D, B, EPOCHS, EVERY = 30, 3, 4, 3, 2  # 7 steps an epoch; saves at 2 4 6 9 11 13 14 ... 21
STOP = 9  # the stopped run's latest checkpoint (epoch 1, step 2); the previous one is 6


def _data(shift=0.0):
    return linear_data(N, D, shift=shift)


# One solver for the whole module: its compiled chunks are reused by every run.
SOLVER = schedule_free_fl(N)


class Stop(Exception):
    pass


def _run(directory, *, stop_at=None, data=None, **kw):
    def after_save(step):
        if step == stop_at:
            raise Stop
    kw = dict(dict(epochs=EPOCHS, batch_size=B, key=jax.random.key(3), epsilon=0.1,
                   progress=False, checkpoint_dir=directory, checkpoint_every=EVERY,
                   max_to_keep=None, after_save=after_save), **kw)
    return train_resumable(SOLVER, SOLVER.init(jnp.zeros(D)), _data() if data is None else data,
                           **kw)


def _stopped(directory, stop_at=STOP, **kw):
    with pytest.raises(Stop):
        _run(directory, stop_at=stop_at, **kw)


def _steps(directory):
    return sorted(int(p.name) for p in pathlib.Path(directory).iterdir() if p.name.isdigit())


def _quarantined(directory, step):
    return sorted(p for p in pathlib.Path(directory).iterdir()
                  if p.name.startswith(f"{step}.corrupt-") and p.is_dir())


def _snapshot(step_dir):
    return {str(p.relative_to(step_dir)): p.read_bytes() for p in sorted(step_dir.rglob("*"))
            if p.is_file()}


def _data_files(step_dir):
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files
    return files


def _damage(step_dir: pathlib.Path, how: str) -> None:
    state = step_dir / "state"
    if how == "truncated_state_files":
        for f in _data_files(step_dir):
            f.write_bytes(f.read_bytes()[:3])
    elif how == "deleted_state_files":
        for f in _data_files(step_dir):
            f.unlink()
    elif how == "deleted_state_dir":
        shutil.rmtree(state)
    elif how == "removed_ocdbt_data":
        shutil.rmtree(state / "ocdbt.process_0")
        shutil.rmtree(state / "d")
        (state / "manifest.ocdbt").unlink()
    elif how == "deleted_METADATA":
        (state / "_METADATA").unlink()
    elif how == "garbage_METADATA":
        (state / "_METADATA").write_bytes(b"\x8b\x00 not a tree {")
    elif how == "garbage_json_meta":
        (step_dir / "meta" / "metadata").write_text('{"config": ')
    elif how == "json_meta_without_keys":  # what once gave KeyError: 'config'
        (step_dir / "meta" / "metadata").write_text("{}")
    elif how == "empty_step_dir":
        shutil.rmtree(step_dir)
        step_dir.mkdir()
    else:
        raise AssertionError(how)


DAMAGES = ["truncated_state_files", "deleted_state_files", "deleted_state_dir",
           "removed_ocdbt_data", "deleted_METADATA", "garbage_METADATA", "garbage_json_meta",
           "json_meta_without_keys", "empty_step_dir"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run with the same checkpoint_every; its state, history, saved steps."""
    directory = tmp_path_factory.mktemp("reference")
    state, hist = _run(directory)
    return state, hist, _steps(directory)


@pytest.mark.parametrize("how", DAMAGES)
def test_resume_past_a_damaged_latest_checkpoint_is_bit_identical(tmp_path, reference, how):
    _stopped(tmp_path)
    assert _steps(tmp_path) == [2, 4, 6, STOP]
    _damage(tmp_path / str(STOP), how)
    readable = {s: _snapshot(tmp_path / str(s)) for s in (2, 4, 6)}
    with pytest.warns(UserWarning, match=rf"checkpoint {STOP} in .* cannot be read .*; moved it "
                                         rf"to .*{STOP}\.corrupt-[-0-9]+; falling back to "
                                         rf"checkpoint 6"):
        state, hist = _run(tmp_path)  # once: StepAlreadyExistsError when step 9 came again
    assert_bit_identical(state, reference[0])
    assert hist == reference[1]
    assert _steps(tmp_path) == reference[2]  # step 9 saved again, none of the others lost
    for s, files in readable.items():  # the readable checkpoints were not touched
        assert _snapshot(tmp_path / str(s)) == files
    assert len(_quarantined(tmp_path, STOP)) == 1  # kept, out of Orbax's view


def test_only_checkpoint_damaged_starts_from_scratch_after_moving_it_aside(tmp_path, reference):
    _stopped(tmp_path, stop_at=2)
    _damage(tmp_path / "2", "truncated_state_files")
    before = set(threading.enumerate())
    with pytest.warns(UserWarning, match=r"checkpoint 2 .* cannot be read .*moved it to .*"
                                         r"2\.corrupt-") as record:
        state, hist = _run(tmp_path)
    assert any("starting from scratch" in str(w.message) for w in record)
    assert_bit_identical(state, reference[0])
    assert hist == reference[1] and _steps(tmp_path) == reference[2]
    assert len(_quarantined(tmp_path, 2)) == 1
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


def _killed_saves(directory, count=40):
    for i in range(count):  # what saves killed midway leave for Orbax to clean up
        data = pathlib.Path(directory) / f"{100 + i}.orbax-checkpoint-tmp" / "state" / "d"
        data.mkdir(parents=True)
        for j in range(10):
            (data / str(j)).write_bytes(b"x")


def test_no_thread_outlives_a_failed_resume(tmp_path):
    _run(tmp_path, epochs=1, config={"lr": 0.05})
    before = set(threading.enumerate())
    _killed_saves(tmp_path)
    with pytest.raises(ValueError, match="already holds checkpoints"):  # fails at once
        _run(tmp_path, resume=False)
    with pytest.raises(ValueError, match="another configuration"):
        _run(tmp_path, config={"lr": 0.1})
    with pytest.raises(Stop):  # a failure in the middle of training
        _run(tmp_path / "other", stop_at=4, progress=True)  # its bar is closed too
    # A thread that is ending (Orbax's executor, on a loaded machine) gets a few seconds; one
    # that leaked never ends.
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


def test_a_failed_resume_exits_cleanly(tmp_path):
    # Orbax cleans up the tmp directories of killed saves in a thread; a run that failed
    # before any save left it running into interpreter shutdown, which printed "RuntimeError:
    # cannot schedule new futures after interpreter shutdown".
    directory = tmp_path / "ckpt"
    _run(directory, epochs=1)
    _killed_saves(directory)
    proc, _ = kill_child(tmp_path, "test_checkpoint_recovery", "try:\n"
                         "    t._run(directory, resume=False)\n"
                         "except ValueError:\n"
                         "    print('refused', flush=True)\n")
    assert proc.returncode == 0 and "refused" in proc.stdout, proc.stderr[-2000:]
    assert "cannot schedule new futures" not in proc.stderr, proc.stderr[-2000:]
    assert not list(directory.glob("*.orbax-checkpoint-tmp"))  # cleaned up before exiting


def test_restore_quarantines_only_unreadable_steps_newer_than_the_restored_one(tmp_path):
    with checkpoint_manager(tmp_path, max_to_keep=None, async_save=False) as manager:
        for step in (1, 2, 3, 4):
            save_checkpoint(manager, step, {"w": jnp.full(8, float(step))}, meta={"k": step})
    _damage(tmp_path / "4", "truncated_state_files")
    _damage(tmp_path / "3", "json_meta_without_keys")
    _damage(tmp_path / "1", "empty_step_dir")  # older than the restored one: never looked at
    with checkpoint_manager(tmp_path) as manager:
        with pytest.raises(ValueError, match="leaf 'w'"):  # a wrong target moves nothing
            restore_checkpoint(manager, {"w": jnp.zeros(9)}, quarantine=True)
        assert _steps(tmp_path) == [1, 2, 3, 4]
        with pytest.warns(UserWarning) as record:
            restored = restore_checkpoint(manager, {"w": jnp.zeros(8)}, required_meta=["k"],
                                          quarantine=True)
        assert restored.step == 2 and restored.meta == {"k": 2}
        assert manager.all_steps() == [1, 2]  # reloaded: steps 3 and 4 can be saved again
        save_checkpoint(manager, 3, {"w": jnp.zeros(8)}, meta={"k": 3})
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and "lacks the keys ['k']" in messages[1]
    assert _steps(tmp_path) == [1, 2, 3]
    assert len(_quarantined(tmp_path, 4)) == len(_quarantined(tmp_path, 3)) == 1


def test_meta_is_saved_as_it_was_when_save_was_called(tmp_path):
    # The JSON is written in the background; a history appended to right after the save once
    # leaked into it, so a resume from that checkpoint counted an epoch twice.
    history = {"mean_loss": [1.0]}
    with checkpoint_manager(tmp_path) as manager:  # asynchronous saves
        save_checkpoint(manager, 1, {"w": jnp.zeros(1 << 16)}, meta={"history": history})
        history["mean_loss"].append(2.0)  # the next epoch ends while the save is written
        restored = restore_checkpoint(manager, {"w": jnp.zeros(1 << 16)})
        assert restored.meta == {"history": {"mean_loss": [1.0]}}
        with pytest.raises(TypeError, match="not JSON serializable"):  # at once, not later
            save_checkpoint(manager, 2, {"w": jnp.zeros(1)}, meta={"bad": object()})


def test_resume_with_other_data_or_settings_names_what_differs(tmp_path):
    _stopped(tmp_path, stop_at=4)
    listing = sorted(p.name for p in tmp_path.iterdir())
    other = r"another configuration \({}\); use another checkpoint directory, or do not resume"
    with pytest.raises(ValueError, match=other.format(
            r"data fingerprint of 'y' differs: saved sha256 [0-9a-f]{12}\.\.\., now "
            r"[0-9a-f]{12}\.\.\.")):
        _run(tmp_path, data=_data(shift=1.0))  # same names and shapes, other values
    with pytest.raises(ValueError, match=r"data leaf 'z' only now"):
        _run(tmp_path, data=dict(_data(), z=jnp.zeros(N)))
    with pytest.raises(ValueError, match=other.format(r"key: saved \[0, 3\], now \[0, 4\]")):
        _run(tmp_path, key=jax.random.key(4))
    with pytest.raises(ValueError, match=other.format(r"epsilon: saved 0.1, now 0.2")):
        _run(tmp_path, epsilon=0.2)
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # nothing moved or saved


def test_data_fingerprint_is_exact():
    x = np.arange(1001, dtype=np.float32).reshape(7, 143)
    whole = hashlib.sha256(x.tobytes()).hexdigest()
    assert data_fingerprint({"x": x, "y": jnp.asarray(x)}) == {
        "x": {"shape": [7, 143], "dtype": "float32", "sha256": whole},
        "y": {"shape": [7, 143], "dtype": "float32", "sha256": whole}}
    assert data_fingerprint(x.astype(jnp.bfloat16))["data"]["dtype"] == "bfloat16"


def test_fewer_epochs_than_the_checkpoint_raises_the_same_returns_it(tmp_path):
    finished, hist = _run(tmp_path / "two", epochs=2)
    with pytest.raises(ValueError, match=r"the checkpoint in .*two has finished 2 epochs, more "
                                         r"than epochs=1: pass epochs >= 2"):
        _run(tmp_path / "two", epochs=1)
    listing = _steps(tmp_path / "two")
    again, again_hist = _run(tmp_path / "two", epochs=2)  # a finished run: nothing to train
    assert_bit_identical(again, finished)
    assert again_hist == hist and _steps(tmp_path / "two") == listing

    _stopped(tmp_path / "mid", stop_at=STOP)  # epoch 1 and 2 steps of epoch 2
    with pytest.raises(ValueError, match=r"has finished 1 epoch and 2 steps of the next, more "
                                         r"than epochs=1: pass epochs >= 2"):
        _run(tmp_path / "mid", epochs=1)
