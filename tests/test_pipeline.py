"""The Grain pipeline: minibatches carry their source rows, processes split the rows, augmented
batches are reproducible, and a run over a pipeline resumes bit for bit (kill -9 included)."""
import json
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax.data.pipeline import Pipeline, RandomCropFlip
from tests._helpers import assert_bit_identical, host_leaves, kill_child

N, B = 50, 8


def _rows(n=N):  # every row encodes its own index
    return {"x": np.stack([np.arange(n), -np.arange(n)], 1).astype(np.float32),
            "y": (np.arange(n) % 3).astype(np.int32)}


def test_batches_carry_their_source_rows_and_an_epoch_reads_each_row_once():
    pipe = Pipeline(_rows(), batch_size=B, seed=3)
    assert pipe.steps_per_epoch == N // B
    seen = []
    for batch in pipe.batches(0):
        np.testing.assert_array_equal(batch["x"][:, 0], batch["index"])
        np.testing.assert_array_equal(batch["y"], batch["index"] % 3)
        assert batch["index"].dtype == np.int32 and batch["index"].shape == (B,)
        seen.extend(batch["index"].tolist())
    assert len(seen) == len(set(seen)) == (N // B) * B  # the remainder is left out
    assert [b["index"].tolist() for b in pipe.batches(0)] == [
        b["index"].tolist() for b in Pipeline(_rows(), batch_size=B, seed=3).batches(0)]
    assert seen != [i for b in pipe.batches(1) for i in b["index"].tolist()]  # a new order
    late = list(pipe.batches(0, start=2))  # resuming mid-epoch reads the same batches
    assert [b["index"].tolist() for b in late] == [
        b["index"].tolist() for b in list(pipe.batches(0))[2:]]


def test_grain_sources_and_memmaps_give_the_same_batches(tmp_path):
    rows = _rows()
    np.save(tmp_path / "x.npy", rows["x"])
    np.save(tmp_path / "y.npy", rows["y"])
    mapped = {k: np.load(tmp_path / f"{k}.npy", mmap_mode="r") for k in ("x", "y")}

    class Source:  # Grain's random-access protocol: len and one example per index
        def __len__(self):
            return N

        def __getitem__(self, i):
            return {"x": rows["x"][i], "y": rows["y"][i]}

    reference = list(Pipeline(rows, batch_size=B, seed=1).batches(0))
    for source in (mapped, Source()):
        for a, b in zip(reference, Pipeline(source, batch_size=B, seed=1).batches(0)):
            assert sorted(a) == sorted(b)
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])


def test_two_processes_read_only_their_rows_and_together_every_row_once():
    n = 48
    first, second = (Pipeline(_rows(n), batch_size=4, seed=5, process_index=p,
                              process_count=2) for p in (0, 1))
    assert first.rows == (0, 24) and second.rows == (24, 48)
    rows = [[i for b in pipe.batches(2) for i in b["index"].tolist()] for pipe in (first, second)]
    assert all(0 <= i < 24 for i in rows[0]) and all(24 <= i < 48 for i in rows[1])
    assert sorted(rows[0] + rows[1]) == list(range(n))
    with pytest.raises(ValueError, match=r"process_index must be an int in \[0, process_count\)"):
        Pipeline(_rows(), batch_size=4, process_index=2, process_count=2)
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, 25\]"):
        Pipeline(_rows(), batch_size=26, process_index=0, process_count=2)


def test_augmentation_is_a_padded_crop_or_its_flip_and_is_reproducible():
    images = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5, 1) + 1
    pipe = Pipeline({"x": images, "y": np.zeros(2, np.int32)}, batch_size=2, seed=0,
                    transform=RandomCropFlip(pad=1))
    batch = pipe.epoch(0)[0]
    again = pipe.epoch(0)[0]
    np.testing.assert_array_equal(batch["x"], again["x"])
    for image, row in zip(batch["x"], batch["index"]):
        padded = np.pad(images[row], [(1, 1), (1, 1), (0, 0)])
        crops = [padded[i:i + 5, j:j + 5] for i in range(3) for j in range(3)]
        assert any(np.array_equal(image, c) or np.array_equal(image, c[:, ::-1])
                   for c in crops)
    with pytest.raises(ValueError, match="pad must be an int >= 0"):
        RandomCropFlip(pad=-1)


def _loss(w, batch):
    return (batch["x"] @ w - batch["y"]) ** 2


