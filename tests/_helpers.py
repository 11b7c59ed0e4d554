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
