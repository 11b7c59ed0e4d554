"""Group DRO (Sagawa, Koh, Hashimoto and Liang, ICLR 2020) as a dense constraint group.

``min_θ max_{q ∈ Δ} Σ_g q_g L_g(θ)``: one dense group of ``G`` multipliers whose violations are
the batch's per-group mean losses, ``reduction="sum"``, and exponentiated gradient ascent
(Algorithm 1) taken before the primal step,

.. math:: q_g \\leftarrow \\frac{q_g\\, e^{\\eta L_g}}{\\sum_h q_h\\, e^{\\eta L_h}}.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from feasjax.core.checks import is_concrete
from feasjax.core.dual import AscentTransformation, ascent
from feasjax.core.problem import ConstraintGroup, ConstraintValue, ProblemOutput
from feasjax.core.solver import PrimalDual, primal_dual

__all__ = ["exponentiated_gradient", "group_dro"]

GROUPS = "groups"  # name of group DRO's dense constraint group


def exponentiated_gradient(step_size: float) -> AscentTransformation:
    """Exponentiated-gradient ascent on the simplex: ``q ← softmax(log q + η g)``.

    ``update(g, state, params)`` reads the multipliers ``q`` as ``params`` and returns
    ``q_new - q``.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.core import exponentiated_gradient
      >>> tx = exponentiated_gradient(1.0)
      >>> q = jnp.array([0.5, 0.5])
      >>> upd, _ = tx.update(jnp.array([0.0, jnp.log(3.0)]), tx.init(q), q)
      >>> [round(v, 4) for v in (q + upd).tolist()]
      [0.25, 0.75]
    """
    if is_concrete(step_size) and not step_size > 0:  # a traced one (a sweep) is unchecked
        raise ValueError(f"step_size must be > 0, got {step_size=}")

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("exponentiated_gradient needs the multipliers as params")
        logits = jnp.log(jnp.maximum(params, 1e-30)) + step_size * updates
        return jax.nn.softmax(logits) - params, state

    tx = optax.GradientTransformationExtraArgs(optax.init_empty_state, update)
    return ascent(tx, negate=False)


def group_mean_losses(losses: jax.Array, groups: jax.Array, num_groups: int) -> jax.Array:
    """Mean loss of each group on a batch, ``(num_groups,)``; 0 for a group absent from it."""
    total = jax.ops.segment_sum(losses, groups, num_segments=num_groups)
    count = jax.ops.segment_sum(jnp.ones_like(losses), groups, num_segments=num_groups)
    return total / jnp.maximum(count, 1.0)


def group_dro(per_sample_loss: Callable[[Any, Any], jax.Array],
              primal_optimizer: optax.GradientTransformation, *, num_groups: int,
              step_size: float = 0.1, key: str = "group",
              adjustment: float = 0.0, group_sizes: jax.Array | None = None) -> PrimalDual:
    """Group DRO through :func:`feasjax.primal_dual`: one dense group of ``G`` multipliers.

    Args:
      per_sample_loss: ``(params, batch) -> (B,)`` losses; ``batch[key]`` holds the groups.
      primal_optimizer: optax optimizer for the parameters.
      num_groups: ``G``.
      step_size: the exponentiated-gradient step ``η`` of the group weights.
      key: the batch entry holding each sample's group.
      adjustment: Sagawa et al.'s generalisation adjustment ``C``: the dual step measures
        ``L_g + C / sqrt(n_g)`` (their eq. 5), favouring small groups, whose training loss
        underestimates their test loss; needs ``group_sizes``.
      group_sizes: ``(G,)`` training samples per group (``feasjax.core.reweighting.group_counts``).

    Returns:
      A :class:`feasjax.PrimalDual`; ``state.multipliers["groups"]`` are the weights ``q``
      (initially uniform) and ``info.aux`` the per-sample losses.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax.core import group_dro
      >>> loss = lambda w, b: (w - b["x"]) ** 2
      >>> dro = group_dro(loss, optax.sgd(0.1), num_groups=2, step_size=1.0)
      >>> state = dro.init(jnp.zeros(()))
      >>> batch = {"x": jnp.array([0.0, 0.0, 2.0]), "group": jnp.array([0, 0, 1])}
      >>> step = jax.jit(dro.step)
      >>> for _ in range(300):
      ...     state, _ = step(state, batch)
      >>> round(float(state.params), 2)  # the minimax point, not the mean 2/3
      1.0
    """
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"num_groups must be a positive int, got {num_groups=}")
    none = is_concrete(adjustment) and not adjustment  # a traced one: a sweep over C
    if not none and group_sizes is None:
        raise ValueError("adjustment needs group_sizes, the (G,) training samples per group")
    bonus = (0.0 if none else
             adjustment / jnp.sqrt(jnp.maximum(jnp.asarray(group_sizes, jnp.float32), 1.0)))
    group = ConstraintGroup(size=num_groups, kind="inequality",
                            dual_optimizer=exponentiated_gradient(step_size), reduction="sum",
                            init_multiplier=1.0 / num_groups)

    def problem(params, batch):
        losses = per_sample_loss(params, batch)
        group_losses = group_mean_losses(losses, batch[key], num_groups)
        return ProblemOutput(jnp.zeros((), losses.dtype),
                             {GROUPS: ConstraintValue(group_losses, group_losses + bonus)},
                             aux=losses)

    return primal_dual(problem, primal_optimizer, {GROUPS: group}, scheme="dual_then_primal")
