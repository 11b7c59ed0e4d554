"""Averagers: which iterates enter a parameter average, and with which weights.

``theta_0`` is the value given to ``init``, ``theta_t`` the value after the ``t``-th update; the
iterates with ``t >= first`` and ``(t - first) % every == 0`` are folded in order (the first fold
is a copy). A fold takes one array and a scalar count, so ``vmap`` makes it per-row.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from feasjax.core.checks import check_positive, check_unit_interval

__all__ = ["Averager", "polyak", "tail_polyak", "swa", "ema", "lawa"]

WARMUPS = ("none", "linear", "timm")


class WindowLeaf(NamedTuple):
    """Per-leaf LAWA state: the last ``k`` snapshots and their running sum."""

    ring: jax.Array  # shape=(k + 1, *leaf.shape); slot j % k: j-th snapshot, slot k: scratch
    total: jax.Array  # shape=leaf.shape, dtype=leaf.dtype; sum of the min(n, k) held snapshots
    evict: jax.Array  # shape=leaf.shape, dtype=leaf.dtype; ring[n % k], the next slot overwritten


class Averager(NamedTuple):
    """Static description of an average (built by :func:`ema`, :func:`polyak`, ... ).

    Attributes:
      name: the method's name.
      first: index ``t`` of the first counted iterate.
      every: interval between counted iterates.
      init_leaf: ``leaf -> per-leaf state`` (nothing folded yet), in new buffers (states are
        donated with the parameters).
      weight: ``n -> coefficient`` from the number already folded.
      fold_leaf: ``(per-leaf state, iterate, coefficient, take) -> per-leaf state``, unchanged
        (bit for bit) where the boolean ``take`` is false.
    """

    name: str
    first: int
    every: int
    init_leaf: Callable[[jax.Array], Any]
    weight: Callable[[jax.Array], Any]
    fold_leaf: Callable[[Any, jax.Array, Any, jax.Array], Any]


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {name}={value!r}")


def _lerp(avg: jax.Array, x: jax.Array, w: jax.Array, take: jax.Array) -> jax.Array:
    # (1 - w) avg + w x: with w = 1 the result is exactly x (the first fold is a copy).
    return jnp.where(take, ((1 - w) * avg + w * x).astype(avg.dtype), avg)


def polyak(start_step: int = 0, *, every: int = 1) -> Averager:
    """Polyak-Ruppert averaging: the uniform mean of the iterates from ``start_step`` on.

    .. math:: \\bar\\theta_T = \\frac{1}{n}\\sum_{j=0}^{n-1} \\theta_{s + j\\,e},
       \\qquad n = \\lfloor (T - s)/e \\rfloor + 1 \\text{ for } T \\ge s,

    with ``s = start_step`` (``theta_0``, the initial parameters, counts when ``s = 0``) and
    ``e = every``, folded as the running mean ``avg += (theta - avg) / n``.

    Args:
      start_step: index of the first averaged iterate, ``>= 0``.
      every: average one iterate every ``every`` steps, ``>= 1``.

    Returns:
      An :class:`Averager` for :func:`feasjax.averaged`.

    Example:
      >>> from feasjax.averaging import polyak
      >>> polyak(start_step=10, every=2).first
      10
    """
    _check_int("start_step", start_step, 0)
    _check_int("every", every, 1)
    return Averager("polyak", start_step, every, jnp.copy,
                    lambda n: 1.0 / (n + 1).astype(jnp.float32), _lerp)


def tail_polyak(horizon: int, fraction: float, *, every: int = 1) -> Averager:
    """Tail averaging: the uniform mean of the last ``fraction`` of a run of ``horizon`` steps.

    :func:`polyak` from ``horizon - m + 1``, ``m = max(1, round(fraction * horizon))``.

    Args:
      horizon: the planned number of steps, ``>= 1``.
      fraction: the averaged fraction of the run, in ``(0, 1]``.
      every: average one iterate every ``every`` steps, ``>= 1``.

    Example:
      >>> from feasjax.averaging import tail_polyak
      >>> tail_polyak(horizon=1000, fraction=0.1).first
      901
    """
    _check_int("horizon", horizon, 1)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction=}")
    m = max(1, round(fraction * horizon))
    return polyak(horizon - m + 1, every=every)._replace(name="tail_polyak")


def swa(cycle_length: int, start_step: int, *, every_cycles: int = 1) -> Averager:
    """Stochastic Weight Averaging (Izmailov et al., 2018): mean of the cycle-end iterates.

    Averages ``theta_{s + j c}``, ``j >= 1`` (not ``theta_s``, unlike the paper's Algorithm 1),
    the iterates at :func:`swa_schedule`'s low rate, with weights ``1/n``. It can end a run in
    place of a tuned decay (``benchmarks/averaging_speedup.py``: as good as cosine decay on clean
    digits, better under 30% label noise, 0.864 vs 0.813), but reaches no early target sooner.

    Args:
      cycle_length: steps per cycle, ``>= 1``.
      start_step: step at which the SWA phase starts, ``>= 0``.
      every_cycles: average one cycle end in ``every_cycles``, ``>= 1``.

    Example:
      >>> from feasjax.averaging import swa
      >>> swa(cycle_length=5, start_step=100).first
      105
    """
    _check_int("cycle_length", cycle_length, 1)
    _check_int("start_step", start_step, 0)
    _check_int("every_cycles", every_cycles, 1)
    every = cycle_length * every_cycles
    return polyak(start_step + every, every=every)._replace(name="swa")


def ema(decay: float, warmup: str = "none", *, every: int = 1, start_step: int = 0,
        warmup_gamma: float = 1.0, warmup_power: float = 2 / 3) -> Averager:
    """Exponential moving average of the parameters, initialised from the parameters.

    The first counted iterate is copied; each later one is folded as
    ``avg = d_u * avg + (1 - d_u) * theta``, ``u = 0, 1, ...`` the EMA updates made before, with

    .. math::
       d_u = \\begin{cases} \\beta & \\text{none} \\\\
       \\min(\\beta, \\frac{1 + u}{10 + u}) & \\text{linear} \\\\
       \\min(\\beta, 1 - (1 + u/\\gamma)^{-p}) & \\text{timm} \\end{cases}

    No zero initialisation, hence no bias correction (unlike ``optax.ema``, which averages
    updates). For noisy iterates of a constant learning rate: in
    ``benchmarks/averaging_speedup.py`` ``ema(0.98)`` reached cosine decay's best validation loss
    in 0.76x its steps (CNN) and ``ema(0.9)`` in 0.26x under label noise. Pick ``1/(1 - decay)``
    around 1-5% of the run; it adds nothing once a schedule decays to zero.

    Args:
      decay: ``beta`` in ``[0, 1)``; a traced value (``inject_hyperparams``) is not checked.
      warmup: ``"none"``, ``"linear"`` (TensorFlow's ``num_updates`` rule) or ``"timm"``.
      every: update the EMA every ``every`` steps, ``>= 1``.
      start_step: the iterate copied into the EMA, ``>= 0``; before it the EMA reads as the
        raw parameters.
      warmup_gamma, warmup_power: ``gamma > 0`` and ``p > 0`` of the timm warm-up.

    Example:
      >>> from feasjax.averaging import ema
      >>> ema(0.999, warmup="linear").name
      'ema'
    """
    check_unit_interval(decay, "decay")
    if warmup not in WARMUPS:
        raise ValueError(f"warmup must be one of {WARMUPS}, got {warmup=}")
    check_positive(warmup_gamma, "warmup_gamma")
    check_positive(warmup_power, "warmup_power")
    _check_int("every", every, 1)
    _check_int("start_step", start_step, 0)

    def weight(n: jax.Array) -> jax.Array:
        u = jnp.maximum(n - 1, 0).astype(jnp.float32)
        d = jnp.asarray(decay, jnp.float32)
        if warmup == "linear":
            d = jnp.minimum(d, (1 + u) / (10 + u))
        elif warmup == "timm":
            d = jnp.minimum(d, 1 - (1 + u / warmup_gamma) ** (-warmup_power))
        return jnp.where(n == 0, 1.0, 1 - d)

    return Averager("ema", start_step, every, jnp.copy, weight, _lerp)


def lawa(k: int, every: int, burn_in: int = 0) -> Averager:
    """LAtest Weight Averaging (Kaddour 2022; Sanyal et al. 2023): mean of the last ``k`` snapshots.

    Snapshots are ``theta_{b + j e}``, ``j >= 1`` (``b = burn_in``, ``e = every``); the average
    is the mean of the ``min(n, k)`` most recent. The state holds a ring of ``k`` snapshots plus
    a scratch slot, their running sum and the next to evict (``(k + 3) x`` the parameters'
    memory); each step is O(parameters), independent of ``k``, with round-off growing like
    ``sqrt(snapshots) * eps``. As :func:`ema` with a hard window of ``k * every`` steps: in
    ``benchmarks/averaging_speedup.py`` ``lawa(5, 10)`` was the best of the grid under label noise
    (0.24x cosine decay's steps to its best validation loss).

    Args:
      k: number of snapshots averaged, ``>= 1``.
      every: steps between snapshots, ``>= 1``.
      burn_in: steps before the snapshot clock starts, ``>= 0``.

    Example:
      >>> from feasjax.averaging import lawa
      >>> lawa(k=5, every=100, burn_in=1000).first
      1100
    """
    _check_int("k", k, 1)
    _check_int("every", every, 1)
    _check_int("burn_in", burn_in, 0)

    def init_leaf(leaf: jax.Array) -> WindowLeaf:
        # From the leaf itself (not zeros), so that the ring inherits its sharding; the values
        # are placeholders until the first snapshot, which fold_leaf treats apart.
        leaf = jnp.asarray(leaf)
        return WindowLeaf(jnp.repeat(leaf[None], k + 1, axis=0), jnp.copy(leaf), jnp.copy(leaf))

    def fold_leaf(state: WindowLeaf, x: jax.Array, n: jax.Array, take: jax.Array) -> WindowLeaf:
        # The evicted snapshot is carried in the state and the next one is read *after* the
        # in-place slot write: reading the ring before writing it made XLA copy the whole ring
        # every step. Non-snapshot steps write into the scratch slot k: no select over the ring.
        x = x.astype(state.total.dtype)
        total = jnp.where(n == 0, 0, state.total - jnp.where(n >= k, state.evict, 0)) + x
        ring = state.ring.at[jnp.where(take, n % k, k)].set(x)
        n_next = n + take.astype(n.dtype)
        evict = jnp.where(take, ring[n_next % k], state.evict)
        return WindowLeaf(ring, jnp.where(take, total, state.total), evict)

    return Averager("lawa", burn_in + every, every, init_leaf, lambda n: n, fold_leaf)
