"""The training loop: each epoch is one compiled ``lax.scan`` over shuffled minibatches.

The dataset lives on the device as a pytree of arrays with a leading sample axis. An epoch draws
a permutation with ``jax.random``, cuts it into ``N // batch_size`` minibatches (the remainder is
left out of that epoch, a different remainder each epoch) and scans the primal-dual step over
them, carrying the sample indices into the dual update. The state is donated, so multipliers of
any size are updated in place, and nothing returns to the host until the epoch ends.

:func:`epoch_fn` is written for one block of samples with its own multipliers: the data-parallel
trainer runs the very same function per device under ``shard_map`` (multipliers live beside the
data that owns them).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from feasjax.core import checks
from feasjax.core.solver import PrimalDual, PrimalDualState
from feasjax.training.engine import train
from feasjax.training.tally import History, raise_on_skipped
from feasjax.training.programs import check_state_fits_data, epoch_indices, num_steps, unalias
from feasjax.training.steps import takes_keyword

__all__ = [
    "EpochInfo",
    "epoch_fn",
    "chunk_fn",
]


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
        :func:`epoch_indices`); the data-parallel trainer passes one that draws from the
        device's own block and never from padding.
      unique_indices: whether no index repeats within a minibatch, so that the dual step need
        not combine repeated rows (an O(B log B) sort per step, and a larger program). Default:
        ``True`` for the default sampler (a permutation cut into minibatches), ``False`` for a
        given ``sampler`` (pass ``True`` if it draws without replacement).

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
    loss_of = loss_of or (lambda aux: aux)
    if unique_indices is None:
        unique_indices = sampler is None
    sampler = sampler or (lambda key, n: epoch_indices(key, n, batch_size))

    def run(state: PrimalDualState, data: Any, key: jax.Array):
        batches = sampler(key, checks.leading_size(data, "data"))
        return _scan_batches(solver, loss_of, state, data, batches, unique_indices)

    return run


def _scan_batches(solver: PrimalDual, loss_of: Callable, state: PrimalDualState, data: Any,
                  batches: jax.Array, unique_indices: bool) -> tuple[PrimalDualState, EpochInfo]:
    step = solver.step
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
    compilation serves every chunk of the same ``length``. Running an epoch's chunks one after
    the other is the same computation, step by step, as :func:`epoch_fn` (bit-identical on
    CPU): it lets a loop stop between steps of an epoch, save a checkpoint and resume exactly.

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
    loss_of = loss_of or (lambda aux: aux)

    def run(state: PrimalDualState, data: Any, batches: jax.Array, start: jax.Array):
        chunk = jax.lax.dynamic_slice_in_dim(batches, start, length)
        return _scan_batches(solver, loss_of, state, data, chunk, unique_indices)

    return run


def raise_on_skipped_step(info: EpochInfo, epoch: int, *, start: int = 0,
                          steps_per_epoch: int | None = None) -> None:
    """Raise ``FloatingPointError`` naming the first skipped step of ``info`` and its samples.

    Args:
      info: the records of an epoch (or of a chunk of it starting at step ``start``).
      epoch: the epoch number, for the message.
      start: the epoch step at which ``info`` starts.
      steps_per_epoch: if given, the message also names the global step.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.training.loop import EpochInfo, raise_on_skipped_step
      >>> info = EpochInfo(jnp.array([[4, 7]]), jnp.array([[0.1, jnp.nan]]), jnp.array([False]))
      >>> raise_on_skipped_step(info, epoch=2)
      Traceback (most recent call last):
      FloatingPointError: epoch 2, step 0: non-finite losses or gradients (sample indices [7]); ...
    """
    raise_on_skipped((info.ok, info.indices, info.losses), epoch, start, steps_per_epoch,
                      False)
