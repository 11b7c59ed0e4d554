"""Explicit vs implicit multipliers: the train tail, test accuracy, state bytes, and whether
multipliers predicted on *test* samples say which ones the trained model finds hard.

On digits (10 classes) and the spurious-digits group benchmark (``fj.data.spurious_digits``),
the same MLP is trained by FL with one stored multiplier per sample (explicit) and with
``fj.implicit_multipliers`` of the inputs (random-Fourier-feature models of 256, 1024 and 4096
features, and one MLP of width 128: ``--sizes``), by ``fj.train``.
For the implicit runs, ``fj.multipliers(state, features=x_test)`` predicts the multipliers of
the test samples, and its Spearman correlation with their test losses is set beside simple
baselines on the same target: the predictive entropy and the negative margin of an ERM model
trained alike. The stream run trains a logistic model with implicit multipliers over
``--stream`` samples generated inside compiled ``lax.scan`` chunks (each seen once: step ``t``
draws its batch from ``fold_in(key, t)``), a task whose hard region (``x_0 > 1``: labels
flipped with probability 0.25) is known. Noisy labels make FL's constraints infeasible there
(its multipliers would grow without bound), so the stream uses RFL (``--stream-alpha``; 0 is
FL). It runs first, so that the peak memory it reports (``ru_maxrss``: JAX included) is its own,
with the wall time and the multipliers predicted inside and outside the hard region.

JSON: ``{"datasets": {NAME: {"explicit": {...}, "implicit": {SIZE: {...,
"test_multiplier_loss_spearman": float}}, "baselines": {NAME: float}}}, "stream": {...}}``.

Usage: python benchmarks/implicit_multipliers.py [--json PATH] [--stream 1e8] [--epochs 60]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from scipy.stats import spearmanr

import feasjax as fj
from feasjax.data import spurious_digits
from feasjax.metrics import accuracy, quantile

# The multiplier models: λ(x) = max(0, 1 + ψ(x) @ φ) over k random Fourier features ψ of the
# inputs (a kernel model with k parameters; λ = 1 at the start, as explicit FL's), and a flax
# MLP of the inputs with a softplus shifted so that it starts near λ = 1 too.
SIZES = {"rff256": 256, "rff1024": 1024, "rff4096": 4096, "mlp128": 128}
SOFTPLUS_ONE = float(np.log(np.e - 1))  # softplus(SOFTPLUS_ONE) = 1


def multiplier_model(size: str, in_features: int, args: argparse.Namespace):
    """``fj.implicit_multipliers`` of one size."""
    width = SIZES[size]
    if size.startswith("mlp"):
        return fj.implicit_multipliers(
            fj.MLP(in_features, [width], 1, rngs=nnx.Rngs(args.seed + 1)),
            optimizer=fj.ascent(optax.adam(args.mlp_lr)), reduction="mean",
            link=lambda h: jax.nn.softplus(h + SOFTPLUS_ONE))
    kw, kb = jax.random.split(jax.random.key(args.seed + 1 + args.rff_seed))
    w = jax.random.normal(kw, (in_features, width)) / args.rff_bandwidth
    b = jax.random.uniform(kb, (width,), maxval=2 * np.pi)

    def apply(phi, x):  # Rahimi & Recht 2007: E[ψ(x)·ψ(x')] = exp(-|x - x'|² / 2σ²)
        return 1.0 + jnp.sqrt(2.0 / width) * jnp.cos(x @ w + b) @ phi

    return fj.implicit_multipliers(apply, jnp.zeros(width), link="projected",
                                   optimizer=fj.ascent(optax.sgd(args.dual_lr)))


def _params_bytes(tree) -> int:
    return int(sum(x.nbytes for x in jax.tree.leaves(tree)))


def _losses(graphdef, params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, params)(x), y)


def fl_step(graphdef, tx, epsilon, implicit):
    """An engine step over ``(params, opt_state)``: the batch weighted by its multipliers."""
    def step(carry, batch, idx):
        params, state = carry
        lam = (fj.multipliers(state, features=batch["x"]) if implicit
               else fj.multipliers(state, idx) if epsilon is not None else 1.0)

        def objective(p):
            losses = _losses(graphdef, p, batch["x"], batch["y"])
            return jnp.mean(lam * (losses - (epsilon or 0.0))), losses

        grads, losses = jax.grad(objective, has_aux=True)(params)
        where = ({"features": batch["x"]} if implicit else {"indices": idx}
                 if epsilon is not None else {})
        extra = {"losses": losses} if epsilon is not None else {}
        updates, state = tx.update(grads, state, params, **where, **extra)
        return (optax.apply_updates(params, updates), state), {"losses": losses}
    return step


def run(data: dict, method: str, args: argparse.Namespace, size: str | None = None) -> dict:
    """Train one method; the train tail, test accuracy, state bytes and test predictions."""
    in_features, classes = data["x"].shape[1], int(data["y"].max()) + 1
    graphdef, params = nnx.split(fj.MLP(in_features, [64], classes, rngs=nnx.Rngs(args.seed)))
    primal = optax.adam(args.lr)
    epsilon = None if method == "erm" else args.epsilon
    if method == "erm":
        tx = optax.with_extra_args_support(primal)
    elif method == "explicit":
        tx = fj.feasible(primal, num_samples=len(data["y"]), epsilon=epsilon,
                         dual_optimizer=fj.ascent(optax.sgd(args.dual_lr)))
    else:
        tx = fj.feasible(primal, multipliers=multiplier_model(size, in_features, args),
                         epsilon=epsilon)
    start = time.perf_counter()
    (params, state), _ = fj.train(fl_step(graphdef, tx, epsilon, method == "implicit"),
                                  (params, tx.init(params)), {"x": data["x"], "y": data["y"]},
                                  epochs=args.epochs, batch_size=args.batch_size,
                                  key=jax.random.key(args.seed), progress=False)
    seconds = time.perf_counter() - start
    train = _losses(graphdef, params, data["x"], data["y"])
    logits = nnx.merge(graphdef, params)(data["x_test"])
    out = {"train_max_loss": float(train.max()), "train_q99_loss": float(quantile(train, 0.99)),
           "feasible_fraction": float(jnp.mean(train <= args.epsilon)),
           "test_accuracy": float(accuracy(logits, data["y_test"])), "seconds": seconds}
    if method != "erm":
        cs = fj.constrained_state(state)
        out["state_bytes"] = _params_bytes((cs.multipliers, cs.dual_states))
    if "g_test" in data:
        hits = np.asarray(jnp.argmax(logits, -1) == data["y_test"])
        out["worst_group_test_accuracy"] = float(min(hits[data["g_test"] == g].mean()
                                                     for g in np.unique(data["g_test"])))
    test_losses = _losses(graphdef, params, data["x_test"], data["y_test"])
    if method == "implicit":
        predicted = fj.multipliers(state, features=data["x_test"])
        out["test_multiplier_loss_spearman"] = _spearman(predicted, test_losses)
        out["_predicted"] = predicted
    out["_test_losses"], out["_logits"] = test_losses, logits
    return out


def _spearman(a, b) -> float:
    return float(spearmanr(np.asarray(a), np.asarray(b)).statistic)


def _uncertainty(logits):
    p = jax.nn.softmax(logits, -1)
    top2 = jax.lax.top_k(p, 2)[0]
    return {"entropy": -jnp.sum(p * jnp.log(p + 1e-12), -1), "margin": top2[:, 1] - top2[:, 0]}


def dataset_study(data: dict, args: argparse.Namespace) -> dict:
    """Explicit vs every implicit size, with the baselines on each implicit model's target."""
    erm = run(data, "erm", args)
    scores = _uncertainty(erm["_logits"])
    explicit = run(data, "explicit", args)
    implicit, baselines = {}, {}
    for size in args.sizes.split(","):
        result = run(data, "implicit", args, size)
        target = result.pop("_test_losses")
        result["baselines_on_this_model"] = {
            f"erm_{k}": _spearman(v, target) for k, v in scores.items()} | {
            f"own_{k}": _spearman(v, target) for k, v in _uncertainty(result["_logits"]).items()}
        implicit[size] = result
    # the baselines against explicit FL's test losses (one target per dataset)
    target = explicit["_test_losses"]
    baselines = {f"erm_{k}": _spearman(v, target) for k, v in scores.items()}
    for size, result in implicit.items():
        baselines[f"implicit_{size}_on_explicit_target"] = _spearman(result.pop("_predicted"),
                                                                     target)
    for r in (erm, explicit, *implicit.values()):
        for key in [k for k in r if k.startswith("_")]:
            r.pop(key)
    return {"erm": erm, "explicit": explicit, "implicit": implicit, "baselines": baselines}


