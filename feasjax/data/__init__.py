"""Datasets: bundled (``datasets``), the user's own files (``user_data``), split over federated
clients (``federated``), with groups (``spurious``, ``tabular``), a Grain pipeline of minibatches
that carry their rows (``pipeline``) and a generated preference task (``preference``)."""
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

# Helpers no longer exported here: until 0.3 they resolve with a DeprecationWarning.
_DEPRECATED = by_name({"feasjax.data.user_data": ("name_of",)})

# Imported on first use, so the command line lists the bundled datasets without importing JAX.
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
