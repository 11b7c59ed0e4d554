"""Datasets: the bundled scikit-learn datasets and the ``Dataset`` record (``datasets``),
loading and checking the user's own ``.npz``/``.npy`` arrays (``user_data``), and data with
groups: the spurious-digits benchmark and the class-conditional Gaussian model (``spurious``).
"""
from feasjax.data.datasets import TASKS
from feasjax.data.datasets import DATASETS
from feasjax.data.datasets import Dataset
from feasjax.data.datasets import validate_arrays
from feasjax.data.datasets import from_arrays
from feasjax.data.datasets import load_dataset
from feasjax.data.user_data import load_arrays
from feasjax.data.user_data import user_dataset
from feasjax.data.user_data import name_of
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
    "from_arrays",
    "load_arrays",
    "load_dataset",
    "name_of",
    "spurious_digits",
    "TASKS",
    "user_dataset",
    "validate_arrays",
]
