"""``feasjax paper NAME``: the Feasible Learning paper's experiments (ERM, CSERM, FL, RFL over
seeds; DPO, FL-DPO, RFL-DPO for ``dpo``) from the presets of :mod:`feasjax.experiments.presets`,
whose fields ``--set key=value`` overrides. ``--json PATH`` writes::

    {"preset": str, "seeds": [int], "epsilon": float, "config": {preset fields},
     "methods": {NAME: {"train": {"max_loss": [per seed], "q99_loss": [...], "mean_loss": [...],
                                  "feasible_fraction": [...], "accuracy": [...]},
                        "test": {same keys}, "seconds": float}}}

(``accuracy`` for classification only), and for ``dpo`` (:mod:`feasjax.experiments.preference`)::

    {"preset": "dpo", "seeds": [int], "epsilon": float, "config": {preset fields},
     "sft_seconds": float, "reference": {"train": {...}, "test": {...}},
     "methods": {NAME: {"train": {"pair_loss_max": [per seed], "pair_loss_q99": [...],
                                  "pair_loss_mean": [...], "fraction_above_epsilon": [...],
                                  "preference_accuracy": [...], "reward_accuracy": [...],
                                  "hard_preference_accuracy": [...], "reward_margin_mean": [...],
                                  "reward_margin_q01" ... "reward_margin_q99": [...]},
                        "test": {same keys}, "seconds": float}}}

(``reference``: the fine-tuned base before any preference training; preference accuracy is the
fraction of pairs whose chosen continuation the model finds more likely than the rejected one).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import os

import numpy as np

from feasjax.cli.common import (add_methods, add_outputs, add_script_flags, add_seeds,
                                progress_mode)
from feasjax.cli.report import write_json
from feasjax.experiments.presets import (DATA_FILES, PAPER_METHODS, PREFERENCE_METHODS, PRESETS,
                                         PreferencePreset, override)

__all__ = []


def add_paper_parser(commands: argparse._SubParsersAction) -> None:
    """The ``feasjax paper`` command."""
    p = commands.add_parser("paper", help="the Feasible Learning paper's experiments: ERM, "
                                          "CSERM, FL, RFL over seeds; DPO, FL-DPO, RFL-DPO")
    p.add_argument("name", choices=tuple(PRESETS), help="the preset")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"cifar10/utkface arrays: {', '.join(DATA_FILES)}")
    add_methods(p, PAPER_METHODS + PREFERENCE_METHODS, default=(),
                default_help=f"the preset's: {','.join(PAPER_METHODS)}, or for dpo "
                             f"{','.join(PREFERENCE_METHODS)}")
    add_seeds(p, (0, 1, 2, 3, 4), "e.g. 0-4 or 0,3")
    p.add_argument("--set", dest="assignments", action="append", default=[],
                   metavar="KEY=VALUE", help="override a preset field (repeatable), e.g. "
                                             "epochs=2, width=8, num_train=512, p=1.0")
    add_outputs(p, "per-sample loss survival curves (seed 0) as PNG; for 2-D data also the "
                "decision boundaries, next to it as *-boundaries.png")
    p.add_argument("--logdir", metavar="DIR", help="write TensorBoard event files here "
                                                   "(needs feasjax[tensorboard])")
    add_script_flags(p)
    p.set_defaults(handler=paper_command)


PAPER_COLUMNS = (("train", "max_loss", "train max loss"), ("train", "q99_loss", "train q99 loss"),
                 ("train", "accuracy", "train acc"), ("test", "accuracy", "test acc"))
PREFERENCE_COLUMNS = (("train", "pair_loss_max", "train max loss"),
                      ("train", "pair_loss_q99", "train q99 loss"),
                      ("train", "preference_accuracy", "train pref acc"),
                      ("test", "preference_accuracy", "test pref acc"),
                      ("test", "pair_loss_q99", "test q99 loss"))


def format_paper_table(methods: dict, columns: tuple = PAPER_COLUMNS) -> str:
    """Per method, each of ``columns`` (``(split, key, header)``) as mean ± std over seeds.

    Example:
      >>> from feasjax.cli.paper import format_paper_table
      >>> print(format_paper_table({"fl": {"train": {"max_loss": [1.0, 2.0],
      ...     "q99_loss": [0.5, 0.5], "accuracy": [1.0, 1.0]},
      ...     "test": {"accuracy": [0.9, 1.0]}, "seconds": 2.0}}))
      method    train max loss   train q99 loss       train acc        test acc  seconds
      fl         1.500 ± 0.500    0.500 ± 0.000   1.000 ± 0.000   0.950 ± 0.050      2.0
    """
    widths = [max(16, len(header) + 1) for _, _, header in columns]
    widths[1] += 1
    lines = ["method  " + "".join(f"{h:>{w}}" for (_, _, h), w in zip(columns, widths))
             + f"{'seconds':>9}"]
    for name, res in methods.items():
        cells = [f"{np.mean(res[s][k]):.3f} ± {np.std(res[s][k]):.3f}" if k in res[s] else "-"
                 for s, k, _ in columns]
        lines.append(f"{name:<8}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths))
                     + f"{res['seconds']:>9.1f}")
    return "\n".join(lines)


def _checked_preset(args: argparse.Namespace):
    """The preset with ``--set`` applied, and every input checked before JAX is imported."""
    def fail(message):
        return SystemExit(f"feasjax paper: error: {message}")

    try:
        preset = override(PRESETS[args.name], args.assignments)
    except (TypeError, ValueError) as e:
        raise fail(e) from None
    preference = isinstance(preset, PreferencePreset)
    allowed = PREFERENCE_METHODS if preference else PAPER_METHODS
    if wrong := [m for m in args.methods if m not in allowed]:
        raise fail(f"--methods of {args.name} must be a subset of {','.join(allowed)}, got "
                   f"{','.join(wrong)}")
    args.methods = args.methods or allowed
    if preference and preset.loss not in ("dpo", "ipo"):
        raise fail(f"--set loss= takes dpo or ipo, got {preset.loss!r}")
    if preference and (args.data_dir or args.logdir):
        raise fail(f"{args.name} generates its data and writes no TensorBoard logs: drop "
                   f"{'--data-dir' if args.data_dir else '--logdir'}")
    if not preference and preset.dataset != "two_moons":
        where = args.data_dir
        if missing := [f for f in DATA_FILES
                       if not (where and os.path.isfile(os.path.join(where, f)))]:
            found = f"{where} lacks {', '.join(missing)}" if where else "no --data-dir given"
            raise fail(f"{args.name} reads its data from --data-dir DIR, which must hold "
                       f"{', '.join(DATA_FILES)} (.npy: images (N, H, W, C) uint8, labels (N,)); "
                       f"{found}")
    # The package import of feasjax.metrics would import JAX: the check is spelled out here.
    if args.logdir and importlib.util.find_spec("tensorboardX") is None:
        raise fail('--logdir needs tensorboardX, which is not installed: pip install '
                   '"feasjax[tensorboard]"')
    return preset


def paper_command(args: argparse.Namespace) -> dict:
    """Run ``feasjax paper``: every method for every seed, print the table, write the outputs."""
    preset = _checked_preset(args)
    if isinstance(preset, PreferencePreset):
        return _preference_command(args, preset)
    from feasjax.experiments.paper import load_paper_data, run_paper_method, tensorboard_hook
    from feasjax.metrics.tensorboard import EventLog

    seeds = list(args.seeds)
    datasets = ([load_paper_data(preset, s) for s in seeds] if preset.dataset == "two_moons"
                else [load_paper_data(preset, 0, args.data_dir)])
    print(f"feasjax paper: {preset.name}, epsilon={preset.epsilon:.4g}, seeds={seeds}, "
          f"epochs={preset.epochs}, batch size={preset.batch_size}, "
          f"{len(datasets[0].y_train)} train / {len(datasets[0].y_test)} test", flush=True)
    methods, outcomes = {}, {}
    with EventLog(args.logdir) if args.logdir else contextlib.nullcontext() as log:
        for m in args.methods:
            hook = tensorboard_hook(log, m, preset, datasets, seeds) if log else None
            outcomes[m] = out = run_paper_method(m, preset, datasets, seeds, epoch_hook=hook,
                                                 progress=progress_mode(args))
            methods[m] = {**{s: {k: [r[s][k] for r in out["runs"]] for k in out["runs"][0][s]}
                             for s in ("train", "test")}, "seconds": out["seconds"]}
    print(format_paper_table(methods))
    report = {"preset": preset.name, "seeds": seeds, "epsilon": preset.epsilon,
              "config": dataclasses.asdict(preset), "methods": methods}
    write_json(args.json, report)
    if args.logdir:
        print(f"wrote {args.logdir}: TensorBoard event files (tensorboard --logdir {args.logdir})")
    if args.plot:
        _plots(args.plot, preset, datasets[0], outcomes)
    return report


def _preference_command(args: argparse.Namespace, preset: PreferencePreset) -> dict:
    from feasjax.experiments.preference import run_preference

    seeds = list(args.seeds)
    print(f"feasjax paper: {preset.name}, {preset.loss} beta={preset.beta}, "
          f"epsilon={preset.epsilon:.4g}, seeds={seeds}, epochs={preset.epochs} (fine-tuning "
          f"{preset.sft_epochs}), {preset.num_train} train / {preset.num_test} test pairs",
          flush=True)
    out = run_preference(preset, seeds, args.methods, progress=progress_mode(args))
    print(format_paper_table(out["methods"], PREFERENCE_COLUMNS))
    report = {"preset": preset.name, "seeds": seeds, "epsilon": preset.epsilon,
              "config": dataclasses.asdict(preset), "sft_seconds": out["sft_seconds"],
              "reference": out["reference"], "methods": out["methods"]}
    write_json(args.json, report)
    if args.plot:
        from feasjax.metrics.plotting import plot_loss_survival

        losses = {m: {"train": v[0][0], "test": v[0][1]} for m, v in out["losses"].items()}
        plot_loss_survival(losses, preset.epsilon, args.plot, floor=1e-3,
                           title=f"{preset.name}: per-pair losses, seed {seeds[0]}")
        print(f"wrote {args.plot}: per-pair loss survival curves of seed {seeds[0]} (PNG)")
    return report


def _plots(path: str, preset, data, outcomes: dict) -> None:
    import jax

    from feasjax.metrics.plotting import plot_loss_survival

    losses = {m: dict(zip(("train", "test"), o["losses"][0])) for m, o in outcomes.items()}
    plot_loss_survival(losses, max(preset.epsilon, 1e-3), path, floor=1e-6,
                       title=f"{preset.name}, seed 0")
    print(f"wrote {path}: per-sample loss survival curves of seed 0 (PNG)")
    if data.x_train.shape[1] != 2 or data.num_classes != 2:
        return
    from feasjax.metrics.boundaries import plot_decision_boundaries

    lo, hi = data.x_train.min(0) - 0.5, data.x_train.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    points = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    probs = {}
    for m, o in outcomes.items():
        params, mstate = jax.tree.map(lambda a: a[0], (o["states"].params, o["states"].model_state))
        logits = np.asarray(o["fns"].predict(params, points, mstate))
        probs[m] = np.asarray(jax.nn.softmax(logits, -1))[:, 1].reshape(gx.shape)
    target = os.path.splitext(path)[0] + "-boundaries.png"
    plot_decision_boundaries((gx, gy), probs, data.x_train, data.y_train, target,
                             title=f"{preset.name}, seed 0")
    print(f"wrote {target}: decision boundaries of seed 0 (PNG)")
