"""Training: the engine :func:`train` (compiled epochs, progress, history, checkpoints with exact
resume, the mesh and sweeps), the producers of its steps, Orbax full-state checkpoints, the
per-epoch progress and the 0.1 epoch functions (``epoch_fn``, ``chunk_fn``, ``train_resumable``).
"""
from feasjax._exports import by_name, module_attributes
from feasjax.training.checkpoint import (Restored, check_compatible, checkpoint_manager,
                                         restore_checkpoint, save_checkpoint)
from feasjax.training.engine import train
from feasjax.training.loop import EpochInfo, chunk_fn, epoch_fn
from feasjax.training.programs import epoch_indices
from feasjax.training.progress import Progress, progress_reporter
from feasjax.training.resume import train_resumable
from feasjax.training.steps import nnx_step, nnx_update, solver_step
from feasjax.training.tally import History

__all__ = ["check_compatible", "checkpoint_manager", "chunk_fn", "epoch_fn", "epoch_indices",
           "EpochInfo", "History", "Progress", "progress_reporter", "restore_checkpoint",
           "Restored", "save_checkpoint", "train", "solver_step", "nnx_step", "nnx_update",
           "train_resumable"]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = by_name({
    "feasjax.training.programs": ("check_state_fits_data", "num_steps", "unalias"),
    "feasjax.training.run_checkpoints": ("data_fingerprint",),
    "feasjax.training.loop": ("raise_on_skipped_step",),
})

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
