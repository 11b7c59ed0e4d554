"""Full-state checkpoints with Orbax: any pytree (typed PRNG keys stored as their
``key_data``) plus JSON metadata, as the items ``state`` and ``meta`` of one Orbax step
directory. Saves are atomic (Orbax writes ``<step>.orbax-checkpoint-tmp`` and renames it once
complete, so a crash during a save leaves the previous checkpoints intact) and asynchronous.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp

if TYPE_CHECKING:  # orbax takes ~0.2 s to import: each function imports it when it checkpoints
    import orbax.checkpoint as ocp

__all__ = ["Restored", "checkpoint_manager", "save_checkpoint", "check_compatible",
           "restore_checkpoint"]


class Restored(NamedTuple):
    """What :func:`restore_checkpoint` returns."""

    tree: Any  # the restored pytree, with the target's structure and shardings
    meta: dict  # the JSON metadata saved with it
    step: int  # the checkpoint's step


def checkpoint_manager(directory: str | os.PathLike, *, max_to_keep: int | None = 3,
                       save_interval_steps: int = 1,
                       async_save: bool = True) -> ocp.CheckpointManager:
    """An Orbax ``CheckpointManager`` with feasjax's options (atomic, async, cleanup).

    Args:
      directory: where step directories live (created if missing).
      max_to_keep: keep the latest ``max_to_keep`` checkpoints (``None``: keep all).
      save_interval_steps: Orbax saves at steps that are multiples of it (``force`` overrides).
      async_save: write files in a background thread.

    Returns:
      An ``orbax.checkpoint.CheckpointManager``; ``close()`` it when done.

    Example:
      >>> import tempfile
      >>> from feasjax.training import checkpoint_manager
      >>> with checkpoint_manager(tempfile.mkdtemp(), max_to_keep=2) as manager:
      ...     manager.all_steps()
      []
    """
    if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
        raise ValueError(f"max_to_keep must be a positive int or None, got {max_to_keep=}")
    if not isinstance(save_interval_steps, int) or save_interval_steps < 1:
        raise ValueError(f"save_interval_steps must be a positive int, got "
                         f"{save_interval_steps=}")
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, save_interval_steps=save_interval_steps,
        enable_async_checkpointing=async_save, cleanup_tmp_directories=True, create=True)
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    manager = ocp.CheckpointManager(os.path.abspath(os.fspath(directory)), options=options,
                                    item_handlers=handlers)
    # Orbax removes the tmp directories of unfinished saves in a thread that only a save waits
    # for: a run that exits without saving (a failed resume) left it running into interpreter
    # shutdown ("RuntimeError: cannot schedule new futures after interpreter shutdown").
    getattr(manager, "_maybe_await_cleanup_tmp_directory", lambda: None)()
    return manager


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def storable(tree: Any) -> Any:
    """``tree`` with typed PRNG keys as their ``key_data`` (what Orbax and JSON can store)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def save_checkpoint(manager: ocp.CheckpointManager, step: int, tree: Any, *,
                    meta: dict | None = None, force: bool = False) -> bool:
    """Save ``tree`` and the JSON ``meta`` as checkpoint ``step`` (asynchronously if enabled:
    the arrays are on the host when it returns, so ``tree`` may be donated right after).

    Args:
      manager: from :func:`checkpoint_manager`.
      step: a non-negative int, increasing from save to save.
      tree: any pytree of arrays (typed PRNG keys allowed).
      meta: a JSON-serialisable dict saved beside it, as it is when this is called.
      force: save even if the manager's interval would skip ``step``.

    Returns:
      Whether a save was started.

    Example:
      >>> import tempfile, jax.numpy as jnp
      >>> from feasjax.training import checkpoint_manager, save_checkpoint
      >>> with checkpoint_manager(tempfile.mkdtemp()) as manager:
      ...     save_checkpoint(manager, 3, {"w": jnp.ones(2)}, meta={"epoch": 0})
      ...     manager.wait_until_finished()
      ...     manager.all_steps()
      True
      [3]
    """
    # The JSON is written in the background: snapshot it now, or lists the caller appends to
    # after this call (a history) would land in this checkpoint. Not JSON-able raises here.
    meta = json.loads(json.dumps(dict(meta or {})))
    import orbax.checkpoint as ocp

    args = ocp.args.Composite(state=ocp.args.StandardSave(storable(tree)),
                              meta=ocp.args.JsonSave(meta))
    return bool(manager.save(int(step), args=args, force=force))


