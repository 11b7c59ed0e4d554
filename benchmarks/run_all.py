"""Run every benchmark with defaults sized for the device found; one JSON and one Markdown table.

Each benchmark runs in its own process (so that one's compilation cache or memory does not
colour another's timings) with ``--json``; this script gathers their results under
``{"device", "platform", "benchmarks": {name: result}}`` and writes a Markdown table of the
headline numbers (ratios, measured in the same process as their baselines). On a GPU or TPU
the sizes grow; on the 2-core CPU they stay small enough to finish in minutes.

Usage::

    PYTHONPATH=. python benchmarks/run_all.py --out benchmarks/results   # writes run_all.json/.md
    PYTHONPATH=. python benchmarks/run_all.py --only step_overhead,averaging_overhead
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (arguments on a CPU, arguments on an accelerator, headline keys of its JSON)
BENCHMARKS = {
    "step_overhead": (["--repeats", "7"], ["--repeats", "15", "--sizes", "1e3", "1e5", "1e7",
                                           "1e8"], ["fl_over_erm", "largest_over_smallest"]),
    "averaging_overhead": (["--steps", "1000", "--repeats", "7"], ["--repeats", "15"],
                           ["ratios.ema", "ratios.polyak", "ratios.lawa", "ratios.swa",
                            "lawa_snapshot_step_ratio"]),
    "averaging_speedup": ([], [], []),  # headline.*_ratio: steps to target vs cosine decay
    "bootstrap_vmap": (["--replicas", "100", "--n", "5000"], [], []),
    "scaling": (["--big-n", "1e7", "--reps", "3"], ["--big-n", "1e9"], []),
    "federated_clients": (["--repeats", "7"], ["--repeats", "15"], ["speedup"]),
    "pipeline_throughput": ([], [], ["pipeline_over_step_speed"]),
    "resnet_throughput": (["--repeats", "2"], ["--full"], []),  # results.<dtype>/<batch>
    "implicit_multipliers": (["--stream", "1e8"], ["--stream", "1e9"],
                             ["datasets.digits.explicit.train_max_loss",
                              "datasets.digits.implicit.rff4096.train_max_loss",
                              "datasets.digits.implicit.rff4096.test_multiplier_loss_spearman",
                              "datasets.digits.baselines.erm_entropy", "stream.seconds",
                              "stream.peak_rss_mib"]),
}


def _platform() -> str:
    import jax

    return jax.devices()[0].platform


def _headline(result: dict, keys: list[str]) -> dict:
    """The named (dotted) keys, or else every number whose key says it is a ratio or speedup.

    Example:
      >>> _headline({"ratios": {"ema": 1.04}, "steps": 10}, ["ratios.ema"])
      {'ratios.ema': 1.04}
    """
    if keys:
        out = {}
        for key in keys:
            value = result
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, (int, float)):
                out[key] = value
        return out
    flat = {}
    for key, value in result.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, v in items:
            name = key if sub is None else f"{key}.{sub}"
            if isinstance(v, (int, float)) and not isinstance(v, bool) and any(
                    w in name for w in ("ratio", "speedup", "_over_")):
                flat[name] = v
    return flat


def markdown(report: dict) -> str:
    """A Markdown table, one row per benchmark and headline number.

    Example:
      >>> print(markdown({"device": "cpu", "benchmarks": {"a": {"headline": {"r": 1.02},
      ...                                                  "seconds": 3.0}}}))
      | benchmark | number | value |
      | --- | --- | --- |
      | a | r | 1.02 |
      | a | wall seconds | 3.0 |
      <BLANKLINE>
      Device: cpu
    """
    rows = ["| benchmark | number | value |", "| --- | --- | --- |"]
    for name, entry in report["benchmarks"].items():
        if "error" in entry:
            rows.append(f"| {name} | error | {entry['error']} |")
            continue
        for key, value in entry["headline"].items():
            rows.append(f"| {name} | {key} | {value:.4g} |")
        rows.append(f"| {name} | wall seconds | {entry['seconds']:.1f} |")
    return "\n".join(rows) + f"\n\nDevice: {report['device']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="directory for run_all.json, run_all.md and each benchmark's JSON")
    parser.add_argument("--only", default="", help="comma-separated subset of "
                        + ",".join(BENCHMARKS))
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"--only: unknown benchmarks {unknown}; choose from {list(BENCHMARKS)}")
    os.makedirs(args.out, exist_ok=True)
    platform = _platform()
    report = {"device": platform, "benchmarks": {}}
    for name in names:
        cpu_args, accel_args, keys = BENCHMARKS[name]
        path = os.path.join(args.out, f"{name}.json")
        cmd = [sys.executable, os.path.join(HERE, f"{name}.py"), "--json", path,
               *(cpu_args if platform == "cpu" else accel_args)]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)})
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            report["benchmarks"][name] = {"error": last}
            print(f"{name}: failed ({seconds:.0f} s)", file=sys.stderr)
            continue
        with open(path) as f:
            result = json.load(f)
        report["benchmarks"][name] = {"headline": _headline(result, keys), "seconds": seconds,
                                      "result": result}
        print(f"{name}: {seconds:.0f} s", file=sys.stderr)
    with open(os.path.join(args.out, "run_all.json"), "w") as f:
        json.dump(report, f, indent=2)
    table = markdown(report)
    with open(os.path.join(args.out, "run_all.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    return 0 if all("error" not in e for e in report["benchmarks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
