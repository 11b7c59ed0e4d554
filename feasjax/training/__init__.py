"""Training: one engine for every step (``engine``: :func:`train` with compiled epochs,
progress, history, checkpoints with exact resume, the mesh and sweeps), the producers of steps
(``steps``: a :class:`feasjax.PrimalDual`, an ``nnx.Optimizer`` train step), Orbax full-state
checkpoints (``checkpoint``, ``run_checkpoints``), the per-epoch progress (``progress``) and the
0.1 epoch functions (``loop``: ``epoch_fn``, ``chunk_fn``; ``resume``: ``train_resumable``).
"""
from feasjax.training.loop import EpochInfo
from feasjax.training.loop import History
from feasjax.training.loop import epoch_indices
from feasjax.training.loop import epoch_fn
from feasjax.training.loop import chunk_fn
from feasjax.training.engine import train
from feasjax.training.engine import multiplier_leaves
from feasjax.training.steps import solver_step
from feasjax.training.steps import nnx_step
from feasjax.training.steps import nnx_update
from feasjax.training.loop import num_steps
from feasjax.training.loop import unalias
from feasjax.training.loop import raise_on_skipped_step
from feasjax.training.loop import check_state_fits_data
from feasjax.training.progress import Progress
from feasjax.training.progress import progress_reporter
from feasjax.training.resume import train_resumable
from feasjax.training.resume import data_fingerprint
from feasjax.training.checkpoint import Restored
from feasjax.training.checkpoint import checkpoint_manager
from feasjax.training.checkpoint import save_checkpoint
from feasjax.training.checkpoint import check_compatible
from feasjax.training.checkpoint import restore_checkpoint

__all__ = [
    "check_compatible",
    "check_state_fits_data",
    "checkpoint_manager",
    "chunk_fn",
    "data_fingerprint",
    "epoch_fn",
    "epoch_indices",
    "EpochInfo",
    "History",
    "num_steps",
    "Progress",
    "progress_reporter",
    "raise_on_skipped_step",
    "restore_checkpoint",
    "Restored",
    "save_checkpoint",
    "train",
    "solver_step",
    "nnx_step",
    "nnx_update",
    "multiplier_leaves",
    "train_resumable",
    "unalias",
]