def leaves_by_path(tree: Any) -> dict[str, Any]:
    """``{"state/multipliers/samples": leaf, ...}``."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path, simple=True, separator="/"): leaf for path, leaf in flat}


def check_compatible(saved: Any, target: Any) -> None:
    """Raise ``ValueError`` unless two pytrees have the same leaves, shapes and dtypes.

    Leaves are matched by path (``"state/multipliers/samples"``), so a NamedTuple saved by
    Orbax (as a dict of its fields) matches the NamedTuple target.

    Args:
      saved: a checkpoint's metadata tree (leaves with ``shape`` and ``dtype``).
      target: the pytree to restore into (arrays or ``jax.ShapeDtypeStruct``).

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.training import check_compatible
      >>> check_compatible({"w": jnp.zeros(3)}, {"w": jnp.zeros(4)})
      Traceback (most recent call last):
      ...
      ValueError: checkpoint does not fit the target: leaf 'w': ...
    """
    saved, target = leaves_by_path(saved), leaves_by_path(storable(target))
    only_saved, only_target = sorted(saved.keys() - target), sorted(target.keys() - saved)
    problems = []
    if only_saved or only_target:
        problems.append(f"leaves only in the checkpoint {only_saved[:5]}, only in the target "
                        f"{only_target[:5]} (a different model or state structure?)")
    for name in sorted(saved.keys() & target):
        s_shape, s_dtype = tuple(saved[name].shape), jnp.dtype(saved[name].dtype)
        t_shape, t_dtype = tuple(jnp.shape(target[name])), jnp.result_type(target[name])
        if (s_shape, s_dtype) != (t_shape, t_dtype):
            problems.append(f"leaf {name!r}: checkpoint shape={s_shape} dtype={s_dtype}, "
                            f"target shape={t_shape} dtype={t_dtype}")
    if problems:
        raise ValueError("checkpoint does not fit the target: " + "; ".join(problems[:5]))


def _read(manager: ocp.CheckpointManager, step: int, target: Any,
          required_meta: Sequence[str]) -> Restored | str:
    """Checkpoint ``step`` restored into ``target``'s shapes, dtypes, shardings and key types,
    or why it cannot be read; a target it does not fit raises."""
    import orbax.checkpoint as ocp

    try:
        saved = manager.item_metadata(step)["state"]
        if saved is None:
            raise ValueError("its metadata is missing")
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is skipped
        return f"{type(e).__name__}: {e}"
    check_compatible(getattr(saved, "tree", saved), target)  # an error, not a fallback
    try:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, storable(target))
        out = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        tree = jax.tree.map(
            lambda t, r: jax.random.wrap_key_data(r, impl=jax.random.key_impl(t)) if _is_key(t)
            else r, target, out["state"])
        meta = dict(out["meta"] or {})
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    missing = [k for k in required_meta if k not in meta]
    return f"its JSON metadata lacks the keys {missing}" if missing else Restored(
        tree, meta, int(step))


def quarantine_step(manager: ocp.CheckpointManager, step: int) -> str | None:
    """Rename step directory ``<step>`` to ``<step>.corrupt-<time>`` (out of Orbax's view; move
    it back to retry it) on the primary process and reload the manager's steps; the new path,
    or ``None`` if there is no directory ``<step>``."""
    source = os.path.join(os.fspath(manager.directory), str(int(step)))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved, n = f"{source}.corrupt-{stamp}", 1
    while os.path.lexists(moved):  # quarantined twice within a second
        moved, n = f"{source}.corrupt-{stamp}-{n}", n + 1
    found = os.path.isdir(source)
    if found and jax.process_index() == 0:
        os.rename(source, moved)
    if jax.process_count() > 1:
        import orbax.checkpoint as ocp

        ocp.multihost.sync_global_processes(f"feasjax_quarantine_{int(step)}")
    manager.reload()
    return moved if found else None


def restore_checkpoint(manager: ocp.CheckpointManager, target: Any, *,
                       step: int | None = None, required_meta: Sequence[str] = (),
                       quarantine: bool = False) -> Restored:
    """Restore the latest readable checkpoint (or ``step``) into the shapes of ``target``.

    Args:
      manager: from :func:`checkpoint_manager`.
      target: a pytree like the saved one (arrays or ``jax.ShapeDtypeStruct``, e.g. a fresh
        state); each leaf is restored with its dtype, shape and sharding (so a checkpoint
        saved on 8 devices is restored on 1).
      step: a specific step; default: the latest, falling back to older ones with a
        ``UserWarning`` when a checkpoint cannot be read.
      required_meta: keys the JSON metadata must hold; a checkpoint without them counts as
        unreadable.
      quarantine: move every unreadable step directory newer than the restored one aside
        (:func:`quarantine_step`), so that the same steps can be saved again; readable
        checkpoints are never touched. Ignored with ``step``.

    Returns:
      A :class:`Restored` ``(tree, meta, step)``.

    Raises:
      FileNotFoundError: no checkpoint in the directory (with ``quarantine``: none left after
        moving the unreadable ones aside).
      ValueError: the checkpoint's leaves, shapes or dtypes differ from ``target``'s
        (:func:`check_compatible`), or no checkpoint could be read.

    Example:
      >>> import tempfile, jax.numpy as jnp
      >>> from feasjax.training import checkpoint_manager
      >>> from feasjax.training import restore_checkpoint, save_checkpoint
      >>> with checkpoint_manager(tempfile.mkdtemp()) as manager:
      ...     _ = save_checkpoint(manager, 1, {"w": jnp.ones(2)}, meta={"epoch": 4})
      ...     manager.wait_until_finished()
      ...     restored = restore_checkpoint(manager, {"w": jnp.zeros(2)})
      >>> restored.tree["w"].tolist(), restored.meta, restored.step
      ([1.0, 1.0], {'epoch': 4}, 1)
    """
    manager.wait_until_finished()
    steps = [step] if step is not None else sorted(manager.all_steps(), reverse=True)
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {manager.directory}")
    errors = {}
    for s in steps:
        restored = _read(manager, s, target, required_meta)
        if isinstance(restored, Restored):
            break
        errors[s], restored = restored, None
    quarantine, moved, last = quarantine and step is None, [], len(errors) - 1
    for i, (s, error) in enumerate(errors.items()):  # newest first
        path = quarantine_step(manager, s) if quarantine else None
        moved += [path] if path else []
        if restored is None and not quarantine and i == last:
            break  # its error is raised
        then = (f"falling back to checkpoint {restored.step}" if restored is not None else
                "falling back to the previous one" if i < last else "no older one")
        where = f"; moved it to {path}" if path else ""
        warnings.warn(f"checkpoint {s} in {manager.directory} cannot be read ({error[:300]})"
                      f"{where}; {then}", stacklevel=2)
    if restored is not None:
        return restored
    if moved:
        raise FileNotFoundError(f"no checkpoint left in {manager.directory}: every one was "
                                f"unreadable and was moved aside ({', '.join(moved)})")
    raise ValueError(f"no readable checkpoint in {manager.directory}: "
                     + " | ".join(f"step {s}: {e[:300]}" for s, e in errors.items()))
