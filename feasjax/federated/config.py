"""The settings of the federated experiment, importable without JAX (the command line builds
its parser from them before it imports anything heavy).
"""
from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["METHODS", "FederatedConfig"]

METHODS = ("local", "global", "finetune", "mix", "portfolio")
GRID = tuple(k / 10 for k in range(11))  # 0.0, 0.1, ..., 1.0


class FederatedConfig(NamedTuple):
    """Settings of :func:`feasjax.federated.run_federated` (the defaults of ``feasjax federated``).

    Example:
      >>> from feasjax.federated import FederatedConfig
      >>> FederatedConfig(rounds=5).rounds, FederatedConfig().alphas[:3]
      (5, (0.0, 0.1, 0.2))
    """

    rounds: int = 50
    local_steps: int = 10
    learning_rate: float = 0.1  # client SGD
    batch_size: int = 32
    hidden: tuple = ()  # () is a linear (softmax-regression) model
    finetune_steps: int = 10
    held_out: float = 0.2  # share of each client's training rows that selects alpha
    alphas: tuple = GRID
    thetas: tuple = GRID
    theta: float = 0.5  # the portfolio's reported coefficient (a grid value)
    num_features: int = 256
    prompt_learning_rate: float = 20.0
    mesh: Any = None  # a 1-D mesh splits the clients of the FedAvg rounds over its devices
