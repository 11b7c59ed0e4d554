"""Personalized federated learning: compiled rounds of all clients (``rounds``), personalization
(``personalize``), prompt portfolios (``portfolio``), the mean-estimation check of optimal mixing
(``theory``) and the experiment behind ``feasjax federated`` (``experiment``).
"""
from typing import TYPE_CHECKING

from feasjax._exports import module_attributes

if TYPE_CHECKING:  # for type checkers and the API reference (griffe); at run time: __getattr__
    from feasjax.federated.rounds import (FederatedState, Federated, client_update,
                                          federated_averaging)
    from feasjax.federated.personalize import (train_clients, client_metrics, held_out_split,
                                               mix_clients, alpha_curve, select_alpha)
    from feasjax.federated.portfolio import (random_features, prompt_logits, portfolio_params,
                                             portfolio_prompts, portfolio_loss)
    from feasjax.federated.theory import MeanEstimation, mean_estimation
    from feasjax.federated.config import METHODS, FederatedConfig
    from feasjax.federated.experiment import run_federated

__all__ = ["alpha_curve", "client_metrics", "client_update", "Federated", "federated_averaging",
           "FederatedConfig", "FederatedState", "held_out_split", "mean_estimation",
           "MeanEstimation", "METHODS", "mix_clients", "portfolio_loss", "portfolio_params",
           "portfolio_prompts", "prompt_logits", "random_features", "run_federated", "select_alpha",
           "train_clients"]

# Imported on first use, so that the command line reads feasjax.federated.config without JAX.
__getattr__, __dir__ = module_attributes(__name__, __all__, lazy={
    "feasjax.federated.rounds": (
        "FederatedState", "Federated", "client_update", "federated_averaging"),
    "feasjax.federated.personalize": (
        "train_clients", "client_metrics", "held_out_split", "mix_clients", "alpha_curve",
        "select_alpha"),
    "feasjax.federated.portfolio": (
        "random_features", "prompt_logits", "portfolio_params", "portfolio_prompts",
        "portfolio_loss"),
    "feasjax.federated.theory": ("MeanEstimation", "mean_estimation"),
    "feasjax.federated.config": ("METHODS", "FederatedConfig"),
    "feasjax.federated.experiment": ("run_federated",),
})
