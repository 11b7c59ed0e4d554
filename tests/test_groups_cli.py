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
