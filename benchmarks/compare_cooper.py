"""Feasible Learning side by side with Cooper 1.0.1 (PyTorch, CPU): per step, at scale, end to end.

The same problem in both libraries, in one process, one thread each, measured interleaved
(each repetition times Cooper then feasjax, so both see the same machine load); per-step
medians after a warm-up that excludes compilation:

- **digits** (sklearn, 1257 training images), MLP 64-32-10, batch 64, SGD 0.05 momentum 0.9,
  ε 0.1, multipliers from 1, dual ascent SGD 0.1, the batch-mean Lagrangian in both (Cooper's
  primal violation is ``(loss_i - ε) / B`` and its dual ("strict") violation ``loss_i - ε``, which
  gives feasjax's updates exactly). Seeds 0-2, both schemes: simultaneous (Cooper's
  ``SimultaneousOptimizer``) and dual-then-primal (``AlternatingDualPrimalOptimizer``). Cooper
  runs its usual Python loop of ``roll()``; feasjax runs :func:`feasjax.train` (one compiled
  scan per epoch) and, for reference, the compiled epoch alone. The equivalence check starts
  both from the same weights and feeds the same minibatches for one epoch.
- **N-scaling**: N in {1e3, 1e4, 1e6, 1e7} multipliers, MLP 64-256-256-10, batch 256, rows of a
  4096-sample pool (``x[idx % pool]``) so that only the dual state grows with N; a fixed number
  of steps per repetition (an epoch at N = 1e7 would be 39,062 steps).
- **end to end**: a 30-epoch digits run, seconds from the training call to the final metrics
  (train max loss, feasible fraction, test accuracy): Cooper; feasjax in a fresh process with an
  empty persistent compilation cache (``feasjax_cold``) and again with the cache it filled
  (``feasjax_warm``); medians of interleaved rounds. For reference, ``minimal_jax_cold``: the
  same algorithm as the smallest plain-JAX program (no library, no checks), cold, the floor
  that XLA's compilation sets on this machine.

Install the optional dependencies (the CPU wheel of torch avoids the CUDA download)::

    pip install torch --index-url https://download.pytorch.org/whl/cpu
    pip install -e ".[compare]"        # cooper-optim==1.0.1

Usage::

    PYTHONPATH=. python benchmarks/compare_cooper.py --json compare_cooper.json
    PYTHONPATH=. python benchmarks/compare_cooper.py --quick   # a smoke run in about a minute

``--json PATH`` writes ``{"device", "threads", "digits": {"cooper_us_per_step",
"feasjax_us_per_step", "ratio", "max_param_gap", "end_to_end_seconds": {"cooper",
"feasjax_cold", "feasjax_warm"}, ...}, "n_scaling": {"<N>": {"cooper_us_per_step",
"feasjax_us_per_step", "ratio", ...}}}`` with ratio = Cooper's time over feasjax's; the extra keys
(``runs`` per seed and scheme, ``feasjax_epoch_us_per_step``, ``train_over_epoch``, ...) add
detail without changing these.
"""
from __future__ import annotations

import os
import sys

# One thread each. XLA reads its flags when jax is first imported, so this comes first.
if "--worker" not in sys.argv:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1").strip()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

import feasjax as fj  # noqa: E402
from feasjax.training import chunk_fn  # noqa: E402

INSTALL = ('pip install torch --index-url https://download.pytorch.org/whl/cpu && '
           'pip install -e ".[compare]"')
SCHEMES = {"simultaneous": "SimultaneousOptimizer",
           "dual_then_primal": "AlternatingDualPrimalOptimizer"}
EPSILON, PRIMAL_LR, MOMENTUM, DUAL_LR = 0.1, 0.05, 0.9, 0.1


def import_cooper():
    """``(torch, cooper)`` with one thread, or exit with how to install them."""
    try:
        import cooper
        import torch
    except ImportError as error:
        sys.exit(f"compare_cooper.py needs PyTorch (CPU) and cooper-optim 1.0.1, which are "
                 f"missing ({error}). Install them with:\n  {INSTALL}")
    if cooper.__version__ != "1.0.1":
        print(f"warning: measured against cooper-optim {cooper.__version__}, not 1.0.1",
              file=sys.stderr)
    torch.set_num_threads(1)
    return torch, cooper


