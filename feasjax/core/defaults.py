"""The defaults every entry point shares, so that a constraint group means the same thing whichever
door it came through."""
from __future__ import annotations

import optax

from feasjax.core.dual import AscentTransformation, ascent

__all__: list[str] = []  # helpers of the core only: import them from here

# Primal and dual steps from the same forward pass, the primal one with the old multipliers.
SCHEME = "simultaneous"
# 1/B Σ over a batch of samples, 1/m Σ over m dense constraints: step sizes do not scale with B
# (a dense group's multipliers are then m times the textbook "sum" ones).
REDUCTION = "mean"
# λ_i = 1 at start: every constraint weighs on the first primal step (FL's is an ERM step).
INIT_MULTIPLIER = 1.0
# Step size of the default dual (ascent) optimizer.
DUAL_LEARNING_RATE = 0.1


def dual_optimizer() -> AscentTransformation:
    """The default dual optimizer, ``ascent(optax.sgd(DUAL_LEARNING_RATE))``."""
    return ascent(optax.sgd(DUAL_LEARNING_RATE))
