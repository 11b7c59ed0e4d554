"""``feasjax federated``: personalized federated learning on a dataset split over clients.

FedAvg rounds of all clients in one compiled program, then local-only, global-only, fine-tuned,
optimally mixed (Grimberg et al. 2021) and prompt-portfolio (PromptFolio, Pan et al. 2024)
models, scored by their mean and worst client test accuracy over ``--seeds``, on bundled data
partitioned over clients or the user's ``.npz``. ``--json PATH`` writes::

    {"dataset", "clients", "beta" (null for a file), "seeds",
     "rows": {"train": int, "test": int}, "test_rows": "given" | "split per client",
     "methods": {NAME: {"mean_client_accuracy": [per seed], "worst_client_accuracy": [per seed],
                        "seconds": float, ...}}}

where ``mix`` adds ``alpha`` (per client, mean over seeds), ``alpha_per_seed``, ``alphas``,
``accuracy_by_alpha`` and ``best_alpha_accuracy`` (per seed: the empirical best grid
coefficient of every client on its test rows), and ``portfolio`` adds ``theta``, ``thetas``,
``accuracy_by_theta`` and ``best_theta`` (per seed).
"""
from __future__ import annotations

import argparse

import numpy as np

from feasjax.cli.common import (_fraction, _nonnegative_float, _positive_float, _positive_int,
                                add_methods, add_outputs, add_script_flags, add_seeds)
from feasjax.cli.report import write_json
from feasjax.data._npz import read_npz
from feasjax.data.federated import federated_dataset, from_client_arrays
from feasjax.federated.config import METHODS, FederatedConfig

__all__ = []

BUNDLED = ("digits", "breast_cancer")
CLIENT_ARRAYS = ("client", "x_test", "y_test", "client_test")
PARTITION_DEFAULTS = {"clients": 10, "beta": 0.3, "feature_shift": 0.0}  # bundled data only


def add_federated_parser(commands: argparse._SubParsersAction) -> None:
    """The ``feasjax federated`` command; ``--clients``, ``--beta`` and ``--feature-shift``
    default to ``None`` (their defaults apply to bundled data only)."""
    cfg = FederatedConfig()
    p = commands.add_parser("federated", help="personalized federated learning over clients")
    p.add_argument("--dataset", type=_dataset, default="digits",
                   help="digits or breast_cancer (partitioned over --clients), or an .npz with "
                        "arrays x, y, client [, x_test, y_test, client_test]")
    p.add_argument("--clients", type=_positive_int, help="number of clients K (default 10; "
                                                         "bundled data only)")
    p.add_argument("--beta", type=_positive_float, help="Dirichlet label skew (small: few "
                   "classes per client; default 0.3; bundled data only)")
    p.add_argument("--feature-shift", type=_nonnegative_float,
                   help="scale of a random per-client input offset (default 0; bundled data "
                        "only)")
    p.add_argument("--rounds", type=_positive_int, default=cfg.rounds,
                   help="federated rounds (server updates)")
    p.add_argument("--local-steps", type=_positive_int, default=cfg.local_steps,
                   help="client SGD steps per round")
    p.add_argument("--batch-size", type=_positive_int, default=cfg.batch_size,
                   help="client minibatch size")
    p.add_argument("--lr", type=_positive_float, default=cfg.learning_rate,
                   help="client SGD learning rate")
    p.add_argument("--theta", type=_fraction_or_end, default=cfg.theta,
                   help="the portfolio's reported theta (a multiple of 0.1)")
    add_methods(p, METHODS)
    add_seeds(p, (0, 1, 2), "e.g. 0-2 or 0,3")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the client partition (of a file: of its per-client splits)")
    add_outputs(p, "PNG: accuracy against the mixing coefficient")
    add_script_flags(p, shows_progress=False)
    p.set_defaults(handler=federated_command)


def _dataset(text: str) -> str:
    if text not in BUNDLED and not text.endswith(".npz"):
        raise argparse.ArgumentTypeError(f"must be digits, breast_cancer or an .npz file, "
                                         f"got {text!r}")
    return text


def _load(args: argparse.Namespace) -> tuple:
    """``(data, test_rows)``: the clients of ``--dataset`` and where their test rows come from;
    every problem of the data is raised as one error line, before any training."""
    try:
        if args.dataset in BUNDLED:
            vars(args).update({k: v for k, v in PARTITION_DEFAULTS.items()
                               if getattr(args, k) is None})
            return federated_dataset(args.dataset, args.clients, args.beta,
                                     feature_shift=args.feature_shift,
                                     seed=args.data_seed), "split per client"
        if flags := [f"--{k.replace('_', '-')}" for k in PARTITION_DEFAULTS
                     if getattr(args, k) is not None]:
            raise ValueError(f"{'/'.join(flags)} partition a bundled dataset; {args.dataset} "
                             f"gives each row's client")
        arrays = read_npz(args.dataset, CLIENT_ARRAYS)
        if "client" not in arrays:
            raise ValueError(f"{args.dataset!r} has no array 'client' (an integer client id "
                             f"per row of x)")
        data = from_client_arrays(**{k: arrays[k] for k in ("x", "y", *CLIENT_ARRAYS)
                                     if k in arrays}, seed=args.data_seed, name=args.dataset)
        args.clients = data.num_clients
        return data, "given" if "x_test" in arrays else "split per client"
    except ValueError as e:
        raise SystemExit(f"feasjax federated: error: {e}") from None