# ------------------------------------------------------------------------------ feasjax side
def fj_problem(hidden, num_samples: int, scheme: str, seed: int, pool_x=None, pool_y=None):
    """The model (nnx), FL solver and initial state; with a pool, rows are ``pool[idx % P]``."""
    model = fj.MLP(64, hidden, 10, rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    loss_fn = fj.per_sample_loss_fn(graphdef, "cross_entropy")
    if pool_x is not None:  # data is {"idx": arange(N)}: the loss looks its rows up in the pool
        rows_loss = loss_fn
        size = pool_x.shape[0]

        def loss_fn(params, batch):
            rows = batch["idx"] % size
            return rows_loss(params, {"x": pool_x[rows], "y": pool_y[rows]})

    solver = fj.feasible_learning(loss_fn, optax.sgd(PRIMAL_LR, momentum=MOMENTUM),
                                  num_samples=num_samples, epsilon=EPSILON, scheme=scheme,
                                  dual_optimizer=fj.ascent(optax.sgd(DUAL_LR)))
    return model, graphdef, solver, solver.init(params)


def fj_weights(graphdef, params) -> list[np.ndarray]:
    """The dense layers' (kernel, bias) as numpy, in order."""
    model = nnx.merge(graphdef, params)
    return [np.asarray(a) for layer in model.layers for a in (layer.kernel[...], layer.bias[...])]


# ------------------------------------------------------------------------------- Cooper side
class CooperFL:
    """Feasible Learning in Cooper: an ``IndexedMultiplier`` per sample, one ``roll()`` a step."""

    def __init__(self, torch, cooper, weights, num_samples: int, batch_size: int, scheme: str):
        self.torch, self.batch_size = torch, batch_size
        layers = []
        for kernel, bias in zip(weights[::2], weights[1::2]):
            linear = torch.nn.Linear(*kernel.shape)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
                linear.bias.copy_(torch.from_numpy(bias.copy()))
            layers += [linear, torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1])

        class Problem(cooper.ConstrainedMinimizationProblem):
            def __init__(self):
                super().__init__()
                self.multiplier = cooper.multipliers.IndexedMultiplier(
                    init=torch.ones(num_samples))
                self.constraint = cooper.Constraint(
                    constraint_type=cooper.ConstraintType.INEQUALITY,
                    formulation_type=cooper.formulations.Lagrangian, multiplier=self.multiplier)

            def compute_cmp_state(self, model, x, y, idx):
                violation = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
                violation = violation - EPSILON
                state = cooper.ConstraintState(  # batch-mean primal, per-sample dual ascent
                    violation=violation / batch_size, constraint_features=idx,
                    strict_violation=violation.detach(), strict_constraint_features=idx)
                return cooper.CMPState(observed_constraints={self.constraint: state})

        self.cmp = Problem()
        primal = torch.optim.SGD(self.model.parameters(), lr=PRIMAL_LR, momentum=MOMENTUM)
        dual = torch.optim.SGD(self.cmp.dual_parameters(), lr=DUAL_LR, maximize=True)
        optimizer_class = getattr(cooper.optim, SCHEMES[scheme])
        self.optimizer = optimizer_class(self.cmp, primal_optimizers=primal, dual_optimizers=dual)

    def step(self, x, y, idx) -> None:
        self.optimizer.roll(compute_cmp_state_kwargs=dict(model=self.model, x=x, y=y, idx=idx))

    def weights(self) -> list[np.ndarray]:
        out = []
        for layer in self.model:
            if isinstance(layer, self.torch.nn.Linear):
                out += [layer.weight.detach().numpy().T, layer.bias.detach().numpy()]
        return out

    def multipliers(self) -> np.ndarray:
        return self.cmp.multiplier.weight.detach().numpy().ravel()


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------ digits
def digits_run(torch, cooper, data, seed: int, scheme: str, epochs: int,
               train_epochs: int) -> dict:
    """One seed and scheme: equivalence after one epoch, then interleaved per-step timings.

    Each repetition times one Cooper epoch, one ``fj.train`` call of ``train_epochs`` epochs and
    as many calls of the bare compiled epoch (``jax.jit(fj.epoch_fn(...))``).
    """
    n, batch = data["x"].shape[0], 64
    steps = n // batch
    _, graphdef, solver, state = fj_problem([32], n, scheme, seed)
    ref = CooperFL(torch, cooper, fj_weights(graphdef, state.params), n, batch, scheme)
    xt = torch.from_numpy(np.array(data["x"]))  # a writable copy
    yt = torch.from_numpy(np.asarray(data["y"]).astype(np.int64))
    key = jax.random.key(seed)

    def cooper_epoch(epoch):  # the same minibatches as fj.train's epoch `epoch`
        order = np.asarray(fj.epoch_indices(jax.random.fold_in(key, epoch), n, batch))
        order = torch.from_numpy(order.astype(np.int64))
        for idx in order:
            ref.step(xt[idx], yt[idx], idx)

    cooper_epoch(0)
    state, _ = fj.train(solver, state, data, epochs=1, batch_size=batch, key=key, progress=False)
    gap = max(float(np.max(np.abs(a - b)))
              for a, b in zip(ref.weights(), fj_weights(graphdef, state.params)))
    lam_gap = float(np.max(np.abs(ref.multipliers() - np.asarray(state.multipliers[fj.SAMPLES]))))

    epoch = jax.jit(fj.epoch_fn(solver, batch), donate_argnums=0)
    state = jax.block_until_ready(epoch(state, data, key))[0]  # compiled before timing
    cooper_t, train_t, epoch_t = [], [], []
    for rep in range(epochs):
        cooper_t.append(_timed(lambda: cooper_epoch(rep + 1)) / steps)

        def run_train():
            nonlocal state
            state, _ = fj.train(solver, state, data, epochs=train_epochs, batch_size=batch,
                                key=jax.random.fold_in(key, rep), progress=False)
            jax.block_until_ready(state)

        train_t.append(_timed(run_train) / (steps * train_epochs))

        def run_epochs():
            nonlocal state
            for e in range(train_epochs):
                state = epoch(state, data, jax.random.fold_in(key, e))[0]
            jax.block_until_ready(state)

        epoch_t.append(_timed(run_epochs) / (steps * train_epochs))
    c, t, e = (statistics.median(v) * 1e6 for v in (cooper_t, train_t, epoch_t))
    return {"seed": seed, "scheme": scheme, "cooper_optimizer": SCHEMES[scheme],
            "cooper_us_per_step": c, "feasjax_us_per_step": t, "feasjax_epoch_us_per_step": e,
            "ratio": c / t, "train_over_epoch": t / e, "max_param_gap": gap,
            "max_multiplier_gap": lam_gap}


