"""Learning-rate schedules that go with averaging (SWA's cyclic or constant phase)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from feasjax.averaging.averagers import _check_int

__all__ = ["swa_schedule"]


def swa_schedule(base: optax.ScalarOrSchedule, start_step: int, swa_lr: float,
                 cycle_length: int = 1, min_lr: float | None = None) -> optax.Schedule:
    """SWA learning rate (Izmailov et al., 2018, eq. 2): ``base`` then a cyclic or constant phase.

    With ``c = cycle_length`` and optax's ``count`` (updates already applied):

    .. math::
       \\eta(\\text{count}) = \\begin{cases} \\text{base}(\\text{count}) & \\text{count} < s \\\\
       \\alpha_1 + (\\alpha_2 - \\alpha_1)\\,\\frac{j + 1}{c}, \\
       j = (\\text{count} - s) \\bmod c & \\text{otherwise} \\end{cases}

    with ``alpha_1 = swa_lr``, ``alpha_2 = min_lr``: the updates producing ``theta_{s + m c}``
    have rate ``min_lr``, the iterates :func:`feasjax.averaging.swa` averages.

    Args:
      base: the schedule (or constant) used before ``start_step``.
      start_step: first step of the SWA phase, ``>= 0``.
      swa_lr: the high (or constant) rate of the SWA phase, ``>= 0``.
      cycle_length: steps per cycle, ``>= 1``.
      min_lr: the low rate at each cycle end, ``>= 0``; ``None`` for a constant phase.

    Example:
      >>> from feasjax.averaging import swa_schedule
      >>> sched = swa_schedule(1.0, start_step=2, swa_lr=0.5, cycle_length=2,
      ...                      min_lr=0.1)
      >>> [round(float(sched(t)), 3) for t in range(6)]
      [1.0, 1.0, 0.3, 0.1, 0.3, 0.1]
    """
    _check_int("start_step", start_step, 0)
    _check_int("cycle_length", cycle_length, 1)
    if swa_lr < 0 or (min_lr is not None and min_lr < 0):
        raise ValueError(f"swa_lr and min_lr must be >= 0, got {swa_lr=}, {min_lr=}")
    low = swa_lr if min_lr is None else min_lr
    base_fn = base if callable(base) else (lambda count: jnp.asarray(base, jnp.float32))

    def schedule(count: jax.Array) -> jax.Array:
        j = jnp.maximum(count - start_step, 0) % cycle_length
        cyclic = swa_lr + (low - swa_lr) * (j + 1) / cycle_length
        return jnp.where(count < start_step, base_fn(count), cyclic)

    return schedule
