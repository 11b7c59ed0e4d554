"""Averaging of parameters and multipliers: averagers (``averagers``), the optimizer wrapper
``averaged`` and its accessor ``averaged_params`` (``wrappers``), per-row averages (``indexed``),
the SWA schedule (``schedules``) and optimal local/global model mixing (``mixing``).
"""
from feasjax._exports import by_name, module_attributes
from feasjax.averaging.averagers import Averager, polyak, tail_polyak, swa, ema, lawa
from feasjax.averaging.wrappers import (AveragedState, averaged, find_averaged_states,
                                        averaged_params)
from feasjax.averaging.indexed import indexed_averaged
from feasjax.averaging.schedules import swa_schedule
from feasjax.averaging.mixing import (mixing_mse, optimal_mixing_alpha, mixing_helps,
                                      estimate_mixing_alpha, mix)

__all__ = ["averaged", "averaged_params", "AveragedState", "Averager", "ema",
           "estimate_mixing_alpha", "find_averaged_states", "indexed_averaged", "lawa", "mix",
           "mixing_helps", "mixing_mse", "optimal_mixing_alpha", "polyak", "swa", "swa_schedule",
           "tail_polyak"]

# No longer exported; until 0.3 they resolve with a DeprecationWarning naming their module.
_DEPRECATED = by_name({
    "feasjax.averaging.averagers": ("WARMUPS", "WindowLeaf"),
})

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