def train_against_epoch(data, epochs: int, repeats: int = 5) -> tuple[float, float]:
    """Per-step µs of ``fj.train(epochs=epochs)`` and of ``epochs`` calls of the compiled epoch.

    The steady state of a whole run (one call, its host work per epoch included) against the
    bare program; medians of ``repeats`` interleaved measurements.
    """
    n, batch = data["x"].shape[0], 64
    _, _, solver, state = fj_problem([32], n, "simultaneous", 0)
    key = jax.random.key(1)
    epoch = jax.jit(fj.epoch_fn(solver, batch), donate_argnums=0)
    state, _ = fj.train(solver, state, data, epochs=1, batch_size=batch, key=key,
                        progress=False)  # compiles
    state = jax.block_until_ready(epoch(state, data, key))[0]
    train_t, epoch_t = [], []
    for _ in range(repeats):
        def run_train():
            nonlocal state
            state, _ = fj.train(solver, state, data, epochs=epochs, batch_size=batch, key=key,
                                progress=False)
            jax.block_until_ready(state)

        def run_epochs():
            nonlocal state
            for e in range(epochs):
                state = epoch(state, data, jax.random.fold_in(key, e))[0]
            jax.block_until_ready(state)

        train_t.append(_timed(run_train))
        epoch_t.append(_timed(run_epochs))
    per_step = 1e6 / (epochs * (n // batch))
    return statistics.median(train_t) * per_step, statistics.median(epoch_t) * per_step


# -------------------------------------------------------------------------------- N-scaling
def scaling_run(torch, cooper, num_samples: int, steps: int, repeats: int) -> dict:
    """Per-step µs of both libraries with N multipliers (rows from a pool of 4096)."""
    batch, pool = 256, 4096
    kx, ky = jax.random.split(jax.random.key(1))
    pool_x = jax.random.normal(kx, (pool, 64))
    pool_y = jax.random.randint(ky, (pool,), 0, 10, dtype=jnp.int32)
    _, graphdef, solver, state = fj_problem([256, 256], num_samples, "simultaneous", 0,
                                            pool_x, pool_y)
    ref = CooperFL(torch, cooper, fj_weights(graphdef, state.params), num_samples, batch,
                   "simultaneous")
    run = jax.jit(chunk_fn(solver, steps), donate_argnums=0)
    data = {"idx": jnp.arange(num_samples, dtype=jnp.int32)}
    px = torch.from_numpy(np.asarray(pool_x))
    py = torch.from_numpy(np.asarray(pool_y).astype(np.int64))

    def batches(rep):
        return jax.random.randint(jax.random.key(rep), (steps, batch), 0, num_samples,
                                  dtype=jnp.int32)

    def cooper_steps(rep):
        for idx in torch.from_numpy(np.asarray(batches(rep)).astype(np.int64)):
            rows = idx % pool
            ref.step(px[rows], py[rows], idx)

    state = jax.block_until_ready(run(state, data, batches(0), 0))[0]  # compile
    cooper_steps(0)
    cooper_t, fj_t = [], []
    for rep in range(1, repeats + 1):
        cooper_t.append(_timed(lambda: cooper_steps(rep)) / steps)
        todo = jax.block_until_ready(batches(rep))

        def run_fj():
            nonlocal state
            state = jax.block_until_ready(run(state, data, todo, 0))[0]

        fj_t.append(_timed(run_fj) / steps)
    c, f = statistics.median(cooper_t) * 1e6, statistics.median(fj_t) * 1e6
    return {"cooper_us_per_step": c, "feasjax_us_per_step": f, "ratio": c / f}


# ------------------------------------------------------------------------------ end to end
def digits_data(ds) -> dict:
    return {"x": jnp.asarray(ds.x_train), "y": jnp.asarray(ds.y_train, jnp.int32)}


def final_metrics(train_losses, test_logits, y_test) -> dict:
    train_losses = np.asarray(train_losses)
    return {"train_max_loss": float(train_losses.max()),
            "feasible_fraction": float(np.mean(train_losses <= EPSILON)),
            "test_accuracy": float(np.mean(np.argmax(np.asarray(test_logits), -1) == y_test))}


def timed_digits_run(train, epochs: int) -> dict:
    """Seconds of ``train(graphdef, params, data, epochs) -> params`` on digits, with the metrics.

    The clock starts when the model exists (as Cooper's does): whatever ``train`` builds (solver,
    state, compiled programs), the training itself, one evaluation program for both numbers and
    the host reads of the metrics are all inside it.
    """
    ds = fj.load_dataset("digits")
    data, x_test = digits_data(ds), jnp.asarray(ds.x_test)
    graphdef, params = nnx.split(fj.MLP(64, [32], 10, rngs=nnx.Rngs(0)))
    jax.block_until_ready((data, x_test, params))
    start = time.perf_counter()
    params = train(graphdef, params, data, epochs)

    @jax.jit
    def evaluate(params):
        model = nnx.merge(graphdef, params)
        train_losses = optax.softmax_cross_entropy_with_integer_labels(model(data["x"]),
                                                                       data["y"])
        return train_losses, model(x_test)

    train_losses, logits = evaluate(params)
    metrics = final_metrics(train_losses, logits, ds.y_test)
    return {"seconds": time.perf_counter() - start, **metrics}


def train_with_feasjax(graphdef, params, data, epochs: int):
    """The digits FL run through :func:`feasjax.train`."""
    solver = fj.feasible_learning(fj.per_sample_loss_fn(graphdef, "cross_entropy"),
                                  optax.sgd(PRIMAL_LR, momentum=MOMENTUM),
                                  num_samples=data["x"].shape[0], epsilon=EPSILON,
                                  dual_optimizer=fj.ascent(optax.sgd(DUAL_LR)))
    state, _ = fj.train(solver, solver.init(params), data, epochs=epochs, batch_size=64,
                        key=jax.random.key(0), progress=False)
    return state.params


def train_with_minimal_jax(graphdef, params, data, epochs: int):
    """The same run as the smallest plain-JAX program we could write: no library, no checks.

    One jitted epoch (permutation, scan of the simultaneous primal-dual step, dual ascent with
    projection at the batch's rows) from the same weights and minibatches. It is the floor a
    library's cold start can approach: the XLA compilation of this algorithm on this machine,
    with nothing of feasjax in it.
    """
    tx, n, batch = optax.sgd(PRIMAL_LR, momentum=MOMENTUM), data["x"].shape[0], 64

    def lagrangian(p, weights, idx):
        losses = optax.softmax_cross_entropy_with_integer_labels(
            nnx.merge(graphdef, p)(data["x"][idx]), data["y"][idx])
        return jnp.mean(weights * (losses - EPSILON)), losses

    @functools.partial(jax.jit, donate_argnums=0)
    def epoch(carry, key):
        steps = n // batch
        order = jax.random.permutation(key, n)[: steps * batch].reshape(steps, batch)

        def step(carry, idx):
            p, opt, lam = carry
            weights = lam[idx]
            grads, losses = jax.grad(lagrangian, has_aux=True)(p, weights, idx)
            updates, opt = tx.update(grads, opt, p)
            lam = lam.at[idx].set(jnp.maximum(weights + DUAL_LR * (losses - EPSILON), 0.0))
            return (optax.apply_updates(p, updates), opt, lam), None

        return jax.lax.scan(step, carry, order)[0]

    carry = (params, tx.init(params), jnp.ones(n))
    for e in range(epochs):
        carry = epoch(carry, jax.random.fold_in(jax.random.key(0), e))
    return carry[0]


def cooper_end_to_end(torch, cooper, epochs: int) -> dict:
    """The same run in Cooper (same initial weights and minibatches)."""
    ds = fj.load_dataset("digits")
    data = digits_data(ds)
    n, batch = data["x"].shape[0], 64
    xt = torch.from_numpy(np.asarray(ds.x_train, np.float32))
    yt = torch.from_numpy(np.asarray(ds.y_train).astype(np.int64))
    _, graphdef, _, state = fj_problem([32], n, "simultaneous", 0)
    weights = fj_weights(graphdef, state.params)
    orders = [torch.from_numpy(np.asarray(fj.epoch_indices(
        jax.random.fold_in(jax.random.key(0), e), n, batch)).astype(np.int64))
        for e in range(epochs)]  # drawn before the clock starts: not Cooper's work
    start = time.perf_counter()  # the model's torch copy is built inside: microseconds
    ref = CooperFL(torch, cooper, weights, n, batch, "simultaneous")
    for order in orders:
        for idx in order:
            ref.step(xt[idx], yt[idx], idx)
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(ref.model(xt), yt, reduction="none")
        logits = ref.model(torch.from_numpy(np.asarray(ds.x_test, np.float32)))
    metrics = final_metrics(losses.numpy(), logits.numpy(), ds.y_test)
    return {"seconds": time.perf_counter() - start, **metrics}


def in_fresh_process(cache_dir: str, epochs: int, program: str = "feasjax") -> dict:
    """An end-to-end run in a new Python process using ``cache_dir`` as JAX's cache:
    :func:`train_with_feasjax` or (``program="minimal"``) :func:`train_with_minimal_jax`."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", cache_dir,
                          "--epochs", str(epochs), "--program", program], check=True,
                         capture_output=True, text=True, env=dict(os.environ))
    return json.loads(out.stdout.strip().splitlines()[-1])


def end_to_end(torch, cooper, epochs: int, repeats: int) -> tuple[dict, dict]:
    """Median seconds over ``repeats`` interleaved rounds: Cooper, feasjax cold (a fresh process
    and an empty cache each round) and warm (a fresh process, the cache the cold run filled),
    and the minimal plain-JAX program cold; with each median run's metrics."""
    rounds = {"cooper": [], "feasjax_cold": [], "feasjax_warm": [], "minimal_jax_cold": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            rounds["feasjax_cold"].append(in_fresh_process(cache, epochs))
            rounds["feasjax_warm"].append(in_fresh_process(cache, epochs))
        with tempfile.TemporaryDirectory() as cache:
            rounds["minimal_jax_cold"].append(in_fresh_process(cache, epochs, "minimal"))
        rounds["cooper"].append(cooper_end_to_end(torch, cooper, epochs))
    medians = {k: sorted(v, key=lambda r: r["seconds"])[len(v) // 2] for k, v in rounds.items()}
    seconds = {k: r["seconds"] for k, r in medians.items()}
    seconds["all"] = {k: [r["seconds"] for r in v] for k, v in rounds.items()}
    return seconds, medians


def worker(cache_dir: str, epochs: int, program: str) -> None:
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    train = train_with_minimal_jax if program == "minimal" else train_with_feasjax
    print(json.dumps(timed_digits_run(train, epochs)))


# ------------------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30,
                        help="timed epochs per seed and scheme, and the end-to-end run's length")
    parser.add_argument("--train-epochs", type=int, default=5,
                        help="epochs per timed fj.train call (one Cooper epoch per repetition)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e3, 1e4, 1e6, 1e7])
    parser.add_argument("--scaling-steps", type=int, default=50)
    parser.add_argument("--scaling-repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one seed, few epochs and steps")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--end-to-end-repeats", type=int, default=3,
                        help="interleaved rounds of the end-to-end runs (medians reported)")
    parser.add_argument("--worker", metavar="CACHE_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--program", default="feasjax", choices=["feasjax", "minimal"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.epochs, args.program)
    if args.quick:
        args.seeds, args.epochs, args.sizes = [0], 5, [1e3, 1e6]
        args.scaling_steps, args.scaling_repeats, args.end_to_end_repeats = 20, 3, 1
    torch, cooper = import_cooper()
    data = digits_data(fj.load_dataset("digits"))

    runs = []
    for seed in args.seeds:
        for scheme in SCHEMES:
            runs.append(digits_run(torch, cooper, data, seed, scheme, args.epochs,
                                   args.train_epochs))
            r = runs[-1]
            print(f"digits seed {seed} {scheme:>16}: Cooper {r['cooper_us_per_step']:7.1f} us, "
                  f"fj.train {r['feasjax_us_per_step']:6.1f} us (ratio {r['ratio']:.1f}), "
                  f"compiled epoch {r['feasjax_epoch_us_per_step']:6.1f} us; "
                  f"param gap {r['max_param_gap']:.1e}", flush=True)
    cooper_us = statistics.median(r["cooper_us_per_step"] for r in runs)
    feasjax_us = statistics.median(r["feasjax_us_per_step"] for r in runs)
    epoch_us = statistics.median(r["feasjax_epoch_us_per_step"] for r in runs)
    run_us, run_epoch_us = train_against_epoch(data, args.epochs)

    end_to_end_seconds, ends = end_to_end(torch, cooper, args.epochs, args.end_to_end_repeats)
    print(f"end to end ({args.epochs} epochs, median of {args.end_to_end_repeats}): Cooper "
          f"{end_to_end_seconds['cooper']:.2f} s, feasjax cold "
          f"{end_to_end_seconds['feasjax_cold']:.2f} s, warm "
          f"{end_to_end_seconds['feasjax_warm']:.2f} s; minimal plain JAX cold "
          f"{end_to_end_seconds['minimal_jax_cold']:.2f} s", flush=True)

    scaling = {}
    for n in map(int, args.sizes):
        scaling[str(n)] = scaling_run(torch, cooper, n, args.scaling_steps, args.scaling_repeats)
        s = scaling[str(n)]
        print(f"N={n:>11,d}: Cooper {s['cooper_us_per_step']:9.1f} us, feasjax "
              f"{s['feasjax_us_per_step']:7.1f} us, ratio {s['ratio']:.1f}", flush=True)

    device = jax.devices()[0]
    report = {
        "device": f"{device.platform}:{device.device_kind}",
        "threads": 1,
        "digits": {
            "cooper_us_per_step": cooper_us, "feasjax_us_per_step": feasjax_us,
            "ratio": cooper_us / feasjax_us,
            "max_param_gap": max(r["max_param_gap"] for r in runs),
            "end_to_end_seconds": end_to_end_seconds,
            "max_multiplier_gap": max(r["max_multiplier_gap"] for r in runs),
            "feasjax_epoch_us_per_step": epoch_us,
            "train_over_epoch": feasjax_us / epoch_us,
            "whole_run": {"epochs": args.epochs, "train_us_per_step": run_us,
                          "epoch_us_per_step": run_epoch_us,
                          "train_over_epoch": run_us / run_epoch_us},
            "end_to_end_metrics": ends,
            "runs": runs,
        },
        "n_scaling": scaling,
        "versions": {"jax": jax.__version__, "optax": optax.__version__,
                     "torch": torch.__version__, "cooper": cooper.__version__,
                     "python": platform.python_version()},
    }
    d = report["digits"]
    print(f"digits: Cooper / fj.train {d['ratio']:.1f}x; fj.train / compiled epoch "
          f"{d['train_over_epoch']:.3f} ({args.train_epochs}-epoch calls), "
          f"{d['whole_run']['train_over_epoch']:.3f} (one {args.epochs}-epoch call); "
          f"max parameter gap {d['max_param_gap']:.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
