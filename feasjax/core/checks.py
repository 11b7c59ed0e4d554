"""Input checks shared by every public entry point: concrete values raise ``ValueError`` or
``TypeError`` naming the argument; inside ``jit`` the step skips (and counts) a bad step instead.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__: list[str] = []  # helpers of the core only: import them from here


def is_concrete(x: Any) -> bool:
    """Whether ``x`` holds concrete values (not a tracer inside ``jit``/``vmap``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless the static ``value`` is finite and ``> 0`` (``>= 0``)."""
    if not is_concrete(value):
        return
    bound, values = (">= 0" if allow_zero else "> 0"), np.asarray(value)
    if isinstance(value, (bool, np.bool_)) or not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"{name} must be a finite number {bound}, got {name}={value!r}")
    if not (np.all(np.isfinite(values)) and np.all(values >= 0 if allow_zero else values > 0)):
        raise ValueError(f"{name} must be finite and {bound}, got {name}={value!r}")


def check_count(value: Any, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= 1``; floats and bools raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= 1, got {name}={value!r} "
                        f"({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {name}={value!r}")
    return int(value)


def check_unit_interval(value: float, name: str) -> None:
    """Raise ``ValueError`` unless the static ``value`` is in ``[0, 1)``; tracers pass."""
    if is_concrete(value) and not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {name}={value!r}")


def leading_size(tree: Any, name: str) -> int | None:
    """The common leading-axis size of all leaves of ``tree`` (``None`` if it has no leaves)."""
    leaves = jax.tree.leaves(tree)
    if any(jnp.ndim(leaf) == 0 for leaf in leaves):
        raise ValueError(f"{name} must have a leading per-sample axis, got a scalar leaf")
    sizes = {jnp.shape(leaf)[0] for leaf in leaves}
    if len(sizes) > 1:
        raise ValueError(f"{name} leaves must share one leading axis size, got {sorted(sizes)}")
    return sizes.pop() if sizes else None


def check_leading_size(tree: Any, size: int, name: str) -> None:
    """Raise ``ValueError`` unless every leaf of ``tree`` has leading axis ``size``."""
    actual = leading_size(tree, name)
    if actual is not None and actual != size:
        raise ValueError(f"{name} must have leading axis of size {size} (one row per index), "
                         f"got {actual}")


def check_indices(indices: Any, num_rows: int | None, name: str = "indices") -> jax.Array:
    """``indices`` as a ``jax.Array`` once checked to be 1-D integers, in ``[0, num_rows)``
    when concrete (inside ``jit`` only dtype and rank are checked)."""
    dtype = getattr(indices, "dtype", None) or np.asarray(indices).dtype
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {dtype}")
    indices = jnp.asarray(indices)
    if indices.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one index per batch row), got shape {indices.shape}")
    if num_rows is not None and is_concrete(indices) and indices.size:
        values = np.asarray(indices)
        bad = values[(values < 0) | (values >= num_rows)]
        if bad.size:
            raise ValueError(f"{name} must lie in [0, {num_rows}), got out-of-range values "
                             f"{bad[:10].tolist()}")
    return indices


def check_finite(x: Any, name: str) -> None:
    """Raise ``ValueError`` if concrete ``x`` holds NaN or inf, naming their positions."""
    if not is_concrete(x):
        return
    values = np.asarray(x)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{name} must be finite, got non-finite values at positions "
                         f"{bad[:10].tolist()}")


def check_finite_tree(tree: Any, name: str) -> None:
    """Raise ``ValueError`` if a concrete leaf of ``tree`` holds NaN or inf, naming the leaf."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if is_concrete(leaf) and jnp.issubdtype(jnp.result_type(leaf), jnp.inexact) and \
                not bool(jnp.all(jnp.isfinite(leaf))):
            raise ValueError(f"{name} must be finite, got non-finite values in "
                             f"{jax.tree_util.keystr(path) or 'the leaf'}")
