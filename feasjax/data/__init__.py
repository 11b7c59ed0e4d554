"""Datasets: the bundled scikit-learn datasets and the ``Dataset`` record (``datasets``), and
loading and checking the user's own ``.npz``/``.npy`` arrays (``user_data``).
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

__all__ = [
    "Dataset",
    "DATASETS",
    "from_arrays",
    "load_arrays",
    "load_dataset",
    "name_of",
    "TASKS",
    "user_dataset",
    "validate_arrays",
]
