"""Vectorised sweeps: runs (seeds, ε, dual learning rates) stacked on a leading axis and
trained in one ``vmap``-ed program, each as it would run alone (up to reassociation)."""
from __future__ import annotations

from contextlib import closing
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.core.solver import PrimalDual
from feasjax.parallel.layout import ShardLayout
from feasjax.training.progress import progress_reporter
from feasjax.parallel.mesh import data_parallel_epoch
from feasjax.training.loop import epoch_fn

__all__ = ["SweepHistory", "stack_runs", "unstack_runs", "sweep_epoch", "train_sweep",
           "summarize_runs"]


def stack_runs(trees: Sequence[Any]) -> Any:
    """Stack pytrees of identical structure along a new leading run axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.parallel import stack_runs
      >>> stack_runs([{"w": jnp.zeros(2)}, {"w": jnp.ones(2)}])["w"].shape
      (2, 2)
    """
    if not trees:
        raise ValueError("stack_runs needs at least one run, got an empty sequence")
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack_runs(tree: Any) -> list:
    """The runs of a stacked pytree, as a list of pytrees.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.parallel import unstack_runs
      >>> [float(t["w"]) for t in unstack_runs({"w": jnp.array([1.0, 2.0])})]
      [1.0, 2.0]
    """
    runs = {np.shape(x)[0] for x in jax.tree.leaves(tree)}
    if len(runs) != 1:
        raise ValueError(f"leaves must share one leading run axis, got sizes {sorted(runs)}")
    return [jax.tree.map(lambda x, r=r: x[r], tree) for r in range(runs.pop())]


def sweep_epoch(solver: PrimalDual | Callable[[Any], PrimalDual], batch_size: int, *,
                mesh: jax.sharding.Mesh | None = None, layout: ShardLayout | None = None,
                loss_of: Callable | None = None) -> Callable:
    """One epoch of every run, vmapped: ``(states, data, keys, hparams=None) -> (states, info)``.

    Args:
      solver: a :class:`feasjax.PrimalDual`, or ``hparams -> PrimalDual`` (called inside
        ``vmap`` with one run's ``hparams``).
      batch_size: the (global) minibatch size.
      mesh, layout: optional 1-D data mesh and data layout: runs vectorised in ``shard_map``.
      loss_of: see :func:`feasjax.epoch_fn`.

    Returns:
      A jitted runner (states donated); states, keys and info carry the run axis first.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, per_example
      >>> from feasjax.parallel import stack_runs, sweep_epoch
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> states = stack_runs([erm.init(jnp.zeros(())), erm.init(jnp.ones(()))])
      >>> keys = jax.random.split(jax.random.key(0), 2)
      >>> states, info = sweep_epoch(erm, 2)(states, jnp.arange(4.0), keys)
      >>> states.params.shape, info.losses.shape
      ((2,), (2, 2, 2))
    """
    if mesh is not None:
        if layout is None:
            raise ValueError("layout is required with a mesh (from feasjax.parallel.shard_data)")
        return data_parallel_epoch(solver, batch_size, mesh, layout, loss_of=loss_of, runs=True)

    def one(state, data, key, hparams):
        this = solver if isinstance(solver, PrimalDual) else solver(hparams)
        return epoch_fn(this, batch_size, loss_of=loss_of)(state, data, key)

    vmapped = jax.vmap(one, in_axes=(0, None, 0, 0))
    return jax.jit(lambda states, data, keys, hparams=None: vmapped(states, data, keys, hparams),
                   donate_argnums=0)


class SweepHistory(NamedTuple):
    """What :func:`train_sweep` reports per epoch (host arrays with one entry per run)."""

    mean_loss: list  # per epoch: (R,) mean of the per-sample losses seen before each step
    skipped: list  # per epoch: (R,) steps skipped so far


def train_sweep(runner: Callable, states: Any, data: Any, *, epochs: int, keys: jax.Array,
                hparams: Any = None, progress: bool | str = True, description: str = "sweep"
                ) -> tuple[Any, SweepHistory]:
    """Train every run for ``epochs`` epochs; run ``r``, epoch ``e`` uses ``fold_in(keys[r], e)``
    (the keys :func:`feasjax.train` gives a lone run with ``key=keys[r]``).

    Args:
      runner: from :func:`sweep_epoch`.
      states: stacked initial states (donated).
      data: the shared dataset (sharded when the runner has a mesh).
      epochs: number of epochs ``>= 1``.
      keys: ``(R,)`` key array, one per run.
      hparams: optional per-run hyper-parameters (leading run axis).
      progress, description: the bar (mean loss over runs), as in :func:`feasjax.train`.

    Returns:
      ``(states, history)``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, per_example
      >>> from feasjax.parallel import stack_runs, sweep_epoch, train_sweep
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> states = stack_runs([erm.init(jnp.zeros(()))] * 3)
      >>> keys = jax.random.split(jax.random.key(0), 3)
      >>> states, hist = train_sweep(sweep_epoch(erm, 2), states, jnp.arange(4.0),
      ...                            epochs=30, keys=keys, progress=False)
      >>> [abs(float(p) - 1.5) < 0.2 for p in states.params], hist.mean_loss[-1].shape
      ([True, True, True], (3,))
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs=}")
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    history = SweepHistory([], [])
    with closing(progress_reporter(progress, total=epochs, description=description)) as bar:
        for epoch in range(epochs):
            states, info = runner(states, data, fold(keys, epoch), hparams)
            history.mean_loss.append(np.asarray(jnp.nanmean(info.losses, axis=(1, 2))))
            history.skipped.append(np.asarray(states.skipped))
            bar.advance(1)
            bar.report(epoch + 1, {"loss": float(history.mean_loss[-1].mean()),
                                   "skipped": int(history.skipped[-1].max())})
    return states, history


def summarize_runs(results: Sequence[dict]) -> dict:
    """Mean and standard deviation (over ``R`` runs: ``ddof=0``) of every number in nested
    result dicts.

    Example:
      >>> from feasjax.parallel import summarize_runs
      >>> runs = [{"train": {"acc": 0.5}}, {"train": {"acc": 0.7}}]
      >>> summarize_runs(runs)["train"]["acc"]
      {'mean': 0.6, 'std': 0.1}
    """
    first = results[0]
    if isinstance(first, dict):
        return {k: summarize_runs([r[k] for r in results]) for k in first}
    values = np.asarray(results, dtype=float)
    return {"mean": round(float(values.mean()), 12), "std": round(float(values.std()), 12)}
