"""Uncertainty quantification for averaged SGD: the multiplier bootstrap (``bootstrap``:
B reweighted chains and the main chain in one ``vmap`` inside one ``lax.scan``) and the
confidence sets read off its replicas (``confidence``: coordinate intervals, balls, intervals for
linear functionals).
"""
from feasjax._exports import module_attributes
from feasjax.uncertainty.bootstrap import MULTIPLIERS
from feasjax.uncertainty.bootstrap import ChainState
from feasjax.uncertainty.bootstrap import BootstrapState
from feasjax.uncertainty.bootstrap import MultiplierBootstrap
from feasjax.uncertainty.bootstrap import power_decay_schedule
from feasjax.uncertainty.bootstrap import multiplier_bootstrap
from feasjax.uncertainty.bootstrap import bootstrap_estimates
from feasjax.uncertainty.confidence import METHODS
from feasjax.uncertainty.confidence import Interval
from feasjax.uncertainty.confidence import ConfidenceBall
from feasjax.uncertainty.confidence import coordinate_intervals
from feasjax.uncertainty.confidence import confidence_ball
from feasjax.uncertainty.confidence import linear_functional_interval

__all__ = [
    "bootstrap_estimates",
    "BootstrapState",
    "ChainState",
    "confidence_ball",
    "ConfidenceBall",
    "coordinate_intervals",
    "Interval",
    "linear_functional_interval",
    "METHODS",
    "multiplier_bootstrap",
    "MultiplierBootstrap",
    "MULTIPLIERS",
    "power_decay_schedule",
]

__getattr__, __dir__ = module_attributes(__name__, __all__)
