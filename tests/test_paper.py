"""``feasjax paper``: the paper's presets, the command's outputs, its errors and its logging."""
from __future__ import annotations

import glob
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from feasjax.cli import main
from feasjax.experiments.presets import PRESETS, override

FAST = ["--no-progress", "--no-compile-cache"]


def test_presets_follow_the_papers_code():
    moons, cifar, utk = (PRESETS[k] for k in ("two_moons", "cifar10_resnet18", "utkface_resnet18"))
    assert moons.epsilon == pytest.approx(math.log(1 / 0.6))
    assert (moons.hidden, moons.epochs, moons.batch_size, moons.num_train) == ((70, 70), 250,
                                                                              512, 512)
    assert (cifar.learning_rate, cifar.momentum, cifar.weight_decay, cifar.schedule) == (
        0.1, 0.9, 5e-4, "cosine")
    assert (cifar.dual_learning_rate, cifar.cserm_learning_rate, cifar.init_multiplier) == (
        1e-4, 0.01, 0.0)
    assert (utk.task, utk.epsilon, utk.dual_learning_rate, utk.epochs) == ("regression", 0.02,
                                                                          1e-3, 150)
    assert all(p.rfl_alpha == 1.0 for p in PRESETS.values())


def test_override_parses_by_field_type_and_names_bad_keys():
    new = override(PRESETS["two_moons"], ["epochs=3", "hidden=8,8", "num_train=64", "p=0.9"])
    assert (new.epochs, new.hidden, new.num_train, new.p) == (3, (8, 8), 64, 0.9)
    with pytest.raises(ValueError, match="key one of"):
        override(PRESETS["two_moons"], ["nope=1"])


def _error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return str(e.value.code)


def test_help_and_parsing_import_no_jax():
    code = ("import sys\nfrom feasjax.cli.app import build_parser\n"
            "build_parser().parse_args(['paper', 'cifar10_resnet18', '--set', 'width=8'])\n"
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_missing_data_dir_is_a_one_line_error(tmp_path, capsys):
    message = _error(["paper", "cifar10_resnet18", "--data-dir", str(tmp_path)], capsys)
    assert message.startswith("feasjax paper: error: cifar10_resnet18 reads its data from "
                              "--data-dir DIR, which must hold x_train.npy")
    assert "\n" not in message and "lacks x_train.npy" in message
    assert "no --data-dir given" in _error(["paper", "utkface_resnet18"], capsys)


def test_bad_set_and_missing_tensorboardx_are_one_line_errors(monkeypatch, capsys, tmp_path):
    assert _error(["paper", "two_moons", "--set", "bogus=1"], capsys).startswith(
        "feasjax paper: error: --set takes key=value")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboardX" else real(name, *a))
    message = _error(["paper", "two_moons", "--logdir", str(tmp_path)], capsys)
    assert message.startswith("feasjax paper: error: --logdir needs tensorboardX")
    assert 'feasjax[tensorboard]' in message


def test_two_moons_json_plots_and_schema(tmp_path, capsys):
    path = tmp_path / "moons.json"
    main(["paper", "two_moons", "--seeds", "0-1", "--methods", "erm,cserm,fl,rfl",
          "--set", "epochs=30", "--json", str(path), "--plot", str(tmp_path / "m.png"), *FAST])
    report = json.loads(path.read_text())
    assert report["preset"] == "two_moons" and report["seeds"] == [0, 1]
    assert set(report["methods"]) == {"erm", "cserm", "fl", "rfl"}
    for res in report["methods"].values():
        for key in ("max_loss", "q99_loss", "accuracy"):
            assert len(res["train"][key]) == 2 and all(np.isfinite(res["train"][key]))
        assert len(res["test"]["accuracy"]) == 2 and res["seconds"] > 0
    assert (tmp_path / "m.png").is_file() and (tmp_path / "m-boundaries.png").is_file()


def test_cifar10_preset_runs_on_cifar_shaped_arrays(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("test", 32)):
        np.save(tmp_path / f"x_{split}.npy", rng.integers(0, 256, (n, 32, 32, 3), np.uint8))
        np.save(tmp_path / f"y_{split}.npy", rng.integers(0, 10, n))
    path = tmp_path / "cifar.json"
    report = main(["paper", "cifar10_resnet18", "--data-dir", str(tmp_path), "--seeds", "0",
                   "--methods", "fl", "--set", "width=4", "--set", "epochs=2", "--set",
                   "batch_size=32", "--json", str(path), *FAST])
    assert report == 0
    res = json.loads(path.read_text())["methods"]["fl"]
    assert np.isfinite(res["train"]["max_loss"][0]) and 0 <= res["test"]["accuracy"][0] <= 1


def _reader():
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        pytest.skip("neither tensorboard's EventAccumulator is installed (pip install "
                    "tensorboard) to read the event files back")
    pytest.importorskip("tensorboardX", reason="--logdir needs feasjax[tensorboard]")
    return EventAccumulator


def test_logdir_writes_event_files_tensorboard_reads(tmp_path):
    accumulator = _reader()
    main(["paper", "two_moons", "--seeds", "0", "--methods", "erm,fl", "--set", "epochs=3",
          "--logdir", str(tmp_path), *FAST])
    files = glob.glob(os.path.join(tmp_path, "fl", "seed0", "events.out.tfevents.*"))
    assert files
    acc = accumulator(os.path.dirname(files[0]), size_guidance={"histograms": 0}).Reload()
    tags = acc.Tags()
    for tag in ("train/max_loss", "train/q99_loss", "train/mean_loss", "train/feasible_fraction",
                "multipliers/mean", "multipliers/max", "multipliers/q90", "learning_rate",
                "skipped_steps"):
        assert tag in tags["scalars"], tag
        assert [e.step for e in acc.Scalars(tag)] == [1, 2, 3]
    assert {"multipliers", "train/losses"} <= set(tags["histograms"])
    erm = accumulator(os.path.join(tmp_path, "erm", "seed0")).Reload()
    assert "multipliers/mean" not in erm.Tags()["scalars"]


def test_utkface_converter_parses_ages_splits_and_standardises(tmp_path):
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location(
        "utkface_to_npy", os.path.join(os.path.dirname(__file__), "..", "scripts",
                                       "utkface_to_npy.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    source = tmp_path / "UTKFace"
    source.mkdir()
    ages = list(range(10, 50))
    for i, age in enumerate(ages):
        Image.new("RGB", (20, 24), (i, 2 * i, 3 * i)).save(source / f"{age}_0_1_2017{i:05d}.jpg")
    (source / "bad_name.jpg").write_bytes(b"")  # skipped: not [age]_[gender]_[race]_[date]
    sizes = script.convert(str(source), str(tmp_path / "out"), size=8, seed=0)
    assert sizes == {"train": 8, "test": 8}  # 32 / 4 training, 8 test
    x, y = (np.load(tmp_path / "out" / f) for f in ("x_train.npy", "y_train.npy"))
    assert x.shape == (8, 8, 8, 3) and x.dtype == np.uint8 and y.dtype == np.float32
    assert set(np.round(y * script.AGE_STD + script.AGE_MEAN).astype(int)) <= set(ages)
