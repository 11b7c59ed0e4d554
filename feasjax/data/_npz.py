"""Reading an ``.npz`` that holds more arrays than ``feasjax train`` reads (splits, client ids)."""
from __future__ import annotations

import numpy as np

from feasjax.data.user_data import load_arrays


def read_npz(path: str, optional: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``x`` and ``y`` as :func:`feasjax.data.load_arrays` reads them, and every array of
    ``optional`` that the file holds (not validated)."""
    arrays = load_arrays(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays.update({k: npz[k] for k in optional if k in npz.files})
    return arrays
