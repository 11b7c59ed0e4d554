"""Datasets: the bundled scikit-learn datasets and the ``Dataset`` record (``datasets``),
loading and checking the user's own ``.npz``/``.npy`` arrays (``user_data``), datasets split
over federated clients with label skew and padding masks (``federated``), and data with
groups: the spurious-digits benchmark and the class-conditional Gaussian model (``spurious``),
a tabular benchmark with a spurious feature (``tabular``), a Grain pipeline of minibatches
that carry their dataset rows (``pipeline``), and a generated preference task for language models
(``preference``: sorting, correct vs corrupted continuations).
"""
from typing import TYPE_CHECKING

from feasjax._exports import by_name, module_attributes

if TYPE_CHECKING:  # for type checkers and the API reference (griffe); at run time: __getattr__
    from feasjax.data.datasets import (TASKS, DATASETS, Dataset, validate_arrays, from_arrays,
                                       load_dataset)
    from feasjax.data.user_data import load_arrays, user_dataset
    from feasjax.data.federated import (FederatedData, dirichlet_partition, federated_dataset,
                                        from_client_arrays, pad_clients)
    from feasjax.data.spurious import GroupDataset, spurious_digits, group_dataset, gaussian_classes
    from feasjax.data.pipeline import Pipeline, RandomCropFlip
    from feasjax.data.tabular import spurious_tabular
    from feasjax.data.preference import PreferenceTask, sorting_preferences

__all__ = ["Dataset", "gaussian_classes", "group_dataset", "GroupDataset", "DATASETS",
           "dirichlet_partition", "FederatedData", "federated_dataset", "from_arrays",
           "from_client_arrays", "load_arrays", "load_dataset", "pad_clients", "Pipeline",
           "PreferenceTask", "RandomCropFlip", "sorting_preferences", "spurious_digits",
           "spurious_tabular", "TASKS", "user_dataset", "validate_arrays"]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = by_name({
    "feasjax.data.user_data": ("name_of",),
})

# Imported on first use: ``feasjax.data.datasets`` (numpy only) does not pull in JAX through
# ``spurious``, so the command line lists the bundled datasets without importing JAX.
__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED, lazy={
    "feasjax.data.datasets": (
        "TASKS", "DATASETS", "Dataset", "validate_arrays", "from_arrays", "load_dataset"),
    "feasjax.data.user_data": ("load_arrays", "user_dataset"),
    "feasjax.data.federated": (
        "FederatedData", "dirichlet_partition", "federated_dataset", "from_client_arrays",
        "pad_clients"),
    "feasjax.data.spurious": (
        "GroupDataset", "spurious_digits", "group_dataset", "gaussian_classes"),
    "feasjax.data.pipeline": ("Pipeline", "RandomCropFlip"),
    "feasjax.data.tabular": ("spurious_tabular",),
    "feasjax.data.preference": ("PreferenceTask", "sorting_preferences"),
})
