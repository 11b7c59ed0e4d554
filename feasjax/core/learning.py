"""Feasible Learning (Ramirez et al., AISTATS 2025, arXiv 2501.14912) and ERM as
:func:`feasjax.primal_dual` solvers of per-sample losses.

feasjax **averages** over the minibatch (``reduction="mean"``); the paper's code sums, which
multiplies the primal gradient by ``B``: pass ``"sum"`` to reproduce its runs.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from feasjax.core import checks, defaults
from feasjax.core.formulations import Formulation, lagrangian
from feasjax.core.problem import ConstraintGroup, ConstraintValue, ProblemOutput
from feasjax.core.solver import PrimalDual, primal_dual
from feasjax.core.transform import SAMPLES
from feasjax.core.weighting import weighted_sum

__all__ = ["feasible_learning", "empirical_risk", "per_example"]


def per_example(example_loss: Callable[[Any, Any], jax.Array]) -> Callable[[Any, Any], jax.Array]:
    """Vectorise a loss of one example into per-sample losses of a batch with ``jax.vmap``.

    Args:
      example_loss: ``(params, example) -> scalar``; ``example`` is one row of every leaf of
        the batch.

    Returns:
      ``(params, batch) -> (B,)`` per-sample losses.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax import per_example
      >>> losses = per_example(lambda w, ex: (ex["x"] @ w - ex["y"]) ** 2)
      >>> losses(jnp.ones(2), {"x": jnp.eye(2), "y": jnp.array([1.0, 3.0])}).tolist()
      [0.0, 4.0]
    """
    return jax.vmap(example_loss, in_axes=(None, 0))


def _checked_losses(losses: Any) -> jax.Array:
    if isinstance(losses, tuple):
        raise TypeError("per_sample_loss must return the (B,) losses alone, got a tuple (for a "
                        "model with batch statistics or dropout, give the solver's init its "
                        "model_state and return (losses, new_model_state))")
    if jnp.ndim(losses) != 1:
        raise ValueError(f"per_sample_loss must return a 1-D array of per-sample losses, got "
                         f"shape {jnp.shape(losses)}")
    if not jnp.issubdtype(jnp.result_type(losses), jnp.floating):
        raise TypeError(f"per_sample_loss must return float losses (int or bool losses have no "
                        f"gradient), got dtype {jnp.result_type(losses)}")
    return losses


def _losses_problem(per_sample_loss: Callable, make: Callable) -> Callable:
    """``problem_fn(*args)`` of a per-sample loss, ``args = (params, batch[, model_state])``;
    ``make(args, losses)`` its ``ProblemOutput``; with a model state the loss returns a pair."""
    def problem(*args):
        out = per_sample_loss(*args)
        if len(args) == 2:
            return make(args, _checked_losses(out))
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("with a model state, per_sample_loss must return (losses, "
                            "new_model_state)")
        return make(args, _checked_losses(out[0])), out[1]

    return problem


def feasible_learning(
    per_sample_loss: Callable[[Any, Any], jax.Array],
    primal_optimizer: optax.GradientTransformation,
    *,
    num_samples: int,
    epsilon: float,
    dual_optimizer: optax.GradientTransformation | None = None,
    formulation: Formulation | None = None,
    scheme: str = defaults.SCHEME,
    reduction: str = defaults.REDUCTION,
    init_multiplier: float = defaults.INIT_MULTIPLIER,
    measurement_fn: Callable[[Any, Any], jax.Array] | None = None,
    axis_name: str | None = None,
    checked: bool = False,
    on_nonfinite: str = "skip",
    stateful: bool | None = None,
) -> PrimalDual:
    """Feasible Learning: ``loss_i(θ) <= ε`` for every training sample, solved primal-dual.

    .. math::
      \\lambda_i \\leftarrow \\max(0, \\lambda_i + \\eta\\,(\\ell_i(\\theta) - \\epsilon))
      \\quad (i \\in B), \\qquad
      \\theta \\leftarrow \\theta - \\mathrm{opt}\\big(\\nabla_\\theta \\tfrac{1}{B}
      \\textstyle\\sum_{i\\in B} \\lambda_i (\\ell_i(\\theta) - \\epsilon)\\big)

    Args:
      per_sample_loss: ``(params, batch) -> (B,)`` float losses (see :func:`per_example`);
        for a model with state (``init(params, model_state=...)``), ``(params, batch,
        model_state) -> (losses, new_model_state)``, as :func:`feasjax.models.per_sample_loss_fn`
        builds.
      primal_optimizer: optax optimizer for the parameters.
      num_samples: ``N``, the number of training samples (multipliers), an integer.
      epsilon: the loss bound ``ε >= 0``.
      dual_optimizer: element-wise ascent optimizer (default ``ascent(optax.sgd(0.1))``).
      formulation: :func:`feasjax.lagrangian` (FL, default) or :func:`feasjax.resilient` (RFL).
      scheme: see :func:`feasjax.primal_dual` (``"dual_then_primal"`` is the paper's).
      reduction: ``"mean"`` (default) or ``"sum"`` over the minibatch (module docstring).
      init_multiplier: initial ``λ_i`` (1.0: the first step is an ERM step).
      measurement_fn: optional non-differentiable per-sample measurement for the dual step (a
        proxy constraint, e.g. the 0-1 error); ``(params, batch[, model_state])``.
      axis_name, checked, on_nonfinite, stateful: see :func:`feasjax.primal_dual`.

    Returns:
      A :class:`feasjax.PrimalDual`; ``step(state, batch, indices)`` needs the batch's sample
      indices in ``[0, num_samples)``; ``info.aux`` holds the per-sample losses.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax import feasible_learning, per_example
      >>> x, y = jnp.array([[1.0], [2.0]]), jnp.array([1.0, 2.5])
      >>> loss = per_example(lambda w, ex: (ex[0] @ w - ex[1]) ** 2)
      >>> fl = feasible_learning(loss, optax.sgd(0.05), num_samples=2, epsilon=0.1)
      >>> state, step = fl.init(jnp.zeros(1)), jax.jit(fl.step)
      >>> for _ in range(200):
      ...     state, info = step(state, (x, y), jnp.array([0, 1]))
      >>> bool(jnp.all(info.aux <= 0.1 + 1e-3))
      True
    """
    checks.check_positive(epsilon, "epsilon", allow_zero=True)
    group = ConstraintGroup(
        size=checks.check_count(num_samples, "num_samples"),
        formulation=formulation or lagrangian(),
        dual_optimizer=dual_optimizer or defaults.dual_optimizer(),
        indexed=True,
        reduction=reduction,
        init_multiplier=init_multiplier,
    )

    def make(args, losses):
        measurement = None
        if measurement_fn is not None:
            measurement = jax.lax.stop_gradient(measurement_fn(*args)) - epsilon
        constraint = ConstraintValue(violation=losses - epsilon, measurement=measurement)
        return ProblemOutput(jnp.zeros((), losses.dtype), {SAMPLES: constraint}, aux=losses)

    return primal_dual(_losses_problem(per_sample_loss, make), primal_optimizer,
                       {SAMPLES: group}, scheme=scheme, axis_name=axis_name, checked=checked,
                       on_nonfinite=on_nonfinite, stateful=stateful)


def empirical_risk(
    per_sample_loss: Callable[[Any, Any], jax.Array],
    primal_optimizer: optax.GradientTransformation,
    *,
    reduction: str = defaults.REDUCTION,
    axis_name: str | None = None,
    checked: bool = False,
    on_nonfinite: str = "skip",
    stateful: bool | None = None,
) -> PrimalDual:
    """Empirical risk minimisation through the same primal-dual machinery (no multipliers).

    Args:
      per_sample_loss: ``(params, batch) -> (B,)`` losses.
      primal_optimizer: optax optimizer for the parameters.
      reduction, axis_name, checked, on_nonfinite, stateful: as in :func:`feasible_learning`.

    Returns:
      A :class:`feasjax.PrimalDual`; ``indices`` are accepted and ignored.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, per_example
      >>> loss = per_example(lambda w, y: (w - y) ** 2)
      >>> erm = empirical_risk(loss, optax.sgd(0.25))
      >>> state, step = erm.init(jnp.zeros(())), jax.jit(erm.step)
      >>> for _ in range(50):
      ...     state, _ = step(state, jnp.array([1.0, 3.0]))
      >>> round(float(state.params), 4)
      2.0
    """
    def make(args, losses):
        del args
        return ProblemOutput(weighted_sum(losses, jnp.ones_like(losses), reduction), {}, aux=losses)

    return primal_dual(_losses_problem(per_sample_loss, make), primal_optimizer, {},
                       axis_name=axis_name, checked=checked, on_nonfinite=on_nonfinite,
                       stateful=stateful)
