"""When averaging pays: steps to a validation target with EMA / LAWA / SWA vs learning-rate decay.

AlgoPerf-style time-to-target study (Ajroldi et al., "When, Where and Why to Average Weights?",
2025). On each setting (digits with the MLP, with the CNN, and digits with label noise) one SGD
trajectory per learning-rate schedule -- (a) constant, (d) cosine decay to zero, (f) SWA's
cyclic phase (Izmailov et al. 2018) -- is run for seeds 0..S-1, and every averager of the sweep
(EMA decays, LAWA windows and intervals, SWA) follows each trajectory at once: averaging never
changes the trajectory, so one run serves (a)/(b)/(c) and one (d)/(e). Schedules and seeds are
``vmap``-ed, the steps are a ``lax.scan`` and the validation loss and accuracy of the raw and of
every averaged model are computed every ``--eval-every`` steps inside the compiled program.

Targets (AlgoPerf-style, set by the baseline): the best validation loss (accuracy) that cosine
decay (d) reaches within the budget, on its worst seed, so that (d) reaches it on every seed;
steps-to-target ratios are per seed, against (d) on the same seed (< 1: faster than decay),
counted at the evaluation grid (``--eval-every``).

The Feasible Learning part (``--fl-steps`` > 0) runs ``fj.feasible`` on clean digits with a
constant learning rate and weights the primal step by per-row EMAs of the multipliers
(``indexed_averaged``; decay 0 is plain FL), and reports the train tail (max loss, feasible
fraction) of the raw and parameter-averaged models against steps, with fixed targets (every
train loss <= epsilon; a feasible fraction >= ``--fl-fraction``) and the seeds that diverged.

Usage: python benchmarks/averaging_speedup.py [--settings mlp,cnn,noisy] [--json PATH] [--plot PATH]
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import feasjax as fj
from feasjax.averaging import averaged, averaged_params, ema, indexed_averaged, lawa, swa
from feasjax.averaging import swa_schedule
from feasjax.data import load_dataset
from feasjax.models import CNN, MLP, per_sample_loss_fn
from feasjax.parallel.sweeps import stack_runs

SCHEDULES = ("constant", "cosine", "swa")


def averager_sweep(steps: int, args: argparse.Namespace) -> dict:
    """name -> Averager: the EMA decays, the LAWA (k, every) grid and SWA."""
    out = {f"ema{d:g}": ema(d) for d in args.ema_decays}
    for k, every in args.lawa:
        out[f"lawa{k}x{every}"] = lawa(k, every)
    out["swa"] = swa(args.swa_cycle, int(args.swa_start * steps))
    return out


def lr_tables(steps: int, args: argparse.Namespace) -> jax.Array:
    """(3, steps) learning rates of the constant, cosine and SWA schedules, by optax count."""
    start = int(args.swa_start * steps)
    fns = (optax.constant_schedule(args.lr), optax.cosine_decay_schedule(args.lr, steps),
           swa_schedule(args.lr, start, swa_lr=args.lr, cycle_length=args.swa_cycle,
                        min_lr=args.lr * args.swa_min))
    count = jnp.arange(steps)
    return jnp.stack([jax.vmap(f)(count).astype(jnp.float32) for f in fns])


def digits(noise: float, seed: int = 0) -> tuple[dict, dict]:
    """Digits split 70/30; a fraction ``noise`` of the train labels replaced by a wrong class."""
    ds = load_dataset("digits")
    y = np.array(ds.y_train)
    rng = np.random.default_rng(seed)
    flip = rng.random(len(y)) < noise
    y[flip] = (y[flip] + rng.integers(1, 10, flip.sum())) % 10
    return ({"x": jnp.asarray(ds.x_train), "y": jnp.asarray(y)},
            {"x": jnp.asarray(ds.x_test), "y": jnp.asarray(ds.y_test)})


def make_model(kind: str, seed: int) -> nnx.Module:
    if kind == "cnn":
        return CNN((8, 8, 1), 10, features=(4, 8), hidden=32, rngs=nnx.Rngs(seed))
    return MLP(64, [64], 10, rngs=nnx.Rngs(seed))


def init_seeds(kind: str, seeds: int) -> tuple[nnx.GraphDef, dict]:
    """The model's graphdef and its parameters for seeds 0..seeds-1, stacked, as plain arrays
    (the form :func:`averaged_params` returns, so raw and averaged models stack together)."""
    graphdef, _ = nnx.split(make_model(kind, 0))
    is_var = lambda x: isinstance(x, nnx.Variable)  # noqa: E731
    plain = lambda s: jax.tree.map(lambda v: v.get_value(), s, is_leaf=is_var)  # noqa: E731
    return graphdef, stack_runs([plain(nnx.split(make_model(kind, s))[1]) for s in range(seeds)])


def evaluate(graphdef: nnx.GraphDef, models: dict, data: dict) -> jax.Array:
    """(models, 2): mean loss and accuracy of each of the stacked parameter sets."""
    def one(p):
        logits = nnx.merge(graphdef, p)(data["x"])
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, data["y"])
        return jnp.stack([losses.mean(), (logits.argmax(-1) == data["y"]).mean()])
    return jax.vmap(one)(models)


def erm_program(graphdef, averagers, steps, args):
    """jit(vmap schedules (vmap seeds (run))) -> metrics (schedules, seeds, evals, models, 2).

    The data are arguments, not constants, so that settings of one model share a compilation.
    """
    loss_fn = per_sample_loss_fn(graphdef)
    avg_txs = [averaged(optax.identity(), a) for a in averagers]

    def run(params, key, lrs, train, val):
        n = train["y"].shape[0]
        tx = optax.chain(optax.add_decayed_weights(args.weight_decay), optax.sgd(
            lambda c: lrs[jnp.minimum(c, steps - 1)], momentum=args.momentum))

        def step(carry, t):
            params, opt, avgs = carry
            idx = jax.random.randint(jax.random.fold_in(key, t), (args.batch_size,), 0, n)
            batch = jax.tree.map(lambda a: a[idx], train)
            grads = jax.grad(lambda p: loss_fn(p, batch).mean())(params)
            updates, opt = tx.update(grads, opt, params)
            avgs = tuple(a.update(updates, s, params)[1] for a, s in zip(avg_txs, avgs))
            return (optax.apply_updates(params, updates), opt, avgs), None

        def block(carry, ts):
            carry, _ = jax.lax.scan(step, carry, ts)
            params, _, avgs = carry
            models = stack_runs([params] + [averaged_params(s, params) for s in avgs])
            return carry, evaluate(graphdef, models, val)

        init = (params, tx.init(params), tuple(a.init(params) for a in avg_txs))
        ts = jnp.arange(steps).reshape(-1, args.eval_every)
        return jax.lax.scan(block, init, ts)[1]

    return jax.jit(jax.vmap(jax.vmap(run, (0, 0, None, None, None)), (None, None, 0, None, None)))


def fl_program(graphdef, train, val, averagers, steps, args):
    """FL, the primal weighted by per-row multiplier EMAs -> (decays, seeds, evals, models, 4)."""
    loss_fn, n = per_sample_loss_fn(graphdef), train["y"].shape[0]
    avg_txs = [averaged(optax.identity(), a) for a in averagers]
    tx = fj.feasible(optax.sgd(args.lr, momentum=args.momentum), num_samples=n,
                     epsilon=args.epsilon)

    def run(params, key, decay):
        mtx = indexed_averaged(optax.identity(), ema(decay))  # decay 0: the raw multipliers

        def step(carry, t):
            params, opt, mavg, avgs = carry
            idx = jax.random.randint(jax.random.fold_in(key, t), (args.batch_size,), 0, n)
            batch = jax.tree.map(lambda a: a[idx], train)
            lam = fj.multipliers(opt)
            weights = averaged_params(mavg, lam)[idx]

            def objective(p):
                losses = loss_fn(p, batch)
                return jnp.mean(weights * (losses - args.epsilon)), losses

            grads, losses = jax.grad(objective, has_aux=True)(params)
            updates, opt = tx.update(grads, opt, params, losses=losses, indices=idx)
            _, mavg = mtx.update(fj.multipliers(opt) - lam, mavg, lam, indices=idx)
            avgs = tuple(a.update(updates, s, params)[1] for a, s in zip(avg_txs, avgs))
            return (optax.apply_updates(params, updates), opt, mavg, avgs), None

        def block(carry, ts):
            carry, _ = jax.lax.scan(step, carry, ts)
            params, _, _, avgs = carry
            models = stack_runs([params] + [averaged_params(s, params) for s in avgs])
            losses = jax.vmap(loss_fn, (0, None))(models, train)
            tail = jnp.stack([losses.max(-1), (losses <= args.epsilon).mean(-1)], -1)
            return carry, jnp.concatenate([tail, evaluate(graphdef, models, val)], -1)

        opt = tx.init(params)
        init = (params, opt, mtx.init(fj.multipliers(opt)), tuple(a.init(params) for a in avg_txs))
        ts = jnp.arange(steps).reshape(-1, args.eval_every)
        return jax.lax.scan(block, init, ts)[1]

    return jax.jit(jax.vmap(jax.vmap(run, (0, 0, None)), (None, None, 0)))


def first_reach(curves: np.ndarray, target: float, higher: bool, eval_steps: np.ndarray):
    """Steps of the first evaluation at or past ``target`` (evals: last axis); inf if none."""
    hit = curves >= target if higher else curves <= target
    return np.where(hit.any(-1), eval_steps[np.argmax(hit, -1)], np.inf)


def _stats(x: np.ndarray) -> dict:
    ok = np.isfinite(x)
    if not ok.any():
        return {"mean": None, "std": None, "reached": 0}
    return {"mean": float(x[ok].mean()), "std": float(x[ok].std()), "reached": int(ok.sum())}


def summarise_erm(m: np.ndarray, names: list, eval_steps: np.ndarray) -> dict:
    """m: (schedules, seeds, evals, models, 2) -> targets and one row per schedule + averager."""
    cos = m[1, :, :, 0]  # cosine decay, raw model: (seeds, evals, 2); best of each seed, worst seed
    target = {"loss": float(cos[..., 0].min(-1).max()),
              "accuracy": float(cos[..., 1].max(-1).min())}
    steps = {"loss": first_reach(np.moveaxis(m[..., 0], 2, -1), target["loss"], False, eval_steps),
             "accuracy": first_reach(np.moveaxis(m[..., 1], 2, -1), target["accuracy"], True,
                                     eval_steps)}  # (schedules, seeds, models)
    rows = {}
    for i, sched in enumerate(SCHEDULES):
        for j, name in enumerate(names):
            row = {"final_loss": _stats(m[i, :, -1, j, 0]),
                   "final_accuracy": _stats(m[i, :, -1, j, 1]),
                   "best_loss": _stats(m[i, :, :, j, 0].min(-1))}
            for key, s in steps.items():
                row[f"steps_to_{key}"] = _stats(s[i, :, j])
                row[f"ratio_{key}"] = _stats(_ratio(s[i, :, j], s[1, :, 0]))  # vs (d), same seed
            rows[f"{sched}+{name}"] = row
    return {"target": target, "variants": rows}


def _ratio(steps: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-seed steps ratio; inf where either run never reaches the target."""
    ok = np.isfinite(steps) & np.isfinite(ref)
    return np.where(ok, steps / np.where(ok, ref, 1), np.inf)


