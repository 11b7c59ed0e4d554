"""Implicit (model-based) multipliers: ``λ(z) = link(h_φ(z)) >= 0`` from per-sample features.

Instead of one stored multiplier per sample (O(N) memory), a small model ``h_φ`` maps a
sample's features ``z`` to its multiplier and the dual step ascends the Lagrangian in ``φ``
(Cooper's ``ImplicitMultiplier`` is the same idea): the state holds ``φ`` and its optimizer's.

With one-hot features, a linear model without bias, ``link="projected"`` and
``project="nonnegative"``, ``h_φ(e_i) = φ_i`` and the dual step is explicit FL's projected
ascent ``λ_i ← max(0, λ_i + η g_i)`` exactly (``tests/test_implicit.py`` checks it).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from feasjax.core import checks, defaults
from feasjax.core.dual import check_ascent
from feasjax.core.weighting import check_reduction

__all__ = ["implicit_multipliers"]


def _projected(h: jax.Array) -> jax.Array:
    # max(0, h) with the identity's gradient: the analogue of projected ascent, whose step
    # moves λ along g wherever it stands (relu's zero gradient would freeze λ = 0 for good).
    return h + jax.lax.stop_gradient(jnp.maximum(h, 0) - h)


LINKS = {"softplus": jax.nn.softplus, "exp": jnp.exp, "projected": _projected}
PROJECTIONS = {"nonnegative": lambda params: jax.tree.map(lambda p: jnp.maximum(p, 0), params)}


class ImplicitMultipliers(NamedTuple):
    """What :func:`implicit_multipliers` returns: give it to ``fj.feasible(multipliers=...)``
    or ``fj.ConstraintGroup(multipliers=...)``."""

    predict: Callable  # (φ, features) -> (B,) multipliers >= 0, differentiable in φ
    params: Any  # the initial φ
    optimizer: optax.GradientTransformation  # the ascent optimizer of φ
    project: Callable | None  # φ -> φ after each dual step, or None
    reduction: str  # "sum" (explicit FL's per-sample step) or "mean" over the batch


@functools.partial(jax.tree_util.register_dataclass, data_fields=["params", "opt_state"],
                   meta_fields=["predict"])
@dataclasses.dataclass(frozen=True)
class ImplicitState:
    """The dual state of implicit multipliers (in ``ConstrainedState.dual_states``)."""

    params: Any  # φ, the multiplier model's parameters: no leaf depends on N
    opt_state: Any  # the dual optimizer's state of φ
    predict: Callable  # static: (φ, features) -> (B,) multipliers


def _model_apply(model: Any) -> tuple[Callable, Any]:
    """``(apply, params)`` of an ``nnx.Module`` whose only state is its ``nnx.Param``s."""
    from flax import nnx  # only for a Module given as the multiplier model

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    if jax.tree.leaves(rest):
        raise ValueError("model must keep all its state in nnx.Param (no batch statistics, "
                         "dropout RNG or other variables): the multiplier model is evaluated "
                         "as a pure function of its parameters")
    return (lambda p, z: nnx.merge(graphdef, p)(z)), nnx.as_pure(params)


def implicit_multipliers(
    model: Any,
    params: Any = None,
    *,
    optimizer: optax.GradientTransformation | None = None,
    link: str | Callable[[jax.Array], jax.Array] = "softplus",
    project: str | Callable[[Any], Any] | None = None,
    reduction: str = "sum",
) -> ImplicitMultipliers:
    """Multipliers predicted by a model of per-sample features: ``λ(z) = link(h_φ(z))``.

    .. math::
      \\phi \\leftarrow \\mathrm{proj}\\big(\\phi + \\mathrm{dual}(\\nabla_\\phi
      \\textstyle\\sum_{i \\in B} \\lambda_\\phi(z_i)\\, g_i)\\big),
      \\qquad g_i = \\ell_i - \\epsilon

    Pass the result as ``multipliers=`` to :func:`feasjax.feasible` or to a
    :class:`feasjax.ConstraintGroup` of :func:`feasjax.constrained`; ``update`` then takes
    ``features=`` (the batch's ``(B, ...)`` features) instead of ``indices``, and
    ``fj.multipliers(state, features=z)`` reads ``λ``, also of samples never trained on.

    Args:
      model: an ``nnx.Module`` mapping ``(B, ...)`` features to ``(B,)`` or ``(B, 1)`` outputs
        (its ``nnx.Param``s are ``φ``), or a function ``apply(params, features)``.
      params: ``φ`` when ``model`` is a function; ``None`` for a Module.
      optimizer: ascent optimizer of ``φ`` (default ``fj.ascent(optax.sgd(0.1))``).
      link: ``"softplus"`` (default), ``"exp"``, ``"projected"`` (``max(0, h)`` with the
        identity's gradient, projected ascent's analogue) or a function ``h -> λ >= 0``.
      project: ``None``, ``"nonnegative"`` (``φ ← max(0, φ)`` after each step) or a function
        ``φ -> φ``.
      reduction: ``"sum"`` (default: with one-hot features, explicit FL's per-sample step) or
        ``"mean"`` of the batch's dual terms (a learning rate that does not scale with B).

    Returns:
      An :class:`ImplicitMultipliers` for ``fj.feasible(..., multipliers=...)``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, feasjax as fj
      >>> from flax import nnx
      >>> im = fj.implicit_multipliers(nnx.Linear(2, 1, rngs=nnx.Rngs(0)),
      ...                              optimizer=fj.ascent(optax.adam(1e-2)))
      >>> tx = fj.feasible(optax.sgd(0.1), multipliers=im, epsilon=0.1)
      >>> state = tx.init(jnp.zeros(2))
      >>> z = jnp.ones((4, 2))                     # the batch's features
      >>> fj.multipliers(state, features=z).shape
      (4,)
      >>> _, state = tx.update(jnp.zeros(2), state, jnp.zeros(2),
      ...                      losses=jnp.ones(4), features=z)
      >>> int(fj.constrained_state(state).count)
      1
    """
    if params is None:
        if not any(c.__name__ == "Module" and c.__module__.startswith("flax.nnx")
                   for c in type(model).__mro__):  # flax is imported for Modules only
            raise TypeError(f"model must be an nnx.Module, or a function apply(params, "
                            f"features) with params given, got {type(model).__name__}")
        apply, params = _model_apply(model)
    elif not callable(model):
        raise TypeError(f"model must be a function apply(params, features) when params are "
                        f"given, got {type(model).__name__}")
    else:
        apply = model
    checks.check_finite_tree(params, "params")
    optimizer = optimizer or defaults.dual_optimizer()
    check_ascent(optimizer, "optimizer")
    link_fn = _choose(link, LINKS, "link")
    project_fn = None if project is None else _choose(project, PROJECTIONS, "project")
    check_reduction(reduction)
    return ImplicitMultipliers(functools.partial(_predict, apply, link_fn), params, optimizer,
                               project_fn, reduction)


def _choose(value: Any, named: dict, name: str) -> Callable:
    if callable(value):
        return value
    if value not in named:
        raise ValueError(f"{name} must be one of {sorted(named)} or a function, got {value!r}")
    return named[value]


def _predict(apply: Callable, link: Callable, params: Any, features: Any) -> jax.Array:
    batch = checks.leading_size(features, "features")
    h = apply(params, features)
    if jnp.ndim(h) == 2 and jnp.shape(h)[1] == 1:
        h = h[:, 0]
    if jnp.shape(h) != (batch,):
        raise ValueError(f"the multiplier model must map features with {batch} rows to shape "
                         f"({batch},) or ({batch}, 1), got {jnp.shape(h)}")
    return link(h)


def init_state(spec: ImplicitMultipliers) -> ImplicitState:
    """A fresh dual state; ``φ`` is copied so that a donated state never aliases ``spec``."""
    params = jax.tree.map(lambda p: jnp.array(p, copy=True), spec.params)
    return ImplicitState(params, spec.optimizer.init(params), spec.predict)


def propose(spec: ImplicitMultipliers, dual: ImplicitState, fstate: Any, formulation: Any,
            violations: jax.Array, features: Any, axis_name: str | None) -> ImplicitState:
    """The dual step in ``φ``, not yet committed: the per-sample dual direction ``d_i`` pulled
    back through the model, the gradient of ``Σ_i λ_φ(z_i) d_i`` (``"mean"``: divided by ``B``)."""
    lam, pullback = jax.vjp(lambda p: dual.predict(p, features), dual.params)
    direction = formulation.dual_gradient(lam, violations, fstate, "inequality")
    # Projected ascent leaves λ_i = 0 where g_i < 0 (the bound is active): such samples exert
    # no pull on φ, or the many feasible samples would drag every shared multiplier down.
    direction = jnp.where((lam <= 0) & (direction < 0), 0, direction)
    if spec.reduction == "mean":
        direction = direction / direction.shape[0]
    (grads,) = pullback(direction.astype(lam.dtype))
    if axis_name is not None:  # φ is replicated: every device takes the global step
        reduce = jax.lax.psum if spec.reduction == "sum" else jax.lax.pmean
        grads = reduce(grads, axis_name)
    updates, opt_state = spec.optimizer.update(grads, dual.opt_state, dual.params)
    params = optax.apply_updates(dual.params, updates)
    if spec.project is not None:
        params = spec.project(params)
    return ImplicitState(params, opt_state, dual.predict)


def state_bytes(tree: Any) -> int:
    """Bytes of every array leaf of ``tree`` (e.g. a state: independent of N when implicit)."""
    return int(sum(getattr(x, "nbytes", None) or np.asarray(x).nbytes
                   for x in jax.tree.leaves(tree)))
