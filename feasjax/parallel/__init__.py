"""Data parallelism and sweeps: FL on a device mesh with sample-sharded multipliers
(``mesh``), the layout of samples over shards (``layout``), vmapped multi-seed sweeps
(``sweeps``), multi-host start-up, loading and exact global metrics (``distributed``), the
``jax.pmap`` compatibility path (``pmap``) and the local multi-process launcher
(``python -m feasjax.parallel.launch``; its functions are reached as ``feasjax.parallel.launch``).
"""
from feasjax._exports import module_attributes
from feasjax.parallel.mesh import DATA_AXIS
from feasjax.parallel.mesh import data_mesh
from feasjax.parallel.mesh import state_partition_specs
from feasjax.parallel.mesh import shard_data
from feasjax.parallel.mesh import replicate
from feasjax.parallel.mesh import init_sharded
from feasjax.parallel.mesh import local_epoch_fn
from feasjax.parallel.mesh import data_parallel_epoch
from feasjax.parallel.layout import ShardLayout
from feasjax.parallel.layout import shard_layout
from feasjax.parallel.layout import sample_mask
from feasjax.parallel.layout import pad_samples
from feasjax.parallel.layout import unpad_samples
from feasjax.parallel.layout import global_indices
from feasjax.parallel.sweeps import SweepHistory
from feasjax.parallel.sweeps import stack_runs
from feasjax.parallel.sweeps import unstack_runs
from feasjax.parallel.sweeps import sweep_epoch
from feasjax.parallel.sweeps import train_sweep
from feasjax.parallel.sweeps import summarize_runs
from feasjax.parallel.distributed import ENV_COORDINATOR
from feasjax.parallel.distributed import ENV_NUM_PROCESSES
from feasjax.parallel.distributed import ENV_PROCESS_ID
from feasjax.parallel.distributed import initialize
from feasjax.parallel.distributed import process_sample_range
from feasjax.parallel.distributed import gather
from feasjax.parallel.distributed import global_loss_summary
from feasjax.parallel.pmap import pmap_epoch

__all__ = [
    "DATA_AXIS",
    "data_mesh",
    "data_parallel_epoch",
    "ENV_COORDINATOR",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "gather",
    "global_indices",
    "global_loss_summary",
    "init_sharded",
    "initialize",
    "local_epoch_fn",
    "pad_samples",
    "pmap_epoch",
    "process_sample_range",
    "replicate",
    "sample_mask",
    "shard_data",
    "shard_layout",
    "ShardLayout",
    "stack_runs",
    "state_partition_specs",
    "summarize_runs",
    "sweep_epoch",
    "SweepHistory",
    "train_sweep",
    "unpad_samples",
    "unstack_runs",
]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = {
    "check_process_args": "feasjax.parallel.distributed",
    "padded_positions": "feasjax.parallel.layout",
    "process_shards": "feasjax.parallel.mesh",
    "shard_counts": "feasjax.parallel.layout",
    "shard_starts": "feasjax.parallel.layout",
}

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
