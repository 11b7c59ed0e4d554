"""feasjax: sample-centric learning in JAX."""
from feasjax.weighting import weighted_sum

__version__ = "0.1.0"

__all__ = [
    "weighted_sum",
]
