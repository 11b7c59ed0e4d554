"""Averaging of parameters and multipliers: averagers (``ema``, ``polyak``,
``tail_polyak``, ``lawa``, ``swa``) in ``averagers``, the optimizer wrapper ``averaged`` that keeps
the average in the optimizer state and its accessor ``averaged_params`` in ``wrappers``, per-row
averages of indexed (per-sample) states in ``indexed``, the SWA learning-rate schedule in
``schedules`` and optimal local/global model mixing (Grimberg et al. 2021) in ``mixing``.
"""
from feasjax._exports import module_attributes
from feasjax.averaging.averagers import Averager
from feasjax.averaging.averagers import polyak
from feasjax.averaging.averagers import tail_polyak
from feasjax.averaging.averagers import swa
from feasjax.averaging.averagers import ema
from feasjax.averaging.averagers import lawa
from feasjax.averaging.wrappers import AveragedState
from feasjax.averaging.wrappers import averaged
from feasjax.averaging.wrappers import find_averaged_states
from feasjax.averaging.wrappers import averaged_params
from feasjax.averaging.indexed import indexed_averaged
from feasjax.averaging.schedules import swa_schedule
from feasjax.averaging.mixing import mixing_mse
from feasjax.averaging.mixing import optimal_mixing_alpha
from feasjax.averaging.mixing import mixing_helps
from feasjax.averaging.mixing import estimate_mixing_alpha
from feasjax.averaging.mixing import mix

__all__ = [
    "averaged",
    "averaged_params",
    "AveragedState",
    "Averager",
    "ema",
    "estimate_mixing_alpha",
    "find_averaged_states",
    "indexed_averaged",
    "lawa",
    "mix",
    "mixing_helps",
    "mixing_mse",
    "optimal_mixing_alpha",
    "polyak",
    "swa",
    "swa_schedule",
    "tail_polyak",
]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = {
    "WARMUPS": "feasjax.averaging.averagers",
    "WindowLeaf": "feasjax.averaging.averagers",
}

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
