"""Group-robustness methods on data with groups, every seed in one vmapped program.

Each method of ``GROUP_METHODS`` composes library pieces: ``erm``, ``fl``, ``rfl``:
:func:`feasjax.experiments.build_solver`; ``reweight``: ERM on :func:`feasjax.core.reweighted`
losses with :func:`feasjax.core.group_weights` of the training groups; ``llr``: the ERM model's
frozen features and a head retrained on the validation split
(:func:`feasjax.experiments.cross_validated_head`); ``fairdropout``: ERM on an MLP with
:class:`feasjax.models.TiedDropout`; ``groupdro``: :func:`feasjax.core.group_dro`.

Hyper-parameters are selected per seed on the validation split only, by worst-group accuracy,
every candidate trained in the same vmapped program; the test split is read once the selection
is over. The batch is ``{"x", "y", "group", "index"}``; ``index`` feeds example-tied dropout.
"""
from __future__ import annotations

import itertools
import time
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from feasjax.core.reweighting import group_counts, group_weights, reweighted
from feasjax.core.robust import group_dro
from feasjax.data.spurious import GroupDataset
from feasjax.experiments.builders import build_primal_optimizer, build_solver
from feasjax.experiments.config import GROUP_METHODS, RunConfig
from feasjax.experiments.llr import cross_validated_head
from feasjax.metrics.groups import group_summary
from feasjax.models.losses import cross_entropy
from feasjax.models.nets import MLP
from feasjax.models.tied_dropout import TiedDropout
from feasjax.parallel.sweeps import stack_runs
from feasjax.training.engine import train

__all__ = ["GroupConfig", "run_group_method"]


class GroupConfig(NamedTuple):
    """Hyper-parameters of a group-robustness comparison (shared where methods overlap).

    Example:
      >>> from feasjax.experiments import GroupConfig
      >>> GroupConfig().tied_dropout.p_gen, GroupConfig(epochs=2).epochs
      (0.5, 2)
    """

    epochs: int = RunConfig().epochs  # the demo's; feasjax groups shows it without JAX
    batch_size: int = 64
    learning_rate: float = 0.05
    momentum: float = 0.9
    hidden: tuple = (64,)
    epsilon: float = 0.1  # fl, rfl
    dual_learning_rate: float = 0.1  # fl, rfl
    alpha: float = 5.0  # rfl
    # Hyper-parameters given as a tuple are selected per seed on the validation split.
    gamma: float | tuple = (0.5, 1.0, 1.5, 2.0)  # reweight: weights p_g^-γ (1: importance)
    dro_step_size: float | tuple = (0.01, 0.05, 0.1, 0.2)  # groupdro: exponentiated gradient η
    dro_adjustment: float | tuple = (0.0, 1.0, 2.0)  # groupdro: generalisation adjustment C
    tied_dropout: TiedDropout = TiedDropout(p_gen=0.5, p_mem=0.2)  # fairdropout
    llr_gammas: tuple = (0.0, 0.5, 1.0, 1.5, 2.0)  # llr: chosen by cross-validation
    llr_steps: int = 300
    llr_folds: int = 5  # llr: folds of the cross-validation inside the validation split

    def run_config(self) -> RunConfig:
        """The :class:`feasjax.experiments.RunConfig` of the shared optimizers."""
        return RunConfig(epochs=self.epochs, batch_size=self.batch_size, epsilon=self.epsilon,
                         learning_rate=self.learning_rate, momentum=self.momentum,
                         dual_learning_rate=self.dual_learning_rate, alpha=self.alpha,
                         hidden=self.hidden, batch_norm=False, dropout=0.0)


def _split(datasets: Sequence[GroupDataset], split: str) -> dict:
    return {k: jnp.asarray(np.stack([getattr(d, f"{k[0]}_{split}") for d in datasets]))
            for k in ("x", "y", "group")}


def _apply(graphdef, params, x, *, features_only=False):
    model = nnx.merge(graphdef, params)
    model.eval()  # example-tied dropout keeps the generalisation units only
    if not features_only:
        return model(x)
    for layer in model.layers[:-1]:
        x = jax.nn.relu(layer(x.reshape(x.shape[0], -1)))
    return x


def _make_solver(method, graphdef, num_samples, config, num_groups) -> Callable:
    """``hparams -> solver`` of ``method`` (one run's candidate and group counts)."""
    run_config = config.run_config()

    def loss(params, batch):
        logits = nnx.merge(graphdef, params)(batch["x"], indices=batch["index"])
        return jax.vmap(cross_entropy)(logits, batch["y"])

    if method == "reweight":
        return lambda hp: build_solver("erm", reweighted(loss, hp["weights"]), num_samples,
                                       run_config)
    if method == "groupdro":
        primal = build_primal_optimizer(run_config, 1)
        return lambda hp: group_dro(loss, primal, num_groups=num_groups,
                                    step_size=hp["step_size"], adjustment=hp["adjustment"],
                                    group_sizes=hp["counts"])
    base = method if method in ("fl", "rfl") else "erm"  # fairdropout, llr: ERM
    return lambda hp: build_solver(base, loss, num_samples, run_config)