def _std(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # a diverged seed's inf losses give nan, left out
        return x.std(-1)


def summarise_fl(m: np.ndarray, decays: list, names: list, eval_steps: np.ndarray,
                 epsilon: float, fraction: float) -> dict:
    """m: (decays, seeds, evals, models, 4: max loss, feasible fraction, val loss, val acc).

    Targets are fixed (plain FL may diverge, so it cannot set them): every train loss within
    ``epsilon`` (max loss <= epsilon), and a feasible fraction >= ``fraction``.
    """
    target = {"max_loss": epsilon, "feasible_fraction": fraction}
    reach = {"max_loss": first_reach(np.moveaxis(m[..., 0], 2, -1), epsilon, False, eval_steps),
             "feasible_fraction": first_reach(np.moveaxis(m[..., 1], 2, -1), fraction, True,
                                              eval_steps)}
    tail = m[:, :, m.shape[2] * 3 // 4:]  # last quarter of the evaluations
    rows = {}
    for i, d in enumerate(decays):
        for j, name in enumerate(names):
            final = m[i, :, -1, j]
            row = {"final_max_loss": _stats(final[:, 0]),
                   "final_feasible_fraction": _stats(final[:, 1]),
                   "final_val_accuracy": _stats(final[:, 3]),
                   "diverged": int((~np.isfinite(final[:, 0])).sum()),  # losses overflowed
                   "late_max_loss_std": _stats(_std(tail[i, :, :, j, 0]))}
            for key, s in reach.items():
                row[f"steps_to_{key}"] = _stats(s[i, :, j])
                row[f"ratio_{key}"] = _stats(_ratio(s[i, :, j], s[0, :, 0]))
            rows[f"dual_ema{d:g}+{name}"] = row
    return {"target": target, "variants": rows}


def plot(path: str, panels: dict) -> None:
    """One panel per setting: title -> (ylabel, steps, {variant: mean curve over seeds})."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, (title, (ylabel, steps, lines)) in zip(axes[0], panels.items()):
        for label, y in lines.items():
            ax.plot(steps, y, label=label, lw=1.2)
        ax.set(title=title, xlabel="steps", ylabel=ylabel, yscale="log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _fmt(stats: dict) -> str:
    if stats["mean"] is None:
        return "never"
    return f"{stats['mean']:.3f}+-{stats['std']:.3f} ({stats['reached']})"


def run_erm(setting: str, steps: int, keys: jax.Array, args: argparse.Namespace,
            programs: dict) -> tuple:
    train, val = digits(args.noise if setting == "noisy" else 0.0)
    kind = "cnn" if setting == "cnn" else "mlp"
    graphdef, params = init_seeds(kind, args.seeds)
    avgs = averager_sweep(steps, args)
    if (kind, steps) not in programs:  # mlp and noisy share one compiled program
        programs[kind, steps] = erm_program(graphdef, list(avgs.values()), steps, args)
    m = np.asarray(programs[kind, steps](params, keys, lr_tables(steps, args), train, val))
    names, at = ["raw", *avgs], np.arange(1, steps // args.eval_every + 1) * args.eval_every
    out = summarise_erm(m, names, at)
    rows = out["variants"]
    best = {kind: min((n for n in names if n.startswith(kind)), key=lambda n: (
        rows[f"constant+{n}"]["ratio_loss"]["mean"] or np.inf)) for kind in ("ema", "lawa")}
    lines = {}
    for sched, avg in (("constant", "raw"), ("constant", best["ema"]), ("constant", best["lawa"]),
                       ("cosine", "raw"), ("cosine", best["ema"]), ("cosine", best["lawa"]),
                       ("swa", "swa")):
        lines[f"{sched}+{avg}"] = m[SCHEDULES.index(sched), :, :, names.index(avg), 0].mean(0)
    print(f"{setting}: targets {out['target']}")
    for v, row in rows.items():
        print(f"  {v:22s} ratio loss {_fmt(row['ratio_loss']):24s} "
              f"acc {_fmt(row['ratio_accuracy']):24s}"
              f" final acc {_fmt(row['final_accuracy'])}")
    return out, ("validation loss", at, lines)


def run_fl(keys: jax.Array, args: argparse.Namespace) -> tuple:
    train, val = digits(0.0)
    graphdef, params = init_seeds("mlp", args.seeds)
    avgs = averager_sweep(args.fl_steps, args)
    run = fl_program(graphdef, train, val, list(avgs.values()), args.fl_steps, args)
    m = np.asarray(run(params, keys, jnp.asarray(args.fl_decays, jnp.float32)))
    names, at = ["raw", *avgs], np.arange(1, args.fl_steps // args.eval_every + 1) * args.eval_every
    out = summarise_fl(m, args.fl_decays, names, at, args.epsilon, args.fl_fraction)
    print(f"fl: targets {out['target']}")
    for v, row in out["variants"].items():
        print(f"  {v:26s} steps to max loss<=eps {_fmt(row['steps_to_max_loss']):26s} ratio "
              f"{_fmt(row['ratio_max_loss']):22s} diverged {row['diverged']}"
              f" final max loss {_fmt(row['final_max_loss'])}")
    lines = {f"dual_ema{d:g}+raw": m[i, :, :, 0, 0].mean(0) for i, d in enumerate(args.fl_decays)}
    lines[f"dual_ema0+{names[2]}"] = m[0, :, :, 2, 0].mean(0)
    return out, ("train max loss", at, lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", default="mlp,cnn,noisy", help="comma list of mlp, cnn, noisy")
    p.add_argument("--steps", type=int, default=2000, help="steps of the MLP settings")
    p.add_argument("--cnn-steps", type=int, default=800)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=3e-3, help="L2 added to the gradient")
    p.add_argument("--noise", type=float, default=0.3, help="label noise of the noisy setting")
    p.add_argument("--ema-decays", type=float, nargs="+", default=[0.9, 0.98, 0.995])
    p.add_argument("--lawa", default="5x10,10x20,5x100", help="LAWA grid, comma list of KxEVERY")
    p.add_argument("--swa-cycle", type=int, default=50)
    p.add_argument("--swa-start", type=float, default=0.5, help="fraction of the steps")
    p.add_argument("--swa-min", type=float, default=0.05, help="SWA low rate / --lr")
    p.add_argument("--fl-steps", type=int, default=1500, help="0 skips the FL part")
    p.add_argument("--fl-lr", type=float, default=0.05)
    p.add_argument("--epsilon", type=float, default=0.1)
    p.add_argument("--fl-fraction", type=float, default=0.99, help="feasible-fraction target")
    p.add_argument("--fl-decays", type=float, nargs="+", default=[0.0, 0.5, 0.9, 0.98],
                   help="per-row EMA decays of the multipliers that weight the primal step")
    p.add_argument("--json", default=None, help="write the results to this path")
    p.add_argument("--plot", default=None, help="write the validation-loss figure here")
    args = p.parse_args()
    try:
        args.lawa = [tuple(int(v) for v in kv.split("x")) for kv in args.lawa.split(",")]
    except ValueError:
        p.error(f"--lawa must be a comma list of KxEVERY, got {args.lawa!r}")
    args.settings = [s for s in args.settings.split(",") if s]
    if any(s not in ("mlp", "cnn", "noisy") for s in args.settings):
        p.error(f"--settings must list mlp, cnn, noisy; got {args.settings}")
    for name in ("steps", "cnn_steps", "fl_steps"):
        if getattr(args, name) % args.eval_every:
            p.error(f"--{name.replace('_', '-')} must be a multiple of --eval-every")
    return args


def main() -> None:
    args = parse_args()
    t_start, result, panels, programs = time.perf_counter(), {"settings": {}}, {}, {}
    keys = jax.random.split(jax.random.key(0), args.seeds)
    for setting in args.settings:
        t0 = time.perf_counter()
        steps = args.cnn_steps if setting == "cnn" else args.steps
        out, panels[setting] = run_erm(setting, steps, keys, args, programs)
        result["settings"][setting] = {**out, "steps": steps, "seconds": time.perf_counter() - t0}
    if args.fl_steps:
        t0 = time.perf_counter()
        out, panels["fl: train max loss"] = run_fl(keys, vars_replace(args, lr=args.fl_lr))
        result["fl"] = {**out, "steps": args.fl_steps, "seconds": time.perf_counter() - t0}
    result["headline"] = headline(result, args.seeds)
    dev = jax.devices()[0]
    result.update({
        "device": f"{dev.platform}:{dev.device_kind}", "seconds": time.perf_counter() - t_start,
        "config": {k: v for k, v in vars(args).items() if k not in ("json", "plot")},
        "averagers": {"ema_decays": args.ema_decays, "lawa_k_every": args.lawa,
                      "swa": {"cycle": args.swa_cycle, "start_fraction": args.swa_start,
                              "min_lr": args.lr * args.swa_min}},
        "versions": {"jax": jax.__version__, "optax": optax.__version__,
                     "python": platform.python_version()},
    })
    print(f"total {result['seconds']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.plot:
        plot(args.plot, panels)


def headline(result: dict, seeds: int) -> dict:
    """Flat numbers for run_all.py: per setting, the constant-rate loss ratios to cosine decay
    (raw, and the best of the EMA and LAWA sweeps: a best-of-sweep, hence optimistic), and FL's
    diverged seeds without and (fewest) with averaged multipliers."""
    out = {}
    for setting, res in result["settings"].items():
        rows = res["variants"]
        out[f"{setting}_constant_raw_loss_ratio"] = rows["constant+raw"]["ratio_loss"]["mean"]
        for kind in ("ema", "lawa"):
            means = [r["ratio_loss"]["mean"] for v, r in rows.items()  # reached on every seed
                     if v.startswith(f"constant+{kind}") and r["ratio_loss"]["reached"] == seeds]
            out[f"{setting}_constant_{kind}_best_loss_ratio"] = min(means) if means else None
    if "fl" in result:
        rows = result["fl"]["variants"]
        out["fl_plain_diverged_seeds"] = rows["dual_ema0+raw"]["diverged"]
        out["fl_dual_ema_fewest_diverged_seeds"] = min(
            r["diverged"] for v, r in rows.items() if v.endswith("+raw") and v != "dual_ema0+raw")
    return out


def vars_replace(args: argparse.Namespace, **changes) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **changes})


if __name__ == "__main__":
    main()
