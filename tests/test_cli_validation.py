"""Bad flags and unwritable outputs fail in one line before any training starts."""
import pytest

from feasjax import cli
from feasjax.experiments import runs


@pytest.mark.parametrize("flags, match", [
    (["--lr", "nan"], "argument --lr: must be a finite number > 0"),
    (["--lr", "inf"], "argument --lr: must be a finite number > 0"),
    (["--lr", "-1"], "argument --lr: must be a finite number > 0"),
    (["--dual-lr", "-1"], "argument --dual-lr: must be a finite number > 0"),
    (["--dual-lr", "nan"], "argument --dual-lr: must be a finite number > 0"),
    (["--alpha", "0"], "argument --alpha: must be a finite number > 0"),
    (["--epsilon", "inf"], "argument --epsilon: must be a finite number >= 0"),
])
def test_bad_numbers_are_refused_by_the_parser(flags, match, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--no-progress", *flags])
    assert exit_info.value.code == 2
    assert match in capsys.readouterr().err


def test_bad_momentum_and_test_fraction_are_refused(capsys, tmp_path):
    for flags, match in ((["--momentum", "1.5"], "argument --momentum: must be a number in"),
                         (["--test-fraction", "1"], "argument --test-fraction: must be a")):
        with pytest.raises(SystemExit):
            cli.main(["train", "--data", str(tmp_path / "d.npz"), *flags])
        assert match in capsys.readouterr().err


def _fails_before_training(argv, match, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started before the bad flag was reported")

    # The commands import run_method from its module when they run.
    monkeypatch.setattr(runs, "run_method", no_training)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert match in str(exit_info.value.code)


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_output_under_a_regular_file_fails_before_training(flag, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails_before_training(["demo", "--no-progress", flag, str(blocker / "out")],
                           f"feasjax demo: error: {flag}", monkeypatch)


def test_output_that_is_a_directory_fails_before_training(tmp_path, monkeypatch):
    _fails_before_training(["demo", "--no-progress", "--json", str(tmp_path)],
                           "is a directory", monkeypatch)


def test_missing_output_directories_are_created(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b" / "m.json"
    monkeypatch.setattr(runs, "run_method", lambda *a, **k: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # training was reached: the check passed
        cli.main(["demo", "--no-progress", "--json", str(target)])
    assert target.parent.is_dir()


def test_too_many_devices_fail_before_training(monkeypatch):
    _fails_before_training(["demo", "--no-progress", "--devices", "999"],
                           "feasjax demo: error: --devices", monkeypatch)


def test_checkpoint_dir_that_is_a_file_fails_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "ck"
    blocker.write_text("x")
    _fails_before_training(["train", "--data", str(tmp_path / "missing.npz"),
                            "--checkpoint-dir", str(blocker)],
                           "--checkpoint-dir", monkeypatch)


def test_a_truncated_npz_is_one_clear_line(tmp_path, capsys):
    import numpy as np

    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((20, 3)), y=np.zeros(20, np.int64))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--data", str(path), "--no-progress"])
    message = str(exit_info.value.code)
    assert message.startswith("feasjax train: error: cannot read") and "truncated" in message


def test_save_losses_under_a_regular_file_fails_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails_before_training(["train", "--data", str(tmp_path / "d.npz"), "--save-losses",
                            str(blocker / "losses.npz")],
                           "feasjax train: error: --save-losses", monkeypatch)
