"""Training: one engine for every step (``engine``: :func:`train` with compiled epochs,
progress, history, checkpoints with exact resume, the mesh and sweeps), the producers of steps
(``steps``: a :class:`feasjax.PrimalDual`, an ``nnx.Optimizer`` train step), Orbax full-state
checkpoints (``checkpoint``, ``run_checkpoints``), the per-epoch progress (``progress``) and the
0.1 epoch functions (``loop``: ``epoch_fn``, ``chunk_fn``; ``resume``: ``train_resumable``).
"""
from feasjax._exports import module_attributes
from feasjax.training.loop import EpochInfo
from feasjax.training.tally import History
from feasjax.training.programs import epoch_indices
from feasjax.training.loop import epoch_fn
from feasjax.training.loop import chunk_fn
from feasjax.training.engine import train
from feasjax.training.steps import solver_step
from feasjax.training.steps import nnx_step
from feasjax.training.steps import nnx_update
from feasjax.training.progress import Progress
from feasjax.training.progress import progress_reporter
from feasjax.training.resume import train_resumable
from feasjax.training.checkpoint import Restored
from feasjax.training.checkpoint import checkpoint_manager
from feasjax.training.checkpoint import save_checkpoint
from feasjax.training.checkpoint import check_compatible
from feasjax.training.checkpoint import restore_checkpoint

__all__ = [
    "check_compatible",
    "checkpoint_manager",
    "chunk_fn",
    "epoch_fn",
    "epoch_indices",
    "EpochInfo",
    "History",
    "Progress",
    "progress_reporter",
    "restore_checkpoint",
    "Restored",
    "save_checkpoint",
    "train",
    "solver_step",
    "nnx_step",
    "nnx_update",
    "train_resumable",
]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = {
    "check_state_fits_data": "feasjax.training.programs",
    "data_fingerprint": "feasjax.training.run_checkpoints",
    "num_steps": "feasjax.training.programs",
    "raise_on_skipped_step": "feasjax.training.loop",
    "unalias": "feasjax.training.programs",
}

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
