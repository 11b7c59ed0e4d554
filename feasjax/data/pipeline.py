"""A Grain pipeline for data beyond memory whose minibatches carry their dataset rows (the
multipliers' indices). Batch ``s`` of epoch ``e`` is a pure function of the seed, ``e`` and
``s`` (augmentation included), so the position in the run is the whole state and a resume
continues the same data order; ``fj.train(step, carry, pipeline, ...)`` runs one.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import numpy as np

__all__ = ["Pipeline", "RandomCropFlip"]


class RandomCropFlip:
    """Random crop after zero padding and a random horizontal flip of a batch of images.

    A Grain ``RandomMap``-style callable ``(batch, rng) -> batch`` on ``batch[key]`` of shape
    ``(B, H, W, C)``: each image is padded by ``pad`` pixels, cropped back to ``H x W`` at a
    random offset and flipped left-right with probability 1/2.

    Example:
      >>> import numpy as np
      >>> from feasjax.data import RandomCropFlip
      >>> batch = {"x": np.ones((2, 4, 4, 1), np.float32)}
      >>> RandomCropFlip(pad=1)(batch, np.random.default_rng(0))["x"].shape
      (2, 4, 4, 1)
    """

    def __init__(self, pad: int = 4, key: str = "x") -> None:
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise ValueError(f"pad must be an int >= 0, got {pad=}")
        self.pad, self.key = pad, key

    def __call__(self, batch: dict, rng: np.random.Generator) -> dict:
        images = np.asarray(batch[self.key])
        b, h, w = images.shape[:3]
        p = self.pad
        padded = np.pad(images, [(0, 0), (p, p), (p, p)] + [(0, 0)] * (images.ndim - 3))
        dy, dx = rng.integers(0, 2 * p + 1, size=(2, b))
        rows = dy[:, None] + np.arange(h)[None, :]
        cols = dx[:, None] + np.arange(w)[None, :]
        flip = rng.random(b) < 0.5
        cols = np.where(flip[:, None], cols[:, ::-1], cols)
        out = padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]
        return {**batch, self.key: out}


class Pipeline:
    """Per-epoch shuffled minibatches ``{"index": (B,) int32 global rows, **fields}``.

    With several processes each reads only its contiguous block of rows; indices stay global.

    Args:
      source: a dict of arrays with a leading row axis (numpy arrays or ``.npy`` memmaps), or
        any random-access source (``len(source)``, ``source[i]`` -> a dict of arrays: an
        ArrayRecord or TFDS ``data_source``).
      batch_size: rows per minibatch *of this process* (the global batch is
        ``batch_size * process_count``); an epoch drops the last incomplete batch.
      seed: the shuffling (and augmentation) seed.
      transform: optional ``(batch, rng) -> batch`` applied to every batch with a generator
        seeded by ``seed`` and the batch's position (e.g. :class:`RandomCropFlip`).
      process_index, process_count: this process's contiguous block of rows (default:
        ``jax.process_index()`` of ``jax.process_count()``).

    Example:
      >>> import numpy as np
      >>> from feasjax.data import Pipeline
      >>> rows = {"x": np.arange(10.0)[:, None], "y": np.arange(10)}
      >>> pipe = Pipeline(rows, batch_size=4, seed=0)
      >>> batch = pipe.epoch(0)[0]
      >>> pipe.steps_per_epoch, bool((batch["x"][:, 0] == batch["index"]).all())
      (2, True)
    """

    def __init__(self, source: Any, *, batch_size: int, seed: int = 0,
                 transform: Callable[[dict, np.random.Generator], dict] | None = None,
                 process_index: int | None = None, process_count: int | None = None) -> None:
        sizes = {len(v) for v in source.values()} if isinstance(source, dict) else {len(source)}
        if len(sizes) != 1:
            raise ValueError(f"source arrays must share their number of rows, got {sorted(sizes)}")
        self.source, self.num_samples = source, sizes.pop()
        count = jax.process_count() if process_count is None else process_count
        index = jax.process_index() if process_index is None else process_index
        if isinstance(count, bool) or not isinstance(count, int) or count < 1 or not (
                isinstance(index, int) and 0 <= index < count):
            raise ValueError(f"process_index must be an int in [0, process_count), got "
                             f"{process_index=} of {process_count=}")
        block = -(-self.num_samples // count)
        self.rows = (min(index * block, self.num_samples),
                     min((index + 1) * block, self.num_samples))
        local = self.rows[1] - self.rows[0]
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not (
                1 <= batch_size <= local):
            raise ValueError(f"batch_size must be an int in [1, {local}] (this process's "
                             f"rows), got {batch_size=}")
        self.batch_size, self.seed, self.transform = batch_size, int(seed), transform
        self.steps_per_epoch = local // batch_size

    def order(self, epoch: int) -> np.ndarray:
        """This process's global rows in epoch ``epoch``'s order (a permutation of its block)."""
        lo, hi = self.rows
        return lo + np.random.default_rng([self.seed, epoch]).permutation(hi - lo)

    def epoch(self, epoch: int) -> Any:
        """Epoch ``epoch`` as a Grain ``MapDataset`` of minibatches (random access)."""
        import grain

        order = self.order(epoch)
        b = self.batch_size
        batches = grain.MapDataset.range(self.steps_per_epoch).map(
            lambda s: self._read(order[s * b:(s + 1) * b]))
        if self.transform is not None:
            batches = batches.random_map(self.transform, seed=self.seed * 1_000_003 + epoch)
        return batches

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict]:
        """Minibatches ``start, start + 1, ...`` of epoch ``epoch``."""
        return map(self.epoch(epoch).__getitem__, range(start, self.steps_per_epoch))

    def _read(self, rows: np.ndarray) -> dict:
        if isinstance(self.source, dict):
            batch = {k: _gather(v, rows) for k, v in self.source.items()}
        else:  # a Grain source: one example at a time
            examples = [self.source[int(r)] for r in rows]
            batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
        return {**batch, "index": rows.astype(np.int32)}

    def fingerprint(self) -> dict:
        """What a resume must match: the sizes, the seed and the process's block of rows."""
        return {"num_samples": self.num_samples, "batch_size": self.batch_size,
                "seed": self.seed, "rows": list(self.rows),
                "transform": type(self.transform).__name__ if self.transform else None}


def _gather(array: Any, rows: np.ndarray) -> np.ndarray:
    if isinstance(array, np.memmap):  # read the file in order, then put the rows in theirs
        order = np.argsort(rows)
        out = np.empty((len(rows), *array.shape[1:]), array.dtype)
        out[order] = array[rows[order]]
        return out
    return array[rows]
