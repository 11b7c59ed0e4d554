"""How N samples (and their multipliers) are laid out over D devices, padding included.

Device ``d`` owns a contiguous block of ``N // D + (d < N % D)`` samples stored in ``local_size
= ceil(N / D)`` rows, real samples first; padding rows are never sampled and never count.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["ShardLayout", "shard_layout", "sample_mask", "pad_samples", "unpad_samples",
           "global_indices"]


class ShardLayout(NamedTuple):
    """Static description of the sample layout (Python ints: configuration, not state)."""

    num_samples: int  # N, real samples
    num_shards: int  # D, devices along the data axis
    local_size: int  # rows per device, ceil(N / D), padding included

    @property
    def padded_size(self) -> int:
        """``D * local_size``, the leading size of the sharded arrays."""
        return self.num_shards * self.local_size

    @property
    def min_count(self) -> int:
        """``N // D``: real samples in the smallest block (bounds the local batch size)."""
        return self.num_samples // self.num_shards


def shard_layout(num_samples: int, num_shards: int) -> ShardLayout:
    """The balanced :class:`ShardLayout` of ``num_samples >= num_shards >= 1`` samples.

    Example:
      >>> from feasjax.parallel import shard_layout
      >>> layout = shard_layout(10, 4)
      >>> layout.local_size, layout.padded_size
      (3, 12)
    """
    for value, name in ((num_samples, "num_samples"), (num_shards, "num_shards")):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
    if num_samples < num_shards:
        raise ValueError(f"num_samples must be >= num_shards (every device needs a sample), got "
                         f"{num_samples=} and {num_shards=}")
    return ShardLayout(int(num_samples), int(num_shards), -(-int(num_samples) // int(num_shards)))


def shard_counts(layout: ShardLayout) -> np.ndarray:
    """Real samples per device, ``N // D + (d < N % D)``, shape ``(D,)``."""
    base, rem = divmod(layout.num_samples, layout.num_shards)
    return base + (np.arange(layout.num_shards) < rem).astype(np.int64)


def shard_starts(layout: ShardLayout) -> np.ndarray:
    """First sample id of each device's block, shape ``(D,)``."""
    return np.concatenate([[0], np.cumsum(shard_counts(layout))[:-1]]).astype(np.int64)


def padded_positions(layout: ShardLayout, shards: range | None = None) -> np.ndarray:
    """Row of each real sample of ``shards`` (default: all) in their padded layout."""
    shards = range(layout.num_shards) if shards is None else shards
    counts = shard_counts(layout)[shards.start:shards.stop]
    return np.flatnonzero(np.arange(layout.local_size) < counts[:, None])


def sample_mask(layout: ShardLayout) -> np.ndarray:
    """``True`` at real samples, ``False`` at padding, shape ``(D * local_size,)``.

    Example:
      >>> from feasjax.parallel import sample_mask, shard_layout
      >>> sample_mask(shard_layout(5, 2)).tolist()
      [True, True, True, True, True, False]
    """
    return (np.arange(layout.local_size) < shard_counts(layout)[:, None]).ravel()


def pad_samples(tree: Any, layout: ShardLayout, shards: range | None = None) -> Any:
    """Host arrays in sample order -> the padded layout of ``shards`` (default: all); padding
    rows repeat their block's first sample (valid model inputs, never sampled or counted).

    Args:
      tree: pytree of arrays whose leading axis holds the samples of ``shards``, in order.
      layout: the :class:`ShardLayout`.
      shards: the contiguous devices whose samples ``tree`` holds (a process's devices).

    Returns:
      A pytree of numpy arrays with leading axis ``len(shards) * local_size``.

    Example:
      >>> import numpy as np
      >>> from feasjax.parallel import pad_samples, shard_layout
      >>> pad_samples(np.arange(5), shard_layout(5, 2)).tolist()
      [0, 1, 2, 3, 4, 3]
    """
    shards = range(layout.num_shards) if shards is None else shards
    counts = shard_counts(layout)[shards.start:shards.stop]
    # Row j of a block holds the block's sample j, or its first sample where j is padding.
    j = np.arange(layout.local_size)
    rows = ((np.cumsum(counts) - counts)[:, None] + np.where(j < counts[:, None], j, 0)).ravel()

    def pad_leaf(leaf):
        leaf = np.asarray(leaf)
        if leaf.shape[:1] != (counts.sum(),):
            raise ValueError(f"data must have {counts.sum()} rows (the samples of devices "
                             f"{shards.start}..{shards.stop - 1}), got shape {leaf.shape}")
        return leaf[rows]

    return jax.tree.map(pad_leaf, tree)


def unpad_samples(tree: Any, layout: ShardLayout) -> Any:
    """Padded layout (host-readable arrays, leading axis ``D * local_size``) -> sample order.

    Example:
      >>> import numpy as np
      >>> from feasjax.parallel import unpad_samples, shard_layout
      >>> unpad_samples(np.array([0, 1, 2, 3, 4, -1]), shard_layout(5, 2)).tolist()
      [0, 1, 2, 3, 4]
    """
    positions = padded_positions(layout)
    return jax.tree.map(lambda leaf: np.asarray(leaf)[positions], tree)


def global_indices(local_indices: Any, layout: ShardLayout) -> np.ndarray:
    """Map recorded minibatch indices (``D`` blocks of ``B / D`` **local** indices along the
    last axis, block ``d`` from device ``d``) to sample ids ``start_d + local``.

    Args:
      local_indices: integer array ``(..., B)`` (e.g. ``EpochInfo.indices``).
      layout: the :class:`ShardLayout`.

    Returns:
      Numpy int64 array of the same shape holding sample ids in ``[0, N)``.

    Example:
      >>> import numpy as np
      >>> from feasjax.parallel import global_indices, shard_layout
      >>> global_indices(np.array([[0, 1, 0, 1]]), shard_layout(7, 2)).tolist()
      [[0, 1, 4, 5]]
    """
    local = np.asarray(local_indices)
    batch = local.shape[-1]
    if batch % layout.num_shards:
        raise ValueError(f"the last axis ({batch}) must hold num_shards={layout.num_shards} "
                         f"equal blocks of local indices")
    device = np.arange(batch) // (batch // layout.num_shards)
    return shard_starts(layout)[device] + local.astype(np.int64)
