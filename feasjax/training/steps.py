"""Steps for the training engine: the contract, and adapters that produce steps.

:func:`feasjax.train` runs a **step**, ``step(carry, batch, indices) -> (carry, report)``:
``carry`` is any pytree of arrays (parameters, optimizer states with their multipliers, model
state, RNG keys), ``batch`` the minibatch's rows of the data and ``indices`` their ``(B,)``
int32 rows in the dataset. The engine reads two optional entries of ``report``:

* ``"losses"``: the ``(B,)`` per-sample losses before the step (mean loss, feasible fraction,
  and the samples named when a step goes wrong);
* ``"ok"``: a bool scalar, whether the step was applied. Steps built on
  :func:`feasjax.feasible` / :func:`feasjax.constrained` or :func:`feasjax.primal_dual` skip a
  step whose losses, gradients or updates are not finite (the state is left as it was) and say
  so here; the engine counts skipped steps and, if asked, raises.

A step may take the keyword ``unique_indices``: the engine passes ``True`` (a shuffled epoch
never repeats a row within a minibatch). A step over ``(params, opt_state)`` with
:func:`feasjax.feasible` in its ``optax`` chain is a step as it is; :func:`solver_step` makes one
of a :class:`feasjax.PrimalDual` and :func:`nnx_step` of an ``nnx.Optimizer`` train step.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from feasjax.core.dual_step import select
from feasjax.core.solver import PrimalDual

__all__ = ["solver_step", "nnx_step", "nnx_update"]

Step = Callable[..., tuple[Any, Mapping[str, jax.Array]]]


def takes_keyword(fn: Callable, name: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read: pass nothing extra
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def solver_step(solver: PrimalDual, *, loss_of: Callable[[Any], jax.Array] | None = None
                ) -> Step:
    """The engine's step for a :class:`feasjax.PrimalDual`: its state is the carry.

    Args:
      solver: from :func:`feasjax.primal_dual`, :func:`feasjax.feasible_learning` or
        :func:`feasjax.empirical_risk`.
      loss_of: maps the step's ``info.aux`` to the ``(B,)`` per-sample losses (default: ``aux``
        itself, as :func:`feasjax.feasible_learning` and :func:`feasjax.empirical_risk` return).

    Returns:
      ``step(state, batch, indices, *, unique_indices=False) -> (state, {"losses", "ok"})``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, per_example
      >>> from feasjax.training import solver_step
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> step = solver_step(erm)
      >>> state, report = step(erm.init(jnp.zeros(())), jnp.ones(2), jnp.arange(2))
      >>> report["losses"].tolist(), bool(report["ok"])
      ([1.0, 1.0], True)
    """
    if not isinstance(solver, PrimalDual):
        raise TypeError(f"solver must be a feasjax.PrimalDual, got {type(solver).__name__}")
    loss_of = loss_of or (lambda aux: aux)
    # The engine's promises (no repeated row; per-sample rows a mesh padded), passed to the
    # solver's own step; a user's replacement of it may not take them.
    promises = [k for k in ("unique_indices", "padded") if takes_keyword(solver.step, k)]

    def step(state: Any, batch: Any, indices: jax.Array, *, unique_indices: bool = False):
        extra = {k: v for k, v in (("unique_indices", unique_indices), ("padded", True))
                 if k in promises}
        state, info = solver.step(state, batch, indices, **extra)
        return state, {"losses": loss_of(info.aux), "ok": info.ok}

    step.checked = solver.checked  # its checkify checks need checkify around the program
    return step


def _skipped_count(optimizer: Any) -> jax.Array | None:
    from feasjax.core.transform import constrained_state

    try:
        return constrained_state(optimizer).skipped
    except ValueError:  # a plain optax optimizer: nothing skips
        return None


def nnx_step(train_step: Callable[..., Any], model: Any, optimizer: Any
             ) -> tuple[Step, Any]:
    """An ``nnx.Optimizer`` train step as an engine step, and the carry to start from.

    The carry is the ``nnx.State`` of ``(model, optimizer)`` (parameters, batch statistics,
    RNG counters, optimizer state with the multipliers); the step merges it into a fresh pair,
    runs ``train_step`` and splits the pair again (flax's functional API). A step that the
    optimizer's :func:`feasjax.feasible` skipped (non-finite losses or gradients) also leaves
    the model's other state (batch statistics, RNG) as it was.

    Args:
      train_step: the usual NNX step ``(model, optimizer, batch, indices)`` (per-sample
        losses, their gradient, ``optimizer.update(model, grads, losses=..., indices=...)``)
        returning the ``(B,)`` losses or a dict with ``"losses"``; not jitted by you (the
        engine compiles it inside its epochs).
      model: the ``nnx.Module``, in the mode to train in (``model.train()``).
      optimizer: its ``nnx.Optimizer``.

    Returns:
      ``(step, carry)``; after training, :func:`nnx_update` writes a carry back into
      ``model`` and ``optimizer``. The carry holds the model's own arrays and ``fj.train``
      donates it: until :func:`nnx_update`, ``model``, ``optimizer`` and anything sharing
      their arrays (an ``nnx.clone`` of the model, e.g. a reference model) are invalid; copy
      what must survive first (``jax.tree.map(jnp.copy, nnx.state(model))``).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from flax import nnx
      >>> import feasjax as fj
      >>> from feasjax.training import nnx_step, nnx_update
      >>> model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
      >>> tx = fj.feasible(optax.sgd(0.1), num_samples=4, epsilon=0.01)
      >>> opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
      >>> def train_step(model, optimizer, batch, idx):
      ...     weights = fj.multipliers(optimizer, idx)
      ...     def loss_fn(model):
      ...         losses = (model(batch["x"])[:, 0] - batch["y"]) ** 2
      ...         return jnp.mean(weights * (losses - 0.01)), losses
      ...     (_, losses), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
      ...     optimizer.update(model, grads, losses=losses, indices=idx)
      ...     return losses
      >>> data = {"x": jnp.arange(4.0)[:, None], "y": 2 * jnp.arange(4.0)}
      >>> step, carry = nnx_step(train_step, model, opt)
      >>> carry, _ = fj.train(step, carry, data, epochs=60, batch_size=2,
      ...                     key=jax.random.key(0), progress=False)
      >>> nnx_update(model, opt, carry)
      >>> round(float(model.kernel[0, 0]), 1)
      2.0
    """
    from flax import nnx

    graphdef, carry = nnx.split((model, optimizer))

    def step(carry: Any, batch: Any, indices: jax.Array):
        model, optimizer = nnx.merge(graphdef, carry)
        skipped_before = _skipped_count(optimizer)
        rest = nnx.Not(nnx.Param)
        rest_before = jax.tree.map(lambda x: x, nnx.state(model, rest))  # a snapshot
        out = train_step(model, optimizer, batch, indices)
        losses = out["losses"] if isinstance(out, Mapping) else out
        if skipped_before is None:  # a plain optax optimizer: nothing is skipped
            ok = jnp.all(jnp.isfinite(losses))
        else:
            ok = _skipped_count(optimizer) == skipped_before
            # The optimizer left the parameters and its state as they were; undo the forward
            # pass's writes to the model's other state (batch statistics, RNG counters) too.
            nnx.update(model, select(ok, nnx.state(model, rest), rest_before))
        return nnx.split((model, optimizer))[1], {"losses": losses, "ok": ok}

    return step, carry


def nnx_update(model: Any, optimizer: Any, carry: Any) -> None:
    """Write a carry of :func:`nnx_step` (e.g. trained by :func:`feasjax.train`) back into the
    ``model`` and ``optimizer`` it came from.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from flax import nnx
      >>> from feasjax.training import nnx_update
      >>> model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
      >>> opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
      >>> _, carry = nnx.split((model, opt))
      >>> carry[0]["bias"].set_value(jnp.ones(1))
      >>> nnx_update(model, opt, carry)
      >>> model.bias[...].tolist()
      [1.0]
    """
    from flax import nnx

    nnx.update((model, optimizer), carry)
