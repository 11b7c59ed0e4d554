"""Personalized federated learning: rounds of all clients as one compiled program (``rounds``),
personalization by local training, fine-tuning and optimal local/global mixing (``personalize``),
prompt portfolios over a frozen feature extractor (``portfolio``), Grimberg et al.'s
mean-estimation check of the mixing theory (``theory``) and the experiment behind
``feasjax federated`` (``experiment``).
"""
from feasjax.federated.rounds import FederatedState
from feasjax.federated.rounds import Federated
from feasjax.federated.rounds import client_update
from feasjax.federated.rounds import federated_averaging
from feasjax.federated.personalize import train_clients
from feasjax.federated.personalize import client_metrics
from feasjax.federated.personalize import held_out_split
from feasjax.federated.personalize import mix_clients
from feasjax.federated.personalize import alpha_curve
from feasjax.federated.personalize import select_alpha
from feasjax.federated.portfolio import random_features
from feasjax.federated.portfolio import prompt_logits
from feasjax.federated.portfolio import portfolio_params
from feasjax.federated.portfolio import portfolio_prompts
from feasjax.federated.portfolio import portfolio_loss
from feasjax.federated.theory import MeanEstimation
from feasjax.federated.theory import mean_estimation
from feasjax.federated.experiment import METHODS
from feasjax.federated.experiment import FederatedConfig
from feasjax.federated.experiment import run_federated

__all__ = [
    "alpha_curve",
    "client_metrics",
    "client_update",
    "Federated",
    "federated_averaging",
    "FederatedConfig",
    "FederatedState",
    "held_out_split",
    "mean_estimation",
    "MeanEstimation",
    "METHODS",
    "mix_clients",
    "portfolio_loss",
    "portfolio_params",
    "portfolio_prompts",
    "prompt_logits",
    "random_features",
    "run_federated",
    "select_alpha",
    "train_clients",
]
