"""The engine's compiled program: steps ``start .. start + length - 1`` of an epoch as one
``lax.scan`` with the permutation drawn inside from ``fold_in(key, epoch)`` and the epoch's
statistics computed on the device. The programs are kept on the step function itself: no global
cache keeps a user's closure alive, and a second :func:`feasjax.train` compiles nothing.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from feasjax.core import checks
from feasjax.core.dual_step import is_per_sample
from feasjax.core.solver import PrimalDualState
from feasjax.training.steps import takes_keyword

__all__ = ["epoch_indices"]


def num_steps(num_samples: int, batch_size: int) -> int:
    """Minibatches per epoch, ``N // batch_size``; raises if ``batch_size`` does not fit."""
    if (isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer))
            or not 1 <= batch_size <= num_samples):
        raise ValueError(f"batch_size must be an int in [1, {num_samples}] (the number of "
                         f"samples), got {batch_size=}")
    return num_samples // batch_size


def epoch_indices(key: jax.Array, num_samples: int, batch_size: int) -> jax.Array:
    """A shuffled epoch's minibatch indices, shape ``(N // batch_size, batch_size)``.

    Example:
      >>> import jax
      >>> from feasjax import epoch_indices
      >>> epoch_indices(jax.random.key(0), 10, 5).shape
      (2, 5)
    """
    steps = num_steps(num_samples, batch_size)
    perm = jax.random.permutation(key, num_samples)
    return perm[: steps * batch_size].reshape(steps, batch_size).astype(jnp.int32)


def check_state_fits_data(state: PrimalDualState, num_samples: int) -> None:
    """Raise ``ValueError`` unless every per-sample multiplier vector has one row per sample
    (a solver built for fewer samples would skip every step that touches a higher index)."""
    for name, lam in state.multipliers.items():
        if is_per_sample(state.dual_states[name]) and jnp.shape(lam)[0] != num_samples:
            raise ValueError(f"constraint group {name!r} has {jnp.shape(lam)[0]} multipliers "
                             f"(the solver's num_samples) but the data has {num_samples} "
                             f"samples; build the solver with num_samples={num_samples}")


def path_names(path: tuple) -> list:
    """The field names and dict keys of a pytree path."""
    return [getattr(k, "name", getattr(k, "key", None)) for k in path]


def chunk_stats(losses: jax.Array, ok: jax.Array, bound: jax.Array) -> jax.Array:
    """Sum and count of the finite losses, the feasible count, the number of losses and the
    skipped steps (:class:`feasjax.training.tally.Tally`)."""
    losses = losses.astype(jnp.float32)
    finite = jnp.isfinite(losses)
    return jnp.stack([jnp.sum(jnp.where(finite, losses, 0.0)),
                      jnp.sum(finite.astype(jnp.float32)),
                      jnp.sum((losses <= bound).astype(jnp.float32)),
                      jnp.float32(losses.size), jnp.sum((~ok).astype(jnp.float32))])


def multiplier_stats(carry: Any, n: int | None = None) -> jax.Array:
    """Sum, count and max of every array under a ``multipliers`` field or key of ``carry``
    (whoever built it, also inside an ``nnx.State``); per-sample vectors padded for a mesh are
    read up to their ``n`` real rows."""
    flat = jax.tree_util.tree_flatten_with_path(carry)[0]
    values = [jnp.ravel(m if n is None or np.shape(m)[0] <= n else m[:n]).astype(jnp.float32)
              for path, m in flat if "multipliers" in path_names(path)]
    if not values:
        return jnp.full((3,), jnp.nan, jnp.float32)
    values = jnp.concatenate(values)
    return jnp.stack([jnp.sum(values), jnp.float32(values.size), jnp.max(values)])


def reporting(step: Callable) -> Callable:
    """``(carry, batch, indices) -> (carry, losses, ok)`` from a step's report (NaN losses and
    ``ok`` when it has none), passing ``unique_indices=True`` to a step that takes it."""
    if takes_keyword(step, "unique_indices"):
        step = functools.partial(step, unique_indices=True)

    def run(carry, batch, idx):
        carry, report = step(carry, batch, idx)
        losses = report.get("losses", jnp.full(idx.shape, jnp.nan, jnp.float32))
        return carry, losses, jnp.asarray(report.get("ok", True))

    return run


def _program(step: Callable, n: int, batch_size: int, length: int, records: bool) -> Callable:
    """``(carry, data, key, epoch, start, bound) -> (carry, stats, records)`` for one run."""
    one = reporting(step)

    def run(carry, data, key, epoch, start, bound):
        batches = epoch_indices(jax.random.fold_in(key, epoch), n, batch_size)

        def body(carry, idx):
            carry, losses, ok = one(carry, jax.tree.map(lambda a: a[idx], data), idx)
            return carry, (losses, ok, idx)

        chunk = jax.lax.dynamic_slice_in_dim(batches, start, length)
        carry, (losses, ok, idx) = jax.lax.scan(body, carry, chunk)
        stats = jnp.concatenate([chunk_stats(losses, ok, bound), multiplier_stats(carry, n)])
        return carry, stats, ((idx, losses, ok) if records else None)

    return run


def cached_program(step: Callable, key: Any, build: Callable[[], Callable]) -> Callable:
    """``build()``'s program, kept on the step function itself under ``key`` (a step without
    ``__dict__`` builds anew)."""
    programs = getattr(step, "__dict__", {}).setdefault("_feasjax_programs", {})
    if key not in programs:
        programs[key] = build()
    return programs[key]


def compiled_chunk(step: Callable, *, num_samples: int, batch_size: int, length: int,
                   records: bool, runs: bool, run_data: bool, carry_sharding: Any) -> Callable:
    """The jitted chunk of ``length`` steps (:func:`cached_program`)."""
    def build():
        run = _program(step, num_samples, batch_size, length, records)
        if runs:
            run = jax.vmap(run, in_axes=(0, 0 if run_data else None, 0, None, None, None))
        if getattr(step, "checked", False):
            # a 0.1 solver built with checked=True: its checkify checks raise after the chunk
            return _throwing(jax.jit(checkify.checkify(run, errors=checkify.user_checks),
                                     donate_argnums=0))
        out = None
        if carry_sharding is not None:
            replicated = NamedSharding(shardings[0].mesh, P())
            out = (carry_sharding, replicated, replicated)
        return jax.jit(run, donate_argnums=0, out_shardings=out)

    shardings, structure = jax.tree.flatten(carry_sharding)
    return cached_program(step, ("chunk", num_samples, batch_size, length, records, runs,
                                 run_data, structure, tuple(shardings)), build)


def _throwing(checked: Callable) -> Callable:
    def run(*args):
        error, out = checked(*args)
        error.throw()
        return out

    return run


def unalias(tree: Any, *others: Any) -> Any:
    """Copy leaves that share a buffer with an earlier leaf or with ``others`` (the call's other
    arguments, e.g. the data or the key), so that the tree can be donated: a state a user
    assembles from the same arrays holds one buffer in two places, which XLA will not donate."""
    seen = {id(leaf) for leaf in jax.tree.leaves(others)}

    def copy_if_seen(leaf):
        if not isinstance(leaf, jax.Array) or not checks.is_concrete(leaf):
            return leaf
        if id(leaf) in seen:
            return jnp.copy(leaf)
        seen.add(id(leaf))
        return leaf

    return jax.tree.map(copy_if_seen, tree)
