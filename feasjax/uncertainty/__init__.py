"""Uncertainty quantification for averaged SGD: the multiplier bootstrap (``bootstrap``) and
the confidence sets read off its replicas (``confidence``)."""
from feasjax._exports import module_attributes
from feasjax.uncertainty.bootstrap import (MULTIPLIERS, ChainState, BootstrapState,
                                           MultiplierBootstrap, power_decay_schedule,
                                           multiplier_bootstrap, bootstrap_estimates)
from feasjax.uncertainty.confidence import (METHODS, Interval, ConfidenceBall, coordinate_intervals,
                                            confidence_ball, linear_functional_interval)

__all__ = ["bootstrap_estimates", "BootstrapState", "ChainState", "confidence_ball",
           "ConfidenceBall", "coordinate_intervals", "Interval", "linear_functional_interval",
           "METHODS", "multiplier_bootstrap", "MultiplierBootstrap", "MULTIPLIERS",
           "power_decay_schedule"]

__getattr__, __dir__ = module_attributes(__name__, __all__)