def _fraction_or_end(text: str) -> float:
    value = float(text)
    if value not in (0.0, 1.0):
        value = _fraction(text)
    if abs(value * 10 - round(value * 10)) > 1e-9:
        raise argparse.ArgumentTypeError(f"must be a multiple of 0.1 in [0, 1], got {text!r}")
    return round(value, 1)


def _report(args: argparse.Namespace, data, test_rows: str, runs: dict) -> dict:
    report = {"dataset": args.dataset, "clients": args.clients, "beta": args.beta,
              "seeds": list(args.seeds),
              "rows": {s: int(getattr(data, s)["mask"].sum()) for s in ("train", "test")},
              "test_rows": test_rows, "methods": {}}
    for name, per_seed in runs.items():
        entry = {**_listed(per_seed, "mean_client_accuracy", "worst_client_accuracy"),
                 "seconds": float(sum(r["seconds"] for r in per_seed))}
        if name == "mix":
            alphas = _listed(per_seed, "alpha")["alpha"]
            entry.update(alpha=np.mean(alphas, axis=0).tolist(), alpha_per_seed=alphas,
                         alphas=list(FederatedConfig().alphas),
                         **_listed(per_seed, "accuracy_by_alpha", "best_alpha_accuracy",
                                   "best_alpha"))
        if name == "portfolio":
            entry.update(theta=per_seed[0]["theta"], thetas=list(FederatedConfig().thetas),
                         **_listed(per_seed, "accuracy_by_theta", "best_theta"))
        report["methods"][name] = entry
    return report


def _listed(per_seed: list, *keys: str) -> dict:
    return {key: [r[key] for r in per_seed] for key in keys}


def _print(report: dict) -> None:
    print(f"{'method':<10}{'mean client acc':>18}{'worst client acc':>18}{'seconds':>10}")
    for name, m in report["methods"].items():
        mean, worst = np.asarray(m["mean_client_accuracy"]), np.asarray(m["worst_client_accuracy"])
        print(f"{name:<10}{mean.mean():>11.4f} ± {mean.std():.4f}{worst.mean():>11.4f} ± "
              f"{worst.std():.4f}{m['seconds']:>10.1f}")
    if mix := report["methods"].get("mix"):
        print("mix alpha per client (weight of the global model): "
              + " ".join(f"{a:.2f}" for a in mix["alpha"]))
        print("mix with each client's empirical best alpha (test): "
              + " ".join(f"{a:.4f}" for a in mix["best_alpha_accuracy"]))
    if pf := report["methods"].get("portfolio"):
        print(f"portfolio at theta={pf['theta']}; best theta per seed: "
              + " ".join(f"{t:.1f}" for t in pf["best_theta"]))


def _plot(report: dict, path: str) -> None:
    # Lazy: matplotlib takes seconds to import, and only --plot needs it.
    from feasjax.metrics.plotting import plot_accuracy_curves

    methods, curves, mark = report["methods"], {}, None
    if mix := methods.get("mix"):
        curves["mix(local, global, α), same α for every client"] = (
            mix["alphas"], mix["accuracy_by_alpha"])
        mark = (float(np.mean(mix["alpha"])), "mean estimated α* (held out)")
    if pf := methods.get("portfolio"):
        curves["portfolio, α = 1 − θ"] = (1 - np.asarray(pf["thetas"]), pf["accuracy_by_theta"])
    plot_accuracy_curves(curves, path, xlabel="mixing coefficient α (weight of the global model)",
                         mark=mark, title=f"{report['dataset']}, {report['clients']} clients"
                         + (f", β={report['beta']}" if report["beta"] is not None else ""))


def federated_command(args: argparse.Namespace) -> dict:
    """Run ``feasjax federated`` and return the JSON-able report."""
    from feasjax.federated.experiment import run_federated

    data, test_rows = _load(args)
    config = FederatedConfig(rounds=args.rounds, local_steps=args.local_steps,
                             learning_rate=args.lr, batch_size=args.batch_size, theta=args.theta)
    skew = f"beta={args.beta}" if args.dataset in BUNDLED else f"test rows {test_rows}"
    print(f"feasjax federated: {args.dataset}, {args.clients} clients, {skew}, "
          f"rounds={args.rounds}, local steps={args.local_steps}, seeds={list(args.seeds)}")
    report = _report(args, data, test_rows, run_federated(data, args.methods, args.seeds, config))
    _print(report)
    write_json(args.json, report)
    if args.plot:
        _plot(report, args.plot)
        print(f"wrote {args.plot}: accuracy against the mixing coefficient (PNG)")
    return report
