"""The README's group-robustness and federated tables are what the commands print today.

Both run the commands at their defaults (seconds to a minute on the 2-core CPU), so they are
slow-marked and run in CI's slow step. Tolerance: the means of the group table to 0.002 (its
printed precision is 0.001) and the federated accuracies to 0.0015 (printed to 0.0001); within
one machine the runs are deterministic, the margin covers other CPUs' float reassociation.
"""
import json
import pathlib
import re

import numpy as np
import pytest

from feasjax.cli import main

README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(title, 1)[1].split("\n## ", 1)[0]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["spurious_digits", "spurious_tabular"])
def test_readme_group_tables_are_what_feasjax_groups_reports(tmp_path, dataset):
    path = tmp_path / "groups.json"
    assert main(["groups", "--dataset", dataset, "--seeds", "0-4", "--json", str(path)]) == 0
    methods = json.loads(path.read_text())["methods"]
    first, second = _section("## Group robustness: `feasjax groups`").split(
        "**A second benchmark", 1)
    table = first if dataset == "spurious_digits" else second
    rows = re.findall(r"^\| (\w+)[^|]*\| ([\d.]+) ± ([\d.]+) \| ([\d.]+) ± ([\d.]+) \|",
                      table.split("\n\n**", 1)[0] if dataset != "spurious_digits" else table,
                      re.M)
    assert [r[0] for r in rows] == list(methods)
    for name, avg, avg_std, worst, worst_std in rows:
        test = methods[name]["test"]
        np.testing.assert_allclose(
            [np.mean(test["average_accuracy"]), np.std(test["average_accuracy"]),
             np.mean(test["worst_group_accuracy"]), np.std(test["worst_group_accuracy"])],
            [float(avg), float(avg_std), float(worst), float(worst_std)], atol=0.002,
            err_msg=name)


@pytest.mark.slow
def test_readme_federated_table_is_what_feasjax_federated_reports(tmp_path):
    path = tmp_path / "fed.json"
    assert main(["federated", "--json", str(path)]) == 0
    methods = json.loads(path.read_text())["methods"]
    section = _section("## Personalized federated learning: `feasjax federated`")
    for name, key in (("local", "local"), ("global (FedAvg)", "global"),
                      ("finetune", "finetune"), ("mix (held-out α)", "mix"),
                      ("portfolio, θ = 0.5", "portfolio")):
        row = re.search(rf"^\| {re.escape(name)} \| \**([\d. /]+?)\** \| ([\d. /]+) \|", section,
                        re.M)
        mean_acc = [float(v) for v in row.group(1).split("/")]
        worst_acc = [float(v) for v in row.group(2).split("/")]
        np.testing.assert_allclose(methods[key]["mean_client_accuracy"], mean_acc, atol=0.0015,
                                   err_msg=name)
        np.testing.assert_allclose(methods[key]["worst_client_accuracy"], worst_acc,
                                   atol=0.0015, err_msg=name)
