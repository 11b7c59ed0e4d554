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
import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from feasjax.core import checks
from feasjax.core.dual_step import is_per_sample, sums
from feasjax.core.solver import PrimalDual, PrimalDualState
from feasjax.training.keys import host_epoch_keys
from feasjax.training.progress import progress_reporter

__all__ = [
    "EpochInfo",
    "History",
    "epoch_indices",
    "epoch_fn",
    "chunk_fn",
    "train",
    "num_steps",
    "unalias",
    "raise_on_skipped_step",
    "check_state_fits_data",
]


class EpochInfo(NamedTuple):
    """Per-step records of one epoch, stacked by ``lax.scan`` (leading axis: steps)."""

    indices: jax.Array  # shape=(steps, B), int32: the sample indices of each minibatch
    losses: jax.Array  # shape=(steps, B): per-sample losses before each step
    ok: jax.Array  # shape=(steps,), bool: the step was applied


def num_steps(num_samples: int, batch_size: int) -> int:
    """Minibatches per epoch, ``N // batch_size``; raises if ``batch_size`` does not fit.

    Example:
      >>> from feasjax.training.loop import num_steps
      >>> num_steps(10, 4)
      2
    """
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
      >>> state, info = run(erm.init(jnp.zeros(())), jnp.arange(4.0), jax.random.key(0))
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
    if unique_indices and _takes_keyword(step, "unique_indices"):  # a user's own step may not
        step = functools.partial(step, unique_indices=True)

    def body(state, idx):
        batch = jax.tree.map(lambda a: a[idx], data)
        state, info = step(state, batch, idx)
        return state, EpochInfo(indices=idx, losses=loss_of(info.aux), ok=info.ok)

    return jax.lax.scan(body, state, batches)


