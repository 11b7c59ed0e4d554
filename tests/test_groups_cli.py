"""``feasjax groups``: the JSON schema of the issue, and its argument errors."""
import json

import numpy as np
import pytest

from feasjax.cli import main


def test_groups_json_schema(tmp_path, capsys):
    path = tmp_path / "out" / "groups.json"
    assert main(["groups", "--methods", "erm,llr", "--seeds", "0", "--epochs", "1",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "worst-group acc" in out and f"wrote {path}: the results as JSON" in out
    report = json.loads(path.read_text())
    assert report["dataset"] == "spurious_digits" and report["seeds"] == [0]
    assert list(report["methods"]) == ["erm", "llr"]
    for result in report["methods"].values():
        assert isinstance(result["seconds"], float)
        test = result["test"]
        for key in ("average_accuracy", "worst_group_accuracy"):
            assert len(test[key]) == 1 and 0.0 <= test[key][0] <= 1.0
        assert sorted(test["group_accuracy"]) == ["0", "1", "2", "3"]
        assert all(len(v) == 1 for v in test["group_accuracy"].values())
        assert test["worst_group_accuracy"][0] == min(v[0] for v in
                                                      test["group_accuracy"].values())


def test_groups_argument_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["groups", "--methods", "erm,bogus"])
    assert "--methods must be a comma-separated subset of erm,reweight" in (
        capsys.readouterr().err)
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((8, 2)), y=np.arange(8) % 2)
    with pytest.raises(SystemExit, match="the .npz needs a 'group' array"):
        main(["groups", "--dataset", str(data), "--seeds", "0"])


def _tabular_file(path, **splits):
    """A file whose training rows are 95% correlated, with the given balanced splits."""
    from feasjax.data import spurious_tabular

    d = spurious_tabular(0, noise_features=2)
    arrays = {"x": d.x_train, "y": d.y_train, "group": d.g_train}
    for split in splits:
        arrays.update({f"x_{split}": getattr(d, f"x_{split}"),
                       f"y_{split}": getattr(d, f"y_{split}"),
                       f"group_{split}": getattr(d, f"g_{split}")})
    np.savez(path, **arrays)
    return d


def test_groups_evaluates_on_the_given_test_rows(tmp_path, capsys):
    # Training rows: the spurious feature agrees with the label on 95% of them; given test rows:
    # balanced, so that a model reading the spurious feature misclassifies the minority groups.
    # A re-split of the training rows would test on the correlated distribution instead.
    given, resplit = tmp_path / "given.npz", tmp_path / "resplit.npz"
    d = _tabular_file(given, test=True)
    _tabular_file(resplit)
    reports = {}
    for path in (given, resplit):
        out = tmp_path / f"{path.stem}.json"
        assert main(["groups", "--dataset", str(path), "--methods", "erm", "--seeds", "0",
                     "--epochs", "3", "--json", str(out)]) == 0
        reports[path.stem] = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "test  split:    400 rows (given); per group [100, 100, 100, 100]" in printed
    report = reports["given"]
    assert report["given"] == ["test"]
    assert report["splits"] == {"train": 285, "val": 115, "test": len(d.y_test)}
    assert report["group_counts"]["test"] == [100, 100, 100, 100]
    assert sum(report["group_counts"]["train"]) + sum(report["group_counts"]["val"]) == 400
    assert reports["resplit"]["given"] == [] and reports["resplit"]["splits"]["test"] == 120
    on_given = report["methods"]["erm"]["test"]
    on_resplit = reports["resplit"]["methods"]["erm"]["test"]
    assert on_given["average_accuracy"][0] < 0.8 < 0.9 < on_resplit["average_accuracy"][0]
    minority = [on_given["group_accuracy"][g][0] for g in ("1", "2")]
    assert max(minority) < 0.6  # rows wrong only because the training correlation is absent


def test_groups_flags_groups_absent_from_a_given_split(tmp_path, capsys):
    from feasjax.data import spurious_tabular

    d = spurious_tabular(0, noise_features=2)
    keep_val, keep_test = d.g_val != 1, d.g_test != 3
    path, out = tmp_path / "gaps.npz", tmp_path / "gaps.json"
    np.savez(path, x=d.x_train, y=d.y_train, group=d.g_train, x_val=d.x_val[keep_val],
             y_val=d.y_val[keep_val], group_val=d.g_val[keep_val], x_test=d.x_test[keep_test],
             y_test=d.y_test[keep_test], group_test=d.g_test[keep_test])
    assert main(["groups", "--dataset", str(path), "--methods", "erm,llr,groupdro", "--seeds",
                 "0", "--epochs", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "warning: group(s) [1] have no val rows" in printed
    assert "warning: group(s) [3] have no test rows" in printed
    report = json.loads(out.read_text())
    assert report["splits"] == {"train": 400, "val": 150, "test": 300}
    assert report["given"] == ["val", "test"] and report["absent_groups"] == {"val": [1],
                                                                             "test": [3]}
    assert set(report["methods"]["llr"]) == {"skipped"} == set(report["methods"]["groupdro"])
    test = report["methods"]["erm"]["test"]
    assert test["group_accuracy"]["3"] == [None]
    assert test["worst_group_accuracy"][0] == min(test["group_accuracy"][g][0] for g in "012")


@pytest.mark.parametrize("arrays, message", [
    ({"x_val": np.zeros((4, 2)), "y_val": np.arange(4) % 2}, "needs all of"),
    ({"x_test": np.zeros((4, 3)), "y_test": np.arange(4) % 2, "group_test": np.arange(4)},
     "feature shape of x"),
    ({"x_test": np.full((4, 2), np.nan), "y_test": np.arange(4) % 2,
      "group_test": np.arange(4)}, "x_test must be finite"),
])
def test_groups_rejects_a_bad_split_in_one_line(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((16, 2)), y=np.arange(16) % 2, group=np.arange(16) % 4, **arrays)
    with pytest.raises(SystemExit, match=f"feasjax groups: error: .*{message}"):
        main(["groups", "--dataset", str(path), "--seeds", "0"])


def test_groups_runs_the_tabular_benchmark_by_name(capsys):
    assert main(["groups", "--dataset", "spurious_tabular", "--methods", "erm", "--seeds", "0",
                 "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "train split:    400 rows (the benchmark's split); per group [190, 10, 10, 190]" in (
        printed)
