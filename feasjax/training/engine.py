"""The training engine, :func:`train`: one loop of compiled, donated ``lax.scan`` epochs for any
step (:mod:`feasjax.training.steps`), whose host reads one small summary per chunk (an epoch late
when it can); checkpoints, the mesh, sweeps and data beyond memory are its options.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from feasjax.core import checks
from feasjax.core.solver import PrimalDual
from feasjax.data.pipeline import Pipeline
from feasjax.training.placement import auto_mesh, pad_rows, place, row_sharding, unpad_rows
from feasjax.training.programs import (cached_program, check_state_fits_data, chunk_stats,
                                       compiled_chunk, multiplier_stats, num_steps, unalias)
from feasjax.training.run_checkpoints import Checkpoints
from feasjax.training.steps import solver_step
from feasjax.training.streamed import streamed_chunks
from feasjax.training.tally import History, raise_on_skipped, run_epochs

__all__ = ["train"]


def train(
    step: Callable | PrimalDual,
    carry: Any,
    data: Any,
    *,
    epochs: int,
    batch_size: int | None = None,
    key: jax.Array,
    epsilon: float | None = None,
    eval_fn: Callable[[Any], Any] | None = None,
    on_nonfinite: str = "skip",
    progress: bool | str = True,
    description: str = "train",
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    max_to_keep: int = 3,
    resume: bool = True,
    config: dict | None = None,
    async_save: bool = True,
    after_save: Callable[[int], None] | None = None,
    mesh: Mesh | None = None,
    runs: int | None = None,
    per_run_data: bool = False,
    loss_of: Callable[[Any], jax.Array] | None = None,
    epoch_runner: Callable | None = None,
) -> tuple[Any, History]:
    """Train ``epochs`` epochs of ``step`` over shuffled minibatches of ``data``: epoch ``e``
    cuts a permutation drawn with ``fold_in(key, e)`` into ``N // batch_size`` minibatches.

    Args:
      step: ``step(carry, batch, indices) -> (carry, report)`` (:mod:`feasjax.training.steps`),
        or a :class:`feasjax.PrimalDual`, run through :func:`feasjax.training.steps.solver_step`.
      carry: the initial carry (donated: do not reuse it afterwards); for a ``PrimalDual`` its
        state.
      data: pytree of arrays with a leading sample axis, ideally already on the device; or a
        :class:`feasjax.data.pipeline.Pipeline` (data beyond memory: a jitted step per
        minibatch; one device, one run; ``batch_size`` is then the pipeline's).
      epochs: number of epochs ``>= 1`` (with checkpoints: in all, resumed ones included).
      batch_size: minibatch size.
      key: ``jax.random`` key (``(R,)`` keys with ``runs``).
      epsilon: the FL bound, for the feasible fraction in the history and the bar.
      eval_fn: optional ``carry -> metrics`` evaluated after every epoch.
      on_nonfinite: ``"skip"`` counts the steps the step skipped (``report["ok"]``);
        ``"raise"`` raises ``FloatingPointError`` after the chunk, naming the epoch, the step
        and the sample indices.
      progress: ``True``/``"bar"``, ``"lines"`` or ``False``
        (:func:`feasjax.training.progress.progress_reporter`).
      description: the bar's label.
      checkpoint_dir: where Orbax checkpoints go (``None``: none). Each holds the carry, the
        key, the epoch and step within it, the history and the configuration; a run killed at
        any point and resumed ends bit for bit where an uninterrupted one does (on the CPU; on
        GPUs with deterministic kernels).
      checkpoint_every: steps between checkpoints (default: one epoch); epochs run in chunks of
        at most this many steps (the same computation), which never cross an epoch.
      max_to_keep: checkpoints kept.
      resume: continue from the latest readable checkpoint in ``checkpoint_dir``; unreadable
        newer ones are moved aside (``<step>.corrupt-<time>``) with a warning. With ``False``
        the directory must hold none. A checkpoint past ``epochs`` raises; one at ``epochs`` is
        returned. A resume with other data (shape, dtype and sha256 of every leaf), another
        key, epsilon, batch size or ``config`` raises, naming what differs.
      config: JSON-able dict describing the run, saved and compared on resume.
      async_save: write checkpoints in a background thread.
      after_save: called with the global step right after each save starts.
      mesh: a device mesh (e.g. :func:`feasjax.data_mesh`): data and per-sample leaves of the
        carry (multipliers, their dual optimizer states) are sharded over its first axis
        (replicated when the device count does not divide the number of samples), the rest
        replicated; results equal one device's up to float reassociation.
      runs: train ``R`` runs at once in one vmapped program (seeds, or hyper-parameters the
        carry holds): ``carry`` and ``key`` have a leading axis of ``R``.
      per_run_data: with ``runs``, ``data`` has the leading run axis too (each run its own
        dataset of the same size, e.g. its own split); otherwise the runs share ``data``.
      loss_of: with a ``PrimalDual``, maps ``info.aux`` to the per-sample losses.
      epoch_runner: (0.1) a compiled ``(state, data, key) -> (state, EpochInfo)`` that runs a
        whole epoch, e.g. :func:`feasjax.data_parallel_epoch`; prefer ``mesh``.

    Returns:
      ``(carry, history)`` (a :class:`feasjax.training.History`).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> import feasjax as fj
      >>> tx = fj.feasible(optax.sgd(0.1), num_samples=4, epsilon=2.5)
      >>> loss_and_grad = jax.value_and_grad(lambda w, y: (w - y) ** 2)
      >>> def step(carry, y, idx):  # a plain step over (params, opt_state)
      ...     w, state = carry
      ...     weights = fj.multipliers(state, idx)
      ...     losses, grad = jax.vmap(loss_and_grad, (None, 0))(w, y)
      ...     updates, state = tx.update(jnp.mean(weights * grad), state, w,
      ...                                losses=losses, indices=idx)
      ...     return (w + updates, state), {"losses": losses}
      >>> w0 = jnp.zeros(())
      >>> (w, state), hist = fj.train(
      ...     step, (w0, tx.init(w0)), jnp.arange(4.0), epochs=200, batch_size=2,
      ...     key=jax.random.key(0), epsilon=2.5, progress=False)
      >>> # every loss (w - y)^2 <= 2.5
      >>> round(float(w), 2), hist.feasible_fraction[-1]
      (1.56, 1.0)
    """
    _check_positive(epochs, "epochs")
    if on_nonfinite not in ("skip", "raise"):
        raise ValueError(f"on_nonfinite must be 'skip' or 'raise', got {on_nonfinite=}")
    if checkpoint_every is not None:
        _check_positive(checkpoint_every, "checkpoint_every")
    if runs is not None:
        _check_positive(runs, "runs", " (the carry's leading run axis)")
    bound = jnp.asarray(jnp.nan if epsilon is None else epsilon, jnp.float32)
    records = on_nonfinite == "raise"
    loop = functools.partial(run_epochs, key=key, epochs=epochs, checkpoint_every=checkpoint_every,
                             progress=progress, description=description, epsilon=epsilon,
                             eval_fn=eval_fn)
    saver = functools.partial(Checkpoints, checkpoint_dir, key=key, config=config,
                              max_to_keep=max_to_keep, async_save=async_save, resume=resume,
                              after_save=after_save)
    if isinstance(data, Pipeline):
        if mesh is not None or runs is not None:
            raise ValueError("a Pipeline trains on one device and one run: pass mesh=None and "
                             "runs=None (in-memory arrays support both)")
        if batch_size not in (None, data.batch_size):
            raise ValueError(f"batch_size must be the pipeline's {data.batch_size} (or None), "
                             f"got {batch_size=}")
        settings = {"pipeline": data.fingerprint(), "epsilon": epsilon}
        return loop(streamed_chunks(_as_step(step, loss_of), data, records, bound), carry,
                    steps=data.steps_per_epoch, prepare=lambda carry, key: unalias(carry, key),
                    saver=None if checkpoint_dir is None else saver(data={}, settings=settings),
                    per_epoch_bar=False)
    if per_run_data and runs is None:
        raise ValueError("per_run_data=True needs runs=R (data with a leading run axis)")
    n = checks.leading_size(jax.tree.map(lambda a: a[0], data) if per_run_data else data,
                            "data")
    if n is None:
        raise ValueError("data must hold at least one array with a leading sample axis")
    steps = num_steps(n, batch_size)
    if isinstance(step, PrimalDual) and runs is None and mesh is None and epoch_runner is None:
        check_state_fits_data(carry, n)
    step = _as_step(step, loss_of)
    if epoch_runner is not None:
        return loop(_runner_chunks(epoch_runner, data, records, bound), carry, steps=1,
                    prepare=lambda state, key: unalias(state), saver=None, per_epoch_bar=True,
                    read_late=False)
    if runs is not None:
        _check_runs(carry, key, runs)
    lead, padded, carry_sharding, fingerprinted = int(runs is not None), n, None, data
    if mesh is not None:
        carry, data, carry_sharding, padded = _on_mesh(carry, data, n, auto_mesh(mesh), lead,
                                                       int(per_run_data))
    program = functools.partial(compiled_chunk, step, num_samples=n, batch_size=batch_size,
                                records=records, runs=runs is not None, run_data=per_run_data,
                                carry_sharding=carry_sharding)

    def run_chunk(carry, key, epoch, start, length):
        carry, stats, kept = program(length=length)(carry, data, key, np.int32(epoch),
                                                    np.int32(start), bound)
        if kept is not None:
            raise_on_skipped(kept, epoch, start, steps, runs is not None)
        return carry, stats

    settings = {"num_samples": n, "batch_size": batch_size, "epsilon": epsilon}
    carry, history = loop(
        run_chunk, carry, steps=steps, prepare=lambda carry, key: unalias(carry, data, key),
        saver=None if checkpoint_dir is None else saver(data=fingerprinted, settings=settings),
        per_epoch_bar=True)
    return unpad_rows(carry, n, padded, lead), history


def _check_positive(value: Any, name: str, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{note}, got {name}={value!r}")


def _check_runs(carry: Any, key: jax.Array, runs: int) -> None:
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in jax.tree.leaves(carry)}
    if sizes != {runs}:
        raise ValueError(f"with runs={runs} every leaf of the carry must have a leading run "
                         f"axis of {runs}, got leading sizes {sorted(sizes, key=str)}")
    if np.shape(key)[:1] != (runs,):
        raise ValueError(f"with runs={runs} key must hold one key per run, shape ({runs},), "
                         f"got {np.shape(key)}")


def _as_step(step: Any, loss_of: Callable | None) -> Callable:
    """``step``, or a ``PrimalDual``'s step (kept on the solver's own step function, so that a
    second :func:`train` with the solver finds its compiled programs again)."""
    if isinstance(step, PrimalDual):
        return cached_program(step.step, ("solver_step", loss_of),
                              lambda: solver_step(step, loss_of=loss_of))
    if not callable(step):
        raise TypeError(f"step must be a function (carry, batch, indices) -> (carry, report) "
                        f"or a feasjax.PrimalDual, got {type(step).__name__}")
    return step


def _on_mesh(carry: Any, data: Any, n: int, mesh: Mesh, lead: int, data_lead: int
             ) -> tuple[Any, Any, Any, int]:
    """``(carry, data, carry_sharding, padded)``: per-sample rows padded to a multiple of the
    device count and sharded over the mesh, the rest of the carry replicated."""
    padded = -(-n // mesh.size) * mesh.size
    carry = pad_rows(carry, n, padded, lead, everything=False)
    carry_sharding = row_sharding(carry, padded, mesh, lead, everything=False)
    data = pad_rows(data, n, padded, data_lead, everything=True)
    data = place(data, row_sharding(data, padded, mesh, data_lead, everything=True))
    return place(carry, carry_sharding), data, carry_sharding, padded


def _runner_chunks(epoch_runner: Callable, data: Any, records: bool, bound: jax.Array
                   ) -> Callable:
    """The 0.1 path, ``train(epoch_runner=...)``: each epoch is one chunk, one runner call."""
    def run_chunk(state, key, epoch, start, length):
        del start, length  # the whole epoch
        state, info = epoch_runner(state, data, jax.random.fold_in(key, epoch))
        if records:
            raise_on_skipped(info, epoch, 0, None, False)
        return state, _epoch_summary(info.losses, info.ok, state.multipliers, bound)

    return run_chunk


@jax.jit
def _epoch_summary(losses: jax.Array, ok: jax.Array, multipliers: dict,
                   bound: jax.Array) -> jax.Array:
    return jnp.concatenate([chunk_stats(losses, ok, bound), multiplier_stats(
        {"multipliers": multipliers})])
