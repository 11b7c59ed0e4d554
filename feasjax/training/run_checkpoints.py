"""The checkpoints of a :func:`feasjax.train` run (:class:`Checkpoints`). A resumed run ends
bit for bit where an uninterrupted one with the same ``checkpoint_every`` does: on the CPU, and
on GPUs/TPUs with deterministic kernels (``XLA_FLAGS=--xla_gpu_deterministic_ops=true``) and
the same device count and sharding.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from typing import Any, Callable

import jax
import numpy as np

from feasjax.training.checkpoint import (checkpoint_manager, leaves_by_path, restore_checkpoint,
                                         save_checkpoint, storable)
from feasjax.training.tally import History

__all__: list = []  # helpers of the engine

_META_KEYS = ("config", "epoch", "step_in_epoch", "global_step", "partial", "skipped",
              "history")  # what a resume reads


def _leaf_fingerprint(leaf: Any) -> dict:
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        # Spread over processes: each one would hash another part.
        return {"shape": list(leaf.shape), "dtype": str(leaf.dtype), "sha256": None}
    array = np.asarray(leaf)
    digest = hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8))  # no copy
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": digest.hexdigest()}


def data_fingerprint(data: Any) -> dict:
    """Shape, dtype and sha256 of the bytes of every leaf of ``data``, by path."""
    return {name or "data": _leaf_fingerprint(leaf) for name, leaf in leaves_by_path(data).items()}


def _short(field: str, value: Any) -> str:
    return f"{value[:12]}..." if field == "sha256" and isinstance(value, str) else str(value)


def _fingerprint_diffs(saved: dict | None, current: dict) -> list[str]:
    if saved is None:
        return ["data fingerprint: none saved (a checkpoint of an older feasjax)"]
    diffs = []
    for name in sorted(saved.keys() | current.keys()):
        s, c = saved.get(name), current.get(name)
        if s is None or c is None:
            diffs.append(f"data leaf {name!r} only {'now' if s is None else 'in the checkpoint'}")
        elif s != c:
            fields = [f"saved {k} {_short(k, s.get(k))}, now {_short(k, c.get(k))}"
                      for k in ("shape", "dtype", "sha256") if s.get(k) != c.get(k)]
            diffs.append(f"data fingerprint of {name!r} differs: {', '.join(fields)}")
    return diffs


def _check_config(saved: dict, current: dict, directory: str) -> None:
    diffs = _fingerprint_diffs(saved.get("data_fingerprint"), current["data_fingerprint"])
    diffs += [f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
              for k in sorted((saved.keys() | current.keys()) - {"data_fingerprint"})
              if saved.get(k) != current.get(k)]
    if diffs:
        raise ValueError(f"the checkpoints in {directory} were made with another configuration "
                         f"({'; '.join(diffs[:5])}); use another checkpoint directory, or do "
                         f"not resume")


class Checkpoints:
    """The checkpoints of one :func:`feasjax.train` run: its Orbax manager, the configuration
    a resume must match (``settings`` and ``config``, the key's bits, the data's fingerprint)
    and when to save."""

    def __init__(self, directory: str | os.PathLike, *, data: Any, key: jax.Array,
                 settings: dict, config: dict | None, max_to_keep: int, async_save: bool,
                 resume: bool, after_save: Callable[[int], None] | None) -> None:
        self.directory, self.allow_resume, self.after_save = str(directory), resume, after_save
        self.config = json.loads(json.dumps({**settings, **(config or {}),
                                             "key": np.asarray(storable(key)).tolist(),
                                             "data_fingerprint": data_fingerprint(data)}))
        self.manager = checkpoint_manager(directory, max_to_keep=max_to_keep,
                                          async_save=async_save)
        self.last_saved = 0

    def resume(self, target: dict, epochs: int) -> tuple | None:
        """``(tree, epoch, pos, tally)`` of the latest readable checkpoint (``tally``: the
        :class:`feasjax.training.tally.Tally` keywords that continue it), or ``None`` (no
        checkpoint, or none readable)."""
        if not self.manager.all_steps():
            return None
        if not self.allow_resume:
            raise ValueError(f"checkpoint_dir {self.directory} already holds checkpoints "
                             f"{self.manager.all_steps()}; resume, or use an empty directory")
        try:
            restored = restore_checkpoint(self.manager, target, required_meta=_META_KEYS,
                                          quarantine=True)
        except FileNotFoundError as e:
            warnings.warn(f"{e}; starting from scratch", stacklevel=4)
            return None
        meta = restored.meta
        _check_config(meta["config"], self.config, self.directory)
        epoch, pos, skipped = meta["epoch"], meta["step_in_epoch"], meta["skipped"]
        if epoch > epochs or (epoch == epochs and pos > 0):
            more = f" and {pos} steps of the next" if pos else ""
            raise ValueError(f"the checkpoint in {self.directory} has finished {epoch} "
                             f"epoch{'s' * (epoch != 1)}{more}, more than {epochs=}: pass "
                             f"epochs >= {epoch + (pos > 0)} to continue it, or use another "
                             f"checkpoint directory")
        self.last_saved = meta["global_step"]
        tally = {"history": History(*(list(meta["history"][f]) for f in History._fields)),
                 "partial": meta["partial"],
                 "skipped": np.asarray(skipped) if isinstance(skipped, list) else skipped}
        return restored.tree, epoch, pos, tally

    def maybe_save(self, carry: Any, key: jax.Array, tally: Any, *, epoch: int, pos: int,
                   steps: int, every: int, epochs: int) -> None:
        """Save after the first chunk that reaches a multiple of ``every`` global steps, and
        at the end."""
        done = epoch * steps + pos
        if done // every <= self.last_saved // every and epoch != epochs:
            return
        meta = {"config": self.config, "epoch": epoch, "step_in_epoch": pos,
                "global_step": done, "epochs": epochs, "partial": tally.partial,
                "skipped": tally.skipped, "history": tally.history._asdict()}
        save_checkpoint(self.manager, done, {"state": carry, "key": key},
                        meta=json.loads(json.dumps(meta, default=_plain)), force=True)
        self.last_saved = done
        if self.after_save is not None:
            self.after_save(done)

    def close(self) -> None:
        try:
            self.manager.wait_until_finished()
        finally:
            self.manager.close()


def _plain(value: Any) -> Any:
    """Host arrays and numbers (a sweep's per-run values) as JSON-able lists and numbers."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

