"""The 0.1 name of the checkpointed loop: :func:`feasjax.train` with a ``checkpoint_dir``."""
from __future__ import annotations

import os
from typing import Any, Callable

import jax

from feasjax.core.solver import PrimalDual, PrimalDualState
from feasjax.training.engine import train
from feasjax.training.tally import History

__all__ = ["train_resumable"]


def train_resumable(
    solver: PrimalDual,
    state: PrimalDualState,
    data: Any,
    *,
    epochs: int,
    batch_size: int,
    key: jax.Array,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    max_to_keep: int = 3,
    resume: bool = True,
    config: dict | None = None,
    epsilon: float | None = None,
    on_nonfinite: str = "skip",
    progress: bool | str = True,
    description: str = "train",
    async_save: bool = True,
    after_save: Callable[[int], None] | None = None,
) -> tuple[PrimalDualState, History]:
    """:func:`feasjax.train` with checkpoints (the same engine; kept for 0.1 programs).

    Every argument means what it means for :func:`feasjax.train` (``solver`` is its ``step``,
    ``state`` its ``carry``).

    Returns:
      ``(state, history)``; the history of epochs run before a resume is restored too.

    Example:
      >>> import tempfile, jax, jax.numpy as jnp, optax
      >>> from feasjax import empirical_risk, per_example
      >>> from feasjax.training import train_resumable
      >>> erm = empirical_risk(per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
      >>> kw = dict(epochs=3, batch_size=2, key=jax.random.key(0), progress=False,
      ...           checkpoint_dir=tempfile.mkdtemp(), checkpoint_every=1)
      >>> fresh, data = lambda: erm.init(jnp.zeros(())), jnp.arange(4.0)
      >>> state, _ = train_resumable(erm, fresh(), data, **kw)
      >>> again, _ = train_resumable(erm, fresh(), data, **kw)  # restored, not re-run
      >>> int(again.step), bool(again.params == state.params)
      (6, True)
    """
    return train(solver, state, data, epochs=epochs, batch_size=batch_size, key=key,
                 checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                 max_to_keep=max_to_keep, resume=resume, config=config, epsilon=epsilon,
                 on_nonfinite=on_nonfinite, progress=progress, description=description,
                 async_save=async_save, after_save=after_save)
