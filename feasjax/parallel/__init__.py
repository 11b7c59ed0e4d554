"""Data parallelism and sweeps: ``mesh``, ``layout``, ``sweeps``, multi-host ``distributed``,
``pmap`` (compatibility) and the local launcher (``python -m feasjax.parallel.launch``)."""
from feasjax._exports import by_name, module_attributes
from feasjax.parallel.mesh import (DATA_AXIS, data_mesh, state_partition_specs, shard_data,
                                   replicate, init_sharded, local_epoch_fn, data_parallel_epoch)
from feasjax.parallel.layout import (ShardLayout, shard_layout, sample_mask, pad_samples,
                                     unpad_samples, global_indices)
from feasjax.parallel.sweeps import (SweepHistory, stack_runs, unstack_runs, sweep_epoch,
                                     train_sweep, summarize_runs)
from feasjax.parallel.distributed import (ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID,
                                          initialize, process_sample_range, gather,
                                          global_loss_summary)
from feasjax.parallel.pmap import pmap_epoch

__all__ = ["DATA_AXIS", "data_mesh", "data_parallel_epoch", "ENV_COORDINATOR", "ENV_NUM_PROCESSES",
           "ENV_PROCESS_ID", "gather", "global_indices", "global_loss_summary", "init_sharded",
           "initialize", "local_epoch_fn", "pad_samples", "pmap_epoch", "process_sample_range",
           "replicate", "sample_mask", "shard_data", "shard_layout", "ShardLayout", "stack_runs",
           "state_partition_specs", "summarize_runs", "sweep_epoch", "SweepHistory", "train_sweep",
           "unpad_samples", "unstack_runs"]

# No longer exported; until 0.3 they resolve with a DeprecationWarning naming their module.
_DEPRECATED = by_name({
    "feasjax.parallel.distributed": ("check_process_args",),
    "feasjax.parallel.layout": ("padded_positions", "shard_counts", "shard_starts"),
    "feasjax.parallel.mesh": ("process_shards",),
})

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