def _grid(method: str, config: GroupConfig) -> list[dict]:
    """The method's candidate hyper-parameters: every combination of its tuples."""
    axes = {"reweight": {"gamma": config.gamma},
            "groupdro": {"step_size": config.dro_step_size,
                         "adjustment": config.dro_adjustment}}.get(method, {})
    values = [np.atleast_1d(np.asarray(v, np.float64)).tolist() for v in axes.values()]
    return [dict(zip(axes, combo)) for combo in itertools.product(*values)] if axes else []


def _train(method, datasets, seeds, config, grid):
    """Train every seed with every candidate of ``grid``: runs seed-major, ``(R * K, ...)``."""
    candidates = grid or [{}]
    datasets = [d for d in datasets for _ in candidates]
    seeds = [s for s in seeds for _ in candidates]
    tied = config.tied_dropout if method == "fairdropout" else None
    models = [MLP(int(np.prod(datasets[0].x_train.shape[1:])), config.hidden,
                  datasets[0].num_classes, rngs=nnx.Rngs(s), tied_dropout=tied) for s in seeds]
    graphdef, params = nnx.split(models[0])[0], stack_runs([nnx.split(m)[1] for m in models])
    data = _split(datasets, "train")
    num_runs, num_samples = data["y"].shape
    data["index"] = jnp.broadcast_to(jnp.arange(num_samples, dtype=jnp.int32),
                                     (num_runs, num_samples))
    num_groups = datasets[0].num_groups
    counts = jax.vmap(lambda g: group_counts(g, num_groups))(data["group"])
    chosen = {name: jnp.asarray([c[name] for c in candidates] * (num_runs // len(candidates)),
                                jnp.float32) for name in candidates[0]}
    hparams = {"counts": counts, "step_size": chosen.get("step_size", counts[:, 0]),
               "adjustment": chosen.get("adjustment", counts[:, 0]),
               "weights": jax.vmap(lambda c, g: group_weights(c, gamma=g))(
                   counts, chosen.get("gamma", jnp.ones(num_runs)))}
    make = _make_solver(method, graphdef, num_samples, config, num_groups)

    def step(carry, batch, idx, *, unique_indices=False):  # each run its own hyper-parameters
        state, hp = carry
        state, info = make(hp).step(state, batch, idx, unique_indices=unique_indices)
        return (state, hp), {"ok": info.ok}

    states = jax.vmap(lambda p, hp: make(hp).init(p))(params, hparams)
    (states, _), _ = train(step, (states, hparams), data, epochs=config.epochs,
                           batch_size=min(config.batch_size, num_samples),
                           key=jnp.stack([jax.random.key(s) for s in seeds]),
                           runs=num_runs, per_run_data=True, progress=False)
    return graphdef, states.params


def _select(graphdef, params, datasets, grid):
    """Per seed, the candidate with the best validation worst-group accuracy (ties: the better
    average accuracy, then the first candidate): ``(params, selected)``."""
    runs, k = len(datasets), len(grid)
    if k <= 1:  # nothing to choose
        return params, {name: [value] * runs for name, value in (grid or [{}])[0].items()}
    params = jax.tree.map(lambda x: x.reshape(runs, k, *x.shape[1:]), params)
    val = _split(datasets, "val")
    num_groups = datasets[0].num_groups

    def scores(p, v):
        logits = jax.vmap(lambda q: _apply(graphdef, q, v["x"]))(p)
        out = jax.vmap(lambda lg: group_summary(lg, v["y"], v["group"], num_groups))(logits)
        return out["worst_group_accuracy"], out["average_accuracy"]

    worst, average = jax.device_get(jax.jit(jax.vmap(scores))(params, val))
    best = [int(np.lexsort((-average[r], -np.nan_to_num(worst[r], nan=-1.0)))[0])
            for r in range(runs)]
    chosen = jax.tree.map(lambda x: x[jnp.arange(runs), jnp.asarray(best)], params)
    selected = {name: [grid[b][name] for b in best] for name in grid[0]}
    selected["validation_worst_group_accuracy"] = [float(worst[r, b]) for r, b in enumerate(best)]
    return chosen, selected


def _llr_heads(graphdef, params, datasets, config):
    """The heads retrained on the validation split, ``γ`` chosen by cross-validation there."""
    val = _split(datasets, "val")
    num_classes, num_groups = datasets[0].num_classes, datasets[0].num_groups

    def one(p, v):
        feats = _apply(graphdef, p, v["x"], features_only=True)
        return cross_validated_head(feats, v["y"], v["group"], num_classes, num_groups,
                                    gammas=jnp.asarray(config.llr_gammas), folds=config.llr_folds,
                                    steps=config.llr_steps)

    heads, gammas, worst = jax.jit(jax.vmap(one))(params, val)
    return heads, {"gamma": np.asarray(gammas).tolist(),
                   "validation_worst_group_accuracy": np.asarray(worst).max(axis=1).tolist()}


def run_group_method(method: str, datasets: Sequence[GroupDataset], seeds: Sequence[int],
                     config: GroupConfig = GroupConfig(), *, cache: dict | None = None) -> dict:
    """Train ``method`` for every seed (``datasets[r]`` with model seed ``seeds[r]``).

    ``cache``: pass the same dict to the calls of one comparison, so that ``llr`` retrains the
    head of the ERM models already trained by ``erm`` (its ``seconds`` then include that ERM
    training, the cost of the method).

    Returns:
      ``{"test": {"average_accuracy": [per seed], "worst_group_accuracy": [...],
      "balanced_accuracy": [...], "group_accuracy": {"<group>": [per seed]}},
      "seconds": float, "train": {same keys, eval mode}, "selected": {name: [per seed],
      "validation_worst_group_accuracy": [per seed]}}`` (``selected`` empty for a method
      without hyper-parameters to choose), and for ``fairdropout``
      ``"train_with_masks"`` (the training split with each example's own mask, as it was
      fitted); ``seconds`` is the wall time of training and test evaluation.

    Example:
      >>> from feasjax.data import spurious_digits
      >>> from feasjax.experiments import GroupConfig, run_group_method
      >>> out = run_group_method("groupdro", [spurious_digits(0)], [0],
      ...                        GroupConfig(epochs=1))
      >>> test = out["test"]
      >>> sorted(test["group_accuracy"]), len(test["worst_group_accuracy"])
      (['0', '1', '2', '3'], 1)
    """
    if method not in GROUP_METHODS:
        raise ValueError(f"method must be one of {GROUP_METHODS}, got {method=}")
    if not datasets or len(datasets) != len(seeds):
        raise ValueError(f"give one dataset per seed, got {len(datasets)} datasets and "
                         f"{len(seeds)} seeds")
    start, cache = time.perf_counter(), {} if cache is None else cache
    base = "erm" if method == "llr" else method
    offset = 0.0
    if base == "erm" and "erm" in cache:
        graphdef, params, offset = cache["erm"]
        selected = {}
    else:
        grid = _grid(base, config)
        graphdef, params = _train(base, datasets, seeds, config, grid)
        params, selected = _select(graphdef, params, datasets, grid)
        if base == "erm":
            cache["erm"] = (graphdef, params, time.perf_counter() - start)
    if method == "llr":
        heads, selected = _llr_heads(graphdef, params, datasets, config)
    # Selection is over: only now is the test split read.
    test, num_groups = _split(datasets, "test"), datasets[0].num_groups
    forward = jax.jit(jax.vmap(lambda p, x: _apply(graphdef, p, x)))
    logits = forward(params, test["x"]) if method != "llr" else jax.jit(jax.vmap(
        lambda p, h, x: h(_apply(graphdef, p, x, features_only=True))))(params, heads, test["x"])
    result = {"test": _report(logits, test, num_groups),
              "seconds": offset + time.perf_counter() - start, "selected": selected}
    train_split = _split(datasets, "train")
    result["train"] = _report(forward(params, train_split["x"]), train_split, num_groups)
    if method == "fairdropout":  # with each example's own mask: what it memorised
        index = jnp.arange(train_split["y"].shape[1], dtype=jnp.int32)
        logits = jax.jit(jax.vmap(lambda p, x: nnx.merge(graphdef, p)(x, indices=index)))(
            params, train_split["x"])
        result["train_with_masks"] = _report(logits, train_split, num_groups)
    return result


def _report(logits, split, num_groups):
    summary = jax.device_get(jax.jit(jax.vmap(lambda lg, y, g: group_summary(
        lg, y, g, num_groups)))(logits, split["y"], split["group"]))
    out = {k: summary[k].tolist() for k in
           ("average_accuracy", "worst_group_accuracy", "balanced_accuracy")}
    out["group_accuracy"] = {str(g): summary["group_accuracy"][:, g].tolist()
                             for g in range(num_groups)}
    return out