def _takes_keyword(fn: Callable, name: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read: pass nothing extra
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


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
      >>> from feasjax.training.loop import chunk_fn
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> batches = epoch_indices(jax.random.key(0), 8, 2)
      >>> state, info = jax.jit(chunk_fn(erm, 3))(erm.init(jnp.zeros(())), jnp.arange(8.0),
      ...                                         batches, 1)
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


class History(NamedTuple):
    """What :func:`train` reports per epoch (host values)."""

    mean_loss: list  # per epoch: mean of the per-sample losses seen before each step
    feasible_fraction: list  # per epoch: fraction of those losses <= epsilon (nan if no ε)
    skipped: list  # per epoch: total steps skipped so far
    evaluations: list  # per epoch: eval_fn(state) or None


def unalias(tree: Any) -> Any:
    """Copy leaves that share a buffer with an earlier leaf, so that the tree can be donated.

    feasjax's ``init`` functions allocate every field (``tests/test_donation.py``), but a state
    a user assembles from the same arrays (one array given twice, a state built twice) holds
    one buffer in two places; XLA refuses to donate a buffer twice.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.training.loop import unalias
      >>> x = jnp.ones(2)
      >>> a, b = unalias((x, x))
      >>> a is x, b is x
      (True, False)
    """
    seen = set()

    def copy_if_seen(leaf):
        if not isinstance(leaf, jax.Array) or not checks.is_concrete(leaf):
            return leaf
        if id(leaf) in seen:
            return jnp.copy(leaf)
        seen.add(id(leaf))
        return leaf

    return jax.tree.map(copy_if_seen, tree)


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
    ok = np.asarray(info.ok)
    if ok.all():
        return
    step = int(np.flatnonzero(~ok)[0])
    bad = np.asarray(info.indices[step])[~np.isfinite(np.asarray(info.losses[step]))]
    where = f"epoch {epoch}, step {start + step}"
    if steps_per_epoch is not None:
        where += f" (global step {epoch * steps_per_epoch + start + step})"
    what = (f"non-finite losses or gradients (sample indices {bad[:10].tolist()})" if bad.size
            else "non-finite gradients or parameter updates (its losses were finite)")
    raise FloatingPointError(
        f"{where}: {what}; the step was skipped and the run stopped (on_nonfinite='raise')")


def check_state_fits_data(state: PrimalDualState, num_samples: int) -> None:
    """Raise ``ValueError`` unless every per-sample multiplier vector has one row per sample.

    A solver built with ``num_samples`` smaller than the data would skip every step that
    touches a higher index (out of range) and return untrained parameters.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax import feasible_learning
      >>> from feasjax.training.loop import check_state_fits_data
      >>> fl = feasible_learning(lambda p, b: b, optax.sgd(0.1), num_samples=3, epsilon=0.1)
      >>> check_state_fits_data(fl.init(jnp.zeros(1)), 4)
      Traceback (most recent call last):
      ValueError: constraint group 'samples' has 3 multipliers (the solver's num_samples) but the data has 4 samples; build the solver with num_samples=4
    """
    for name, lam in state.multipliers.items():
        if is_per_sample(state.dual_states[name]) and jnp.shape(lam)[0] != num_samples:
            raise ValueError(f"constraint group {name!r} has {jnp.shape(lam)[0]} multipliers "
                             f"(the solver's num_samples) but the data has {num_samples} "
                             f"samples; build the solver with num_samples={num_samples}")


@functools.lru_cache(maxsize=64)
def _compiled_epoch(solver: PrimalDual, batch_size: int, with_info: bool,
                    key_impl: str | None) -> Callable:
    """One program per (solver, batch size, records kept, key implementation):
    ``(state, data, epoch_key, bound) -> (state, info, summary)``, with the state donated;
    checkified when the solver is checked.

    ``epoch_key`` is the epoch's ``fold_in(key, epoch)``: its key data, folded on the host
    (:mod:`feasjax.training.keys`) and wrapped here when ``key_impl`` is given, else the key
    itself. The summary for the progress bar is computed inside the epoch's program, so an
    epoch is one dispatch and a fresh process compiles one program. Without ``with_info`` the
    per-step records are not returned (``info`` is ``None``): only the summary reads them, and
    XLA leaves out what nobody reads. Memoised, so calling :func:`train` again with the same
    solver and shapes reuses the compiled program instead of tracing and compiling anew.
    """
    epoch = epoch_fn(solver, batch_size)

    def run(state, data, epoch_key, bound):
        if key_impl is not None:
            epoch_key = jax.random.wrap_key_data(epoch_key, impl=key_impl)
        state, info = epoch(state, data, epoch_key)
        summary = _summary(info.losses, state.skipped, state.multipliers, bound)
        return state, info if with_info else None, summary

    if not solver.checked:
        return jax.jit(run, donate_argnums=0)
    checked = jax.jit(checkify.checkify(run, errors=checkify.user_checks), donate_argnums=0)

    def run_checked(*args):
        error, out = checked(*args)
        error.throw()  # an out-of-range index or a non-finite step, with the step number
        return out

    return run_checked


def train(
    solver: PrimalDual,
    state: PrimalDualState,
    data: Any,
    *,
    epochs: int,
    batch_size: int,
    key: jax.Array,
    epsilon: float | None = None,
    eval_fn: Callable[[PrimalDualState], dict] | None = None,
    on_nonfinite: str = "skip",
    progress: bool | str = True,
    description: str = "train",
    epoch_runner: Callable | None = None,
) -> tuple[PrimalDualState, History]:
    """Train for ``epochs`` epochs, one compiled scan each, with a progress bar over epochs.

    Args:
      solver: a :class:`feasjax.PrimalDual`.
      state: its initial state (donated: do not reuse it afterwards).
      data: pytree of arrays with a leading sample axis, ideally already on the device.
      epochs: number of epochs ``>= 1``.
      batch_size: minibatch size.
      key: ``jax.random`` key; epoch ``e`` shuffles with ``fold_in(key, e)``.
      epsilon: the FL bound, to report the feasible fraction in the bar (optional).
      eval_fn: optional ``state -> dict`` of metrics evaluated after every epoch.
      on_nonfinite: ``"skip"`` counts skipped steps; ``"raise"`` raises
        ``FloatingPointError`` after the epoch, naming the step and the sample indices.
      progress: ``True``/``"bar"`` a tqdm bar that advances per epoch, with the mean loss,
        feasible fraction, mean and max multiplier and skipped steps in its postfix;
        ``"lines"`` plain lines on stderr (each epoch, every k-th beyond ten); ``False`` nothing
        (:func:`feasjax.training.progress.progress_reporter`).
      description: the bar's label.
      epoch_runner: a compiled ``(state, data, key) -> (state, EpochInfo)`` to use instead of
        ``jax.jit(epoch_fn(solver, batch_size), donate_argnums=0)`` (e.g. a sharded one).

    Returns:
      ``(state, history)``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, per_example, train
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> state, hist = train(erm, erm.init(jnp.zeros(())), jnp.arange(4.0), epochs=30,
      ...                     batch_size=2, key=jax.random.key(0), progress=False)
      >>> round(float(state.params), 1)
      1.5
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs=}")
    if on_nonfinite not in ("skip", "raise"):
        raise ValueError(f"on_nonfinite must be 'skip' or 'raise', got {on_nonfinite=}")
    num_samples = checks.leading_size(data, "data")
    num_steps(num_samples, batch_size)
    if epoch_runner is None:
        check_state_fits_data(state, num_samples)
    host_keys = host_epoch_keys(key) if epoch_runner is None else None

    def epoch_key(epoch: int) -> jax.Array | np.ndarray:
        if host_keys is None:
            return jax.random.fold_in(key, epoch)
        return host_keys[0](epoch)  # folded on the host; jit's own transfer is the fastest

    if epoch_runner is None:
        run = _compiled_epoch(solver, batch_size, on_nonfinite == "raise",
                              None if host_keys is None else host_keys[1])
    else:  # a user's (state, data, key) runner: the summary runs as its own program
        def run(state, data, folded_key, bound):
            state, info = epoch_runner(state, data, folded_key)
            return state, info, _epoch_summary(info.losses, state.skipped, state.multipliers,
                                               bound)
    history = History([], [], [], [])
    state = unalias(state)
    bound = jnp.asarray(jnp.nan if epsilon is None else epsilon, jnp.float32)
    bar = progress_reporter(progress, total=epochs, description=description)

    def record(epoch, summary):  # a host read of an epoch that finished while the next one runs
        mean_loss, feasible, skipped, mult_mean, mult_max = np.asarray(summary).tolist()
        history.mean_loss.append(float(mean_loss))
        history.feasible_fraction.append(float(feasible) if epsilon is not None else float("nan"))
        history.skipped.append(int(skipped))
        bar.advance(1)
        bar.report(epoch + 1, {"loss": float(mean_loss),
                               "feasible": history.feasible_fraction[-1],
                               "mult_mean": float(mult_mean), "mult_max": float(mult_max),
                               "skipped": int(skipped)})

    pending = None
    try:
        for epoch in range(epochs):
            state, info, summary = run(state, data, epoch_key(epoch), bound)  # not awaited
            if on_nonfinite == "raise":
                raise_on_skipped_step(info, epoch)
            if pending is not None:  # read the previous epoch's summary while this one runs
                record(epoch - 1, pending)
            pending = summary
            history.evaluations.append(eval_fn(state) if eval_fn is not None else None)
        record(epochs - 1, pending)
    finally:
        bar.close()
    return state, history


def _summary(losses: jax.Array, skipped: jax.Array, multipliers: dict,
             epsilon: jax.Array) -> jax.Array:
    """Mean loss (NaN losses left out), feasible fraction, skipped steps, mean and max
    multiplier (nan if none; on a mesh over the stored rows, padding included), as one float32
    vector: one host read.

    Each array is read by one variadic reduction (three sums over the losses, a sum and a max
    over the multipliers) instead of one reduction per number: the epoch program has two
    reduction kernels here instead of six, which XLA compiles in a fraction of the time.
    """
    losses = losses.astype(jnp.float32)  # no reshape: on a mesh the losses are sharded
    kept = ~jnp.isnan(losses)
    loss_sum, kept_count, feasible_count = sums(jnp.where(kept, losses, 0.0),
                                                kept.astype(jnp.float32),
                                                (losses <= epsilon).astype(jnp.float32))
    values = [jnp.ravel(m).astype(jnp.float32) for m in jax.tree.leaves(multipliers)]
    if values:
        values = jnp.concatenate(values) if len(values) > 1 else values[0]
        mult_sum, mult_max = jax.lax.reduce((values, values), (jnp.float32(0), -jnp.inf),
                                            _add_and_max, (0,))
        mult_mean = mult_sum / values.size
    else:
        mult_mean = mult_max = jnp.float32(jnp.nan)
    return jnp.stack([loss_sum / kept_count, feasible_count / losses.size,
                      skipped.astype(jnp.float32), mult_mean, mult_max])


def _add_and_max(a: tuple, b: tuple) -> tuple:
    return a[0] + b[0], jnp.maximum(a[1], b[1])


_epoch_summary = jax.jit(_summary)
