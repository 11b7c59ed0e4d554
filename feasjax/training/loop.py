"""The 0.1 epoch functions: an epoch (or a chunk of one) of a :class:`feasjax.PrimalDual` as
one ``lax.scan`` over shuffled minibatches, a pure function to ``jax.jit`` with the state
donated (the data-parallel trainer runs :func:`epoch_fn` per device under ``shard_map``).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax

from feasjax.core import checks
from feasjax.core.solver import PrimalDual, PrimalDualState
from feasjax.training.programs import epoch_indices
from feasjax.training.steps import takes_keyword
from feasjax.training.tally import raise_on_skipped

__all__ = ["EpochInfo", "epoch_fn", "chunk_fn"]


class EpochInfo(NamedTuple):
    """Per-step records of one epoch, stacked by ``lax.scan`` (leading axis: steps)."""

    indices: jax.Array  # shape=(steps, B), int32: the sample indices of each minibatch
    losses: jax.Array  # shape=(steps, B): per-sample losses before each step
    ok: jax.Array  # shape=(steps,), bool: the step was applied


def epoch_fn(
    solver: PrimalDual,
    batch_size: int,
    *,
    loss_of: Callable[[Any], jax.Array] | None = None,
    sampler: Callable[[jax.Array, int], jax.Array] | None = None,
    unique_indices: bool | None = None,
) -> Callable[[PrimalDualState, Any, jax.Array], tuple[PrimalDualState, EpochInfo]]:
    """One epoch over ``data`` as a pure function ``(state, data, key) -> (state, EpochInfo)``.

    Args:
      solver: a :class:`feasjax.PrimalDual` (FL, RFL or ERM).
      batch_size: minibatch size.
      loss_of: maps a step's ``info.aux`` to per-sample losses (default: ``aux`` itself, as
        :func:`feasjax.feasible_learning` and :func:`feasjax.empirical_risk` return).
      sampler: ``(key, num_samples) -> (steps, batch_size)`` int32 minibatch indices (default
        :func:`epoch_indices`; the data-parallel trainer's draws from the device's own block).
      unique_indices: no index repeats within a minibatch, so the dual step need not combine
        repeated rows (an O(B log B) sort per step). Default: ``True`` for the default sampler,
        ``False`` for a given one (pass ``True`` if it draws without replacement).

    Returns:
      A pure function to ``jax.jit`` (donate the state) or to run per device in ``shard_map``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, epoch_fn, per_example
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> run = jax.jit(epoch_fn(erm, batch_size=2))
      >>> state0 = erm.init(jnp.zeros(()))
      >>> state, info = run(state0, jnp.arange(4.0), jax.random.key(0))
      >>> info.indices.shape, info.losses.shape
      ((2, 2), (2, 2))
    """
    unique_indices = sampler is None if unique_indices is None else unique_indices
    sampler = sampler or (lambda key, n: epoch_indices(key, n, batch_size))

    def run(state: PrimalDualState, data: Any, key: jax.Array):
        batches = sampler(key, checks.leading_size(data, "data"))
        return _scan_batches(solver, loss_of, state, data, batches, unique_indices)

    return run


def _scan_batches(solver: PrimalDual, loss_of: Callable | None, state: PrimalDualState,
                  data: Any, batches: jax.Array, unique_indices: bool
                  ) -> tuple[PrimalDualState, EpochInfo]:
    step, loss_of = solver.step, loss_of or (lambda aux: aux)
    if unique_indices and takes_keyword(step, "unique_indices"):  # a user's own step may not
        step = functools.partial(step, unique_indices=True)

    def body(state, idx):
        batch = jax.tree.map(lambda a: a[idx], data)
        state, info = step(state, batch, idx)
        return state, EpochInfo(indices=idx, losses=loss_of(info.aux), ok=info.ok)

    return jax.lax.scan(body, state, batches)


def chunk_fn(
    solver: PrimalDual, length: int, *, loss_of: Callable[[Any], jax.Array] | None = None,
    unique_indices: bool = True,
) -> Callable[[PrimalDualState, Any, jax.Array, jax.Array], tuple[PrimalDualState, EpochInfo]]:
    """Steps ``start .. start + length - 1`` of an epoch: ``(state, data, batches, start)``.

    ``batches`` is the epoch's :func:`epoch_indices` and ``start`` a (traced) int, so one
    compilation serves every chunk of the same ``length``. An epoch's chunks in turn compute
    what :func:`epoch_fn` does, step by step (bit-identical on CPU): a loop can stop between
    steps, save a checkpoint and resume exactly.

    Args:
      solver: a :class:`feasjax.PrimalDual`.
      length: number of steps of the chunk, ``>= 1`` (static).
      loss_of: as in :func:`epoch_fn`.
      unique_indices: as in :func:`epoch_fn`; ``True`` (the default) for batches drawn by
        :func:`epoch_indices`, ``False`` for batches that may repeat an index.

    Returns:
      A pure function to ``jax.jit`` (donate the state); ``start + length`` must not exceed
      the number of minibatches (``jax.lax.dynamic_slice`` would clamp ``start``).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, epoch_indices, per_example
      >>> from feasjax.training import chunk_fn
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> batches = epoch_indices(jax.random.key(0), 8, 2)
      >>> chunk = jax.jit(chunk_fn(erm, 3))
      >>> state, info = chunk(erm.init(jnp.zeros(())), jnp.arange(8.0), batches, 1)
      >>> info.indices.tolist() == batches[1:4].tolist(), int(state.step)
      (True, 3)
    """
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive int, got {length=}")

    def run(state: PrimalDualState, data: Any, batches: jax.Array, start: jax.Array):
        chunk = jax.lax.dynamic_slice_in_dim(batches, start, length)
        return _scan_batches(solver, loss_of, state, data, chunk, unique_indices)

    return run


def raise_on_skipped_step(info: EpochInfo, epoch: int, *, start: int = 0,
                          steps_per_epoch: int | None = None) -> None:
    """Raise ``FloatingPointError`` naming the first skipped step of ``info`` (a chunk starting
    at epoch step ``start``) and its samples; with ``steps_per_epoch``, the global step too."""
    raise_on_skipped(info, epoch, start, steps_per_epoch, False)