def stream_run(args: argparse.Namespace) -> dict:
    """FL with implicit multipliers over a generated stream, each sample seen once."""
    d, batch, chunk = 8, args.stream_batch, args.stream_chunk
    steps = int(args.stream) // batch
    w_true = jnp.linspace(1.0, -1.0, d)

    def sample(key):
        kx, kf = jax.random.split(key)
        x = jax.random.normal(kx, (batch, d))
        y = (x @ w_true > 0).astype(jnp.int32)
        flip = (x[:, 0] > 1.0) & (jax.random.uniform(kf, (batch,)) < 0.25)  # the hard region
        return x, jnp.where(flip, 1 - y, y)

    graphdef, params = nnx.split(fj.MLP(d, [], 2, rngs=nnx.Rngs(0)))
    im = fj.implicit_multipliers(fj.MLP(d, [16], 1, rngs=nnx.Rngs(1)),
                                 optimizer=fj.ascent(optax.adam(1e-3)), reduction="mean")
    formulation = fj.resilient(args.stream_alpha) if args.stream_alpha > 0 else None
    tx = fj.feasible(optax.adam(1e-3), multipliers=im, epsilon=args.stream_epsilon,
                     formulation=formulation)
    step = fl_step(graphdef, tx, args.stream_epsilon, True)
    key = jax.random.key(args.seed)

    @jax.jit
    def run_chunk(carry, first):
        def body(carry, i):
            x, y = sample(jax.random.fold_in(key, i))
            carry, report = step(carry, {"x": x, "y": y}, None)
            return carry, jnp.mean(report["losses"])
        return jax.lax.scan(body, carry, first + jnp.arange(chunk))

    carry = (params, tx.init(params))
    jax.block_until_ready(run_chunk(carry, 0))  # compile once, outside the timing
    carry, start, means = (params, tx.init(params)), time.perf_counter(), []
    for c in range(-(-steps // chunk)):
        carry, loss = run_chunk(carry, c * chunk)
        means.append(loss)
    jax.block_until_ready(carry)
    seconds = time.perf_counter() - start
    x, y = sample(jax.random.key(10**6))  # fresh samples, never trained on
    lam = fj.multipliers(carry[1], features=x)
    losses = _losses(graphdef, carry[0], x, y)
    hard = x[:, 0] > 1.0
    return {"samples": -(-steps // chunk) * chunk * batch, "batch_size": batch,
            "seconds": seconds, "samples_per_second": -(-steps // chunk) * chunk * batch / seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "final_mean_loss": float(jnp.mean(jnp.concatenate(means[-1:]))),
            "state_bytes": _params_bytes(fj.constrained_state(carry[1]).dual_states),
            "mean_multiplier_hard_region": float(lam[hard].mean()),
            "mean_multiplier_elsewhere": float(lam[~hard].mean()),
            "fresh_multiplier_loss_spearman": _spearman(lam, losses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dual-lr", type=float, default=0.1)
    parser.add_argument("--rff-bandwidth", type=float, default=1.5)
    parser.add_argument("--rff-seed", type=int, default=0, help="offset of the features' key")
    parser.add_argument("--mlp-lr", type=float, default=1e-4, help="adam of the MLP's φ")
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"of {sorted(SIZES)}")
    parser.add_argument("--datasets", default="digits,spurious_digits")
    parser.add_argument("--stream", type=float, default=1e8, help="samples (0: no stream run)")
    parser.add_argument("--stream-batch", type=int, default=4096)
    parser.add_argument("--stream-chunk", type=int, default=500)
    parser.add_argument("--stream-epsilon", type=float, default=0.3)
    parser.add_argument("--stream-alpha", type=float, default=1.0,
                        help="RFL's slack cost α (0: FL; noisy labels make FL infeasible)")
    args = parser.parse_args()
    report = {"device": str(jax.devices()[0]), "jax": jax.__version__, "optax": optax.__version__,
              "python": platform.python_version(), "args": vars(args), "datasets": {}}
    if args.stream > 0:
        report["stream"] = stream_run(args)
        print("stream", json.dumps(report["stream"], indent=1))
    for name in filter(None, args.datasets.split(",")):
        if name == "digits":
            d = fj.load_dataset("digits", seed=args.seed)
            data = {"x": d.x_train, "y": d.y_train, "x_test": d.x_test, "y_test": d.y_test}
        else:
            d = spurious_digits(seed=args.seed)
            data = {"x": d.x_train, "y": d.y_train, "x_test": d.x_test, "y_test": d.y_test,
                    "g_test": d.g_test}
        data = {k: jnp.asarray(v) if k != "g_test" else v for k, v in data.items()}
        report["datasets"][name] = dataset_study(data, args)
        print(name, json.dumps(report["datasets"][name], indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
