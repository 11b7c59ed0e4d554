"""The defaults every entry point shares, so that a constraint group means the same thing whichever
door it came through.

``REDUCTION="mean"`` over a dense group of ``m`` constraints minimises ``f + (1/m) Σ λ_j g_j``,
so its multipliers are ``m`` times the textbook (``"sum"``) ones; ``INIT_MULTIPLIER=1.0`` makes
the first Feasible Learning step an ERM step.
"""
from __future__ import annotations

import optax

from feasjax.core.dual import AscentTransformation, ascent

__all__: list[str] = []  # helpers of the core only: import them from here

# Primal and dual steps from the same forward pass, the primal one with the old multipliers.
SCHEME = "simultaneous"
# 1/B Σ over a batch of samples, 1/m Σ over m dense constraints: step sizes do not scale with B.
REDUCTION = "mean"
# λ_i = 1 at start: every constraint weighs on the first primal step.
INIT_MULTIPLIER = 1.0
# Step size of the default dual (ascent) optimizer.
DUAL_LEARNING_RATE = 0.1


def dual_optimizer() -> AscentTransformation:
    """The default dual optimizer, ``ascent(optax.sgd(DUAL_LEARNING_RATE))``."""
    return ascent(optax.sgd(DUAL_LEARNING_RATE))