def _linear(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return {"x": x, "y": (x @ np.array([1.0, -2.0, 0.5], np.float32)).astype(np.float32)}


def _run(directory=None, after_save=None, epochs=3):
    solver = fj.feasible_learning(_loss, optax.sgd(0.05), num_samples=64, epsilon=0.01)
    pipe = Pipeline(_linear(), batch_size=8, seed=4)
    return fj.train(solver, solver.init(jnp.zeros(3)), pipe, epochs=epochs,
                    key=jax.random.key(0), epsilon=0.01, progress=False,
                    checkpoint_dir=directory, checkpoint_every=3, after_save=after_save)


def test_training_over_a_pipeline_learns_and_resumes_bit_for_bit(tmp_path):
    state, hist = _run()
    assert len(hist.mean_loss) == 3 and hist.mean_loss[-1] < hist.mean_loss[0]
    assert int(state.step) == 24 and hist.skipped[-1] == 0

    class Stop(Exception):
        pass

    def stop(step):
        if step == 11:  # mid-epoch 1 (8 steps an epoch, chunks of 3: saves at 3 6 11 14 16 ...)
            raise Stop

    with pytest.raises(Stop):
        _run(tmp_path / "ck", after_save=stop)
    resumed, resumed_hist = _run(tmp_path / "ck")
    uninterrupted, hist_ck = _run(tmp_path / "whole")
    assert_bit_identical(resumed, uninterrupted)
    assert resumed_hist == hist_ck
    with pytest.raises(ValueError, match="a Pipeline trains on one device and one run"):
        fj.train(lambda c, b, i: (c, {}), 0.0, Pipeline(_linear(), batch_size=8), epochs=1,
                 key=jax.random.key(0), runs=2)


CHILD = """
state, _ = t._run(directory, after_save=after_save)
np.savez(out, **host_leaves(state))
print("done", flush=True)
"""


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_run(tmp_path):
    def child(die_after):
        return kill_child(tmp_path, "test_pipeline", CHILD, die_after=die_after)[0]

    out = str(tmp_path / "final.npz")
    killed = child(11)  # epoch 1, step 3 (chunks of 3 within 8-step epochs)
    assert killed.returncode == -signal.SIGKILL and "saved 11" in killed.stdout
    finished = child(-1)
    assert finished.returncode == 0 and "done" in finished.stdout, finished.stderr[-2000:]
    assert "saved 3\n" not in finished.stdout
    expected = host_leaves(_run(tmp_path / "whole")[0])
    final = np.load(out)
    for name in expected:
        np.testing.assert_array_equal(final[name], expected[name], err_msg=name, strict=True)


_PROCESS_SCRIPT = """
import json, sys
import numpy as np
import feasjax as fj
from feasjax.data.pipeline import Pipeline

fj.parallel.initialize()  # the launcher's FEASJAX_* variables: 2 processes on 127.0.0.1
import jax

class Recording:  # Grain's random-access protocol, remembering every row it was asked for
    def __init__(self, n):
        self.n, self.read = n, set()
    def __len__(self):
        return self.n
    def __getitem__(self, i):
        self.read.add(int(i))
        return {"x": np.array([i, -i], np.float32), "y": np.int32(i % 3)}

source = Recording(48)
pipe = Pipeline(source, batch_size=4, seed=5)  # process index and count from jax
batches = [b["index"].tolist() for b in pipe.batches(2)]
out = {"process": jax.process_index(), "count": jax.process_count(), "rows": list(pipe.rows),
       "read": sorted(source.read), "indices": [i for b in batches for i in b]}
with open(f"{sys.argv[1]}.{jax.process_index()}.json", "w") as f:
    json.dump(out, f)
"""


@pytest.mark.slow
def test_two_real_processes_read_only_their_rows_and_together_every_row_once(tmp_path):
    from feasjax.parallel.launch import launch

    script = tmp_path / "worker.py"
    script.write_text(_PROCESS_SCRIPT)
    codes = launch([str(script), str(tmp_path / "out")], processes=2, timeout=600)
    assert codes == [0, 0]
    got = [json.loads((tmp_path / f"out.{p}.json").read_text()) for p in (0, 1)]
    assert [(g["process"], g["count"]) for g in got] == [(0, 2), (1, 2)]
    assert [g["rows"] for g in got] == [[0, 24], [24, 48]]
    for g in got:  # each process touched only its own block, and read it whole
        assert g["read"] == list(range(*g["rows"]))
        assert sorted(g["indices"]) == g["read"]
    assert sorted(got[0]["indices"] + got[1]["indices"]) == list(range(48))
