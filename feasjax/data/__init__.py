"""Datasets: the bundled scikit-learn datasets and the ``Dataset`` record (``datasets``),
loading and checking the user's own ``.npz``/``.npy`` arrays (``user_data``), datasets split
over federated clients with label skew and padding masks (``federated``), and data with
groups: the spurious-digits benchmark and the class-conditional Gaussian model (``spurious``).
"""
from typing import TYPE_CHECKING

from feasjax._exports import module_attributes

if TYPE_CHECKING:  # for type checkers and the API reference (griffe); at run time: __getattr__
    from feasjax.data.datasets import TASKS
    from feasjax.data.datasets import DATASETS
    from feasjax.data.datasets import Dataset
    from feasjax.data.datasets import validate_arrays
    from feasjax.data.datasets import from_arrays
    from feasjax.data.datasets import load_dataset
    from feasjax.data.user_data import load_arrays
    from feasjax.data.user_data import user_dataset
    from feasjax.data.federated import FederatedData
    from feasjax.data.federated import dirichlet_partition
    from feasjax.data.federated import federated_dataset
    from feasjax.data.federated import from_client_arrays
    from feasjax.data.federated import pad_clients
    from feasjax.data.spurious import GroupDataset
    from feasjax.data.spurious import spurious_digits
    from feasjax.data.spurious import group_dataset
    from feasjax.data.spurious import gaussian_classes

__all__ = [
    "Dataset",
    "gaussian_classes",
    "group_dataset",
    "GroupDataset",
    "DATASETS",
    "dirichlet_partition",
    "FederatedData",
    "federated_dataset",
    "from_arrays",
    "from_client_arrays",
    "load_arrays",
    "load_dataset",
    "pad_clients",
    "spurious_digits",
    "TASKS",
    "user_dataset",
    "validate_arrays",
]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = {
    "name_of": "feasjax.data.user_data",
}

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
})
