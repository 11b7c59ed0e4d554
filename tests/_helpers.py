"""Helpers shared by the test modules: one copy of each, imported as ``from tests._helpers``.

Plain functions rather than conftest fixtures: module-level solvers (compiled once per module)
and the scripts that tests/test_resume.py and tests/test_checkpoint_recovery.py run in child
processes use them too, and neither can ask pytest for a fixture.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

import feasjax as fj


def squared_errors(w, batch):
    """Per-sample squared errors ``(x_i w - y_i)^2`` of a linear model, shape ``(B,)``."""
    return (batch["x"] @ w - batch["y"]) ** 2


def linear_data(n, d, *, seed=0, noise=1.0, shift=0.0):
    """``{"x": (n, d), "y": (n,)}``: a random linear target plus ``noise * sin(i) + shift``.

    The sine makes the residuals deterministic and different per sample, so that no epsilon
    holds for every sample at once and the multipliers move.
    """
    kx, kw = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (n, d))
    y = x @ jax.random.normal(kw, (d,)) + noise * jnp.sin(jnp.arange(n)) + shift
    return {"x": x, "y": y}


def schedule_free_fl(num_samples, losses_fn=squared_errors):
    """An FL solver whose state holds every kind of leaf a checkpoint or a resume must carry.

    Schedule-free SGD keeps an average with counters; the dual optimizer keeps a momentum trace.
    """
    return fj.feasible_learning(losses_fn, optax.contrib.schedule_free_sgd(0.05),
                                num_samples=num_samples, epsilon=0.1,
                                dual_optimizer=fj.ascent(optax.sgd(0.1, 0.5)))


def host_leaves(tree):
    """``{keystr(path): numpy array}`` of every leaf; PRNG keys as their key data."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(p): np.asarray(_key_data(v)) for p, v in flat}


def assert_bit_identical(a, b):
    """Same tree structure, and every leaf equal bit for bit, with the same dtype and shape.

    PRNG key leaves must have the same key type and equal key data.
    """
    assert jax.tree.structure(a) == jax.tree.structure(b)
    leaves_b = jax.tree.leaves(b)
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), leaves_b, strict=True):
        where = jax.tree_util.keystr(path) or "the leaf"
        if _is_key(x) or _is_key(y):  # key data alone would not tell two key types apart
            assert x.dtype == y.dtype, f"{where}: {x.dtype} != {y.dtype}"
        np.testing.assert_array_equal(np.asarray(_key_data(x)), np.asarray(_key_data(y)),
                                      err_msg=where, strict=True)


def _is_key(x):
    return jnp.issubdtype(getattr(x, "dtype", None) or np.asarray(x).dtype, jax.dtypes.prng_key)


def _key_data(x):
    return jax.random.key_data(x) if _is_key(x) else x


_KILL_CHILD_HEADER = """
import os, sys, json, signal
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"  # as conftest.py
os.environ["JAX_PLATFORMS"] = "cpu"
import jax
jax.config.update("jax_threefry_partitionable", True)
# The children compile the same programs as each other and as the suite: they share the
# session's persistent cache (conftest.py), or one of their own outside the suite.
jax.config.update("jax_compilation_cache_dir", {cache!r})
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
import numpy as np
from tests._helpers import host_leaves
import {module} as t
directory, out, die_after = sys.argv[1], sys.argv[2], int(sys.argv[3])

def after_save(step):
    print("saved", step, flush=True)
    if step == die_after:  # the async save has started, not necessarily finished
        os.kill(os.getpid(), signal.SIGKILL)
"""


def kill_child(tmp_path, module, body, *, die_after=-1, wait=True):
    """Run a child that trains (``body``, with ``t`` = the test module ``module``, and
    ``directory``, ``out`` and ``after_save`` defined) and SIGKILLs itself right after the save
    of step ``die_after`` (-1: never), as the kill -9 resume tests do.

    Returns ``(process, out)``: a finished ``CompletedProcess`` (output captured) if ``wait``,
    else a running ``Popen`` whose stdout is a pipe; ``out`` is the path the body writes to.
    """
    import os
    import pathlib
    import subprocess
    import sys

    tests = pathlib.Path(__file__).parent
    script = tmp_path / "child.py"
    script.write_text(_KILL_CHILD_HEADER.format(
        tests=str(tests), root=str(tests.parent), module=module,
        cache=os.environ.get("FEASJAX_TEST_COMPILATION_CACHE", str(tmp_path / "jax-cache")))
        + body)
    out = str(tmp_path / "final.npz")
    args = [sys.executable, str(script), str(tmp_path / "ckpt"), out, str(die_after)]
    if wait:
        return subprocess.run(args, capture_output=True, text=True, timeout=900), out
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True), out
