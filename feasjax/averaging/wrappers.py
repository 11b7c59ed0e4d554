"""Parameter averaging as a wrapper around any Optax optimizer: the parameters *after* each
update are folded into an average held in the state (never the updates, ``optax.ema``'s pitfall),
elementwise, so the average keeps the parameters' sharding.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

from feasjax.averaging.averagers import Averager, WindowLeaf

__all__ = ["AveragedState", "averaged", "find_averaged_states", "averaged_params"]

Mask = Union[Any, Callable[[Any], Any], None]


class AveragedState(NamedTuple):
    """State of :func:`averaged` and :func:`indexed_averaged`."""

    count: jax.Array  # shape=() int32 (dense) or (N,) int32 (indexed): steps / touches seen
    n: jax.Array  # same shape as count, int32: iterates folded into the average so far
    average: Any  # params-shaped tree of per-leaf averager states; optax.MaskedNode = copied
    inner_state: optax.OptState  # the wrapped optimizer's state


def _counted(averager: Averager, count: jax.Array) -> jax.Array:
    return (count >= averager.first) & ((count - averager.first) % averager.every == 0)


def _fold(averager: Averager, average: Any, iterate: Any, n: jax.Array, take: Any = True) -> Any:
    coef, take = averager.weight(n), jnp.asarray(take)
    return jax.tree.map(lambda x, s: s if isinstance(s, optax.MaskedNode) else
                        averager.fold_leaf(s, x, coef, take), iterate, average)


def _init_state(averager: Averager, inner: optax.GradientTransformation, params: Any,
                mask: Mask, n: jax.Array, fold: Callable) -> AveragedState:
    # The state before any update, n the zero counters; theta_0 is folded in when counted. A mask
    # may be a prefix of params (one bool for a whole collection, e.g. batch statistics).
    mask_tree = True if mask is None else mask(params) if callable(mask) else mask
    full = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), mask_tree, params)
    average = jax.tree.map(lambda p, m: averager.init_leaf(p) if m else optax.MaskedNode(),
                           params, full)
    if averager.first == 0:
        average, n = fold(average, params, n), n + 1
    # One buffer per field (count is not n): the state is donated.
    return AveragedState(jnp.zeros_like(n), n, average, inner.init(params))


def _checked_inner(inner: optax.GradientTransformation, averager: Any
                   ) -> optax.GradientTransformationExtraArgs:
    if not isinstance(averager, Averager):
        raise TypeError(f"averager must be a feasjax Averager (ema, polyak, ...), got {averager!r}")
    return optax.with_extra_args_support(inner)


def _check_params(params: Any) -> None:
    if params is None:
        raise ValueError("averaged(...).update needs params (the parameters before this update), "
                         "got params=None")


def averaged(inner: optax.GradientTransformation, averager: Averager, *, mask: Mask = None
             ) -> optax.GradientTransformationExtraArgs:
    """Wrap ``inner`` so that it also keeps an average of the parameters it produces.

    At step ``t`` the wrapper returns ``u_t`` of ``inner.update(g_t, s_{t-1}, theta_{t-1})``
    unchanged and folds ``theta_t = theta_{t-1} + u_t`` into the average when the averager counts
    step ``t``.

    Args:
      inner: any Optax transformation; extra keyword arguments are forwarded to it.
      averager: from :func:`~feasjax.averaging.ema`, ``polyak``, ``tail_polyak``, ``lawa`` or
        ``swa``.
      mask: optional bool tree (a prefix of params) or ``params -> tree``: ``False`` leaves are
        copied, not averaged (batch-norm statistics). ``None`` averages everything.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax.averaging import averaged, averaged_params, polyak
      >>> tx = averaged(optax.sgd(1.0), polyak())
      >>> params = jnp.array([0.0]); state = tx.init(params)
      >>> for g in (-1.0, -1.0):
      ...     u, state = tx.update(jnp.array([g]), state, params)
      ...     params = optax.apply_updates(params, u)
      >>> averaged_params(state, params)  # mean of 0, 1, 2
      Array([1.], dtype=float32)
    """
    inner = _checked_inner(inner, averager)

    def init_fn(params):
        zero = jnp.zeros([], jnp.int32)
        return _init_state(averager, inner, params, mask, zero, functools.partial(_fold, averager))

    def update_fn(updates, state, params=None, **extra_args):
        _check_params(params)
        inner_updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        count = optax.safe_increment(state.count)
        take = _counted(averager, count)
        # Computed every step and selected with jnp.where inside the fold (XLA fuses it into one
        # elementwise pass); lax.cond would skip it on other steps but made XLA copy the state:
        # slower on the benchmark (benchmarks/README.md, "Averaging overhead").
        iterate = optax.apply_updates(params, inner_updates)
        average = _fold(averager, state.average, iterate, state.n, take)
        n = state.n + take.astype(jnp.int32)
        return inner_updates, AveragedState(count, n, average, inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def find_averaged_states(state: optax.OptState) -> list[AveragedState]:
    """Every :class:`AveragedState` inside an optimizer state (``optax.chain``, ``partition``, ...).

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax.averaging import averaged, ema, find_averaged_states
      >>> tx = optax.chain(optax.clip(1.0), averaged(optax.sgd(0.1), ema(0.9)))
      >>> len(find_averaged_states(tx.init(jnp.zeros(3))))
      1
    """
    leaves = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, AveragedState))
    return [leaf for leaf in leaves if isinstance(leaf, AveragedState)]


def _read_leaf(s: Any, p: jax.Array, n: jax.Array) -> jax.Array:
    if isinstance(s, optax.MaskedNode):
        return p
    rows = n.ndim  # 0 for averaged, 1 for indexed_averaged (whose per-row states are rows first)
    n, value = n.reshape(n.shape + (1,) * (p.ndim - rows)), s
    if isinstance(s, WindowLeaf):  # the ring holds k slots and a scratch one
        value = s.total / jnp.clip(n, 1, s.ring.shape[rows] - 1).astype(s.total.dtype)
    return jnp.where(n > 0, value, p).astype(p.dtype)


def averaged_params(state: optax.OptState, params: Any) -> Any:
    """Parameters to evaluate: the average, or the raw ``params`` where nothing is averaged yet.

    Leaves (or rows, for :func:`indexed_averaged`) with no counted iterate yet and masked leaves
    come from ``params``. NNX variables are read as arrays, so
    ``averaged_params(optimizer.opt_state, nnx.state(model, nnx.Param))`` works with
    ``nnx.Optimizer`` and the result can go to ``nnx.update``.

    Args:
      state: an optimizer state holding one or more :class:`AveragedState`.
      params: the current parameters, same structure as given to ``init``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax.averaging import averaged, averaged_params, ema
      >>> tx = averaged(optax.sgd(1.0), ema(0.5))
      >>> params = jnp.array([0.0]); state = tx.init(params)
      >>> u, state = tx.update(jnp.array([-2.0]), state, params)
      >>> averaged_params(state, optax.apply_updates(params, u))  # 0.5 * 0 + 0.5 * 2
      Array([1.], dtype=float32)
    """
    from flax import nnx  # imported on use

    state, params = nnx.as_pure(state), nnx.as_pure(params)  # NNX variables read as arrays
    found = find_averaged_states(state)
    if not found:
        raise ValueError("state holds no AveragedState; build the optimizer with feasjax.averaged")
    out = params
    for s in found:
        out = jax.tree.map(lambda p, a, n=s.n: _read_leaf(a, p, n), out, s.average)
    return out
