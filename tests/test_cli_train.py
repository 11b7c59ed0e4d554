"""``feasjax train`` on user files: reproduces the demo, checkpoints and resumes, rejects bad files."""
import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from feasjax import cli
from feasjax.experiments import runs


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    x, y = load_digits(return_X_y=True)
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, x=x, y=y, group=(y % 3))
    return path


def _main(argv):
    assert cli.main(argv) == 0


def test_train_reproduces_demo_fl_metrics(tmp_path, digits_npz, capsys):
    common = ["--methods", "fl", "--epochs", "2", "--no-progress"]
    # feasjax train runs on one device; the demo would use all 8 simulated ones by default.
    _main(["demo", *common, "--devices", "1", "--json", str(tmp_path / "demo.json")])
    _main(["train", "--data", str(digits_npz), *common, "--json", str(tmp_path / "train.json"),
           "--save-losses", str(tmp_path / "losses.npz")])
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'losses.npz'}: per-sample losses, multipliers and split " in out
    demo, train = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("demo", "train"))
    assert train["dataset"] == "digits" and train["epsilon"] == demo["epsilon"]
    fl, ref = train["methods"]["fl"], demo["methods"]["fl"]
    assert fl["skipped_steps"] == 0 == ref["skipped_steps"]
    for split in ("train", "test"):
        extra = fl[split].pop("worst_group_mean_loss")
        assert extra >= fl[split]["mean_loss"]
        assert fl[split] == ref[split]  # bit-identical: same split, init, order and steps
    saved = np.load(tmp_path / "losses.npz")
    assert saved["fl_train_losses"].shape == (1257,) == saved["fl_multipliers"].shape
    assert saved["fl_test_losses"].shape == (540,)
    np.testing.assert_allclose(saved["fl_train_losses"].mean(), fl["train"]["mean_loss"],
                               rtol=1e-5)
    index = np.concatenate([saved["train_index"], saved["test_index"]])
    np.testing.assert_array_equal(np.sort(index), np.arange(1797))
    np.testing.assert_array_equal(saved["group_train"], load_digits().target[
        saved["train_index"]] % 3)


def test_train_checkpoints_and_resumes(tmp_path, digits_npz, capsys):
    base = ["train", "--data", str(digits_npz), "--methods", "rfl", "--epochs", "2",
            "--batch-size", "256", "--no-progress", "--checkpoint-dir", str(tmp_path / "ck"),
            "--checkpoint-every", "3"]
    _main([*base, "--json", str(tmp_path / "a.json")])
    assert f"wrote {tmp_path / 'ck' / 'rfl'}: checkpoints of rfl" in capsys.readouterr().out
    assert sorted(int(p.name) for p in (tmp_path / "ck" / "rfl").iterdir()) == [3, 7, 8]  # 4 steps an epoch
    with pytest.raises(SystemExit, match="already holds checkpoints"):
        cli.main(base)
    with pytest.raises(SystemExit, match=r"another configuration \(alpha: saved 5.0, now 2.0"):
        cli.main([*base, "--resume", "--alpha", "2"])
    _main([*base, "--resume", "--json", str(tmp_path / "b.json")])  # finished: restore only
    a, b = (json.loads((tmp_path / f"{k}.json").read_text()) for k in "ab")
    assert a["methods"]["rfl"]["train"] == b["methods"]["rfl"]["train"]


def test_diverging_run_skips_and_counts_or_raises(tmp_path, digits_npz):
    base = ["train", "--data", str(digits_npz), "--methods", "fl", "--epochs", "1",
            "--no-progress", "--lr", "1e30", "--batch-size", "256"]
    _main([*base, "--json", str(tmp_path / "r.json"), "--save-losses", str(tmp_path / "l.npz")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["methods"]["fl"]["skipped_steps"] > 0
    assert np.isfinite(np.load(tmp_path / "l.npz")["fl_multipliers"]).all()
    with pytest.raises(SystemExit, match=r"fl: epoch 0, step \d+ \(global step \d+\): "
                                         r"non-finite.*sample indices \[\d+"):
        cli.main([*base, "--on-nonfinite", "raise"])


def _bad(tmp_path, name, **arrays):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return ["train", "--data", str(path), "--no-progress"]


X, Y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2


@pytest.mark.parametrize("arrays, message", [
    (dict(x=X), r"has no array 'y' \(found \['x'\]\)"),
    (dict(x=X, y=Y[:30]), r"y must have one entry per sample of x \(40\)"),
    (dict(x=np.where(np.arange(40)[:, None] == 7, np.nan, X), y=Y),
     r"x must be finite, got nan or inf in 1 samples \(first at index 7\)"),
    (dict(x=X, y=Y - 1), r"y labels must be >= 0, got minimum -1"),
    (dict(x=X, y=Y + 0.5), r"y must hold integer class labels"),
    (dict(x=X.astype(str), y=Y), r"x must hold real numbers, got dtype <U"),
    (dict(x=X, y=Y, group=np.arange(39)), r"group must have one entry per sample of x"),
])
def test_bad_files_fail_before_training(tmp_path, monkeypatch, arrays, message):
    monkeypatch.setattr(runs, "run_method", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit, match=message):
        cli.main(_bad(tmp_path, "bad", **arrays))


def test_bad_npy_and_num_classes(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "run_method", lambda *a, **k: pytest.fail("training started"))
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y * 3)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 40, dtype=object))
    x, y = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    with pytest.raises(SystemExit, match=r"labels must be in \[0, 2\) for num_classes=2, got max 3"):
        cli.main(["train", "--x", x, "--y", y, "--num-classes", "2"])
    with pytest.raises(SystemExit, match=r"y: cannot read .*obj.npy"):
        cli.main(["train", "--x", x, "--y", str(tmp_path / "obj.npy")])
    with pytest.raises(SystemExit, match=r"either an .npz file \(--data\) or .npy files"):
        cli.main(["train"])
    with pytest.raises(SystemExit, match="cannot read .*missing.npz"):
        cli.main(["train", "--data", str(tmp_path / "missing.npz")])
