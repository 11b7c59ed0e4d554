"""Training loops: one compiled, donated ``lax.scan`` per epoch (``loop``: ``train``,
``epoch_fn``, ``epoch_indices``), the checkpointed, exactly resumable loop (``resume``) and Orbax
full-state checkpoints (``checkpoint``), and the per-epoch progress they show (``progress``).
"""
from feasjax._exports import module_attributes
from feasjax.training.loop import EpochInfo
from feasjax.training.loop import History
from feasjax.training.loop import epoch_indices
from feasjax.training.loop import epoch_fn
from feasjax.training.loop import chunk_fn
from feasjax.training.loop import train
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
    "train_resumable",
]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = {
    "check_state_fits_data": "feasjax.training.loop",
    "data_fingerprint": "feasjax.training.resume",
    "num_steps": "feasjax.training.loop",
    "raise_on_skipped_step": "feasjax.training.loop",
    "unalias": "feasjax.training.loop",
}

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
