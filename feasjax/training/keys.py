"""Epoch keys ``fold_in(key, e)`` computed on the host, so that an epoch's program does not.

``jax.random.fold_in`` is the Threefry-2x32 hash of the pair ``(0, e)`` under the key: 20
rounds of additions, rotations and xors on two 32-bit words. Inside the compiled epoch it costs
about ten small XLA kernels (a rolled loop), a tenth of a second of a cold start on a CPU; on the
host it is microseconds of integer arithmetic. :func:`feasjax.train` therefore folds each
epoch's key on the host for the default (threefry) keys, passes the two words to the program as a
numpy array (jit's own transfer) and wraps them back into a key there; for other key
implementations it folds with JAX.
"""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np

__all__: list[str] = []  # helpers of the training loop only: import them from here

THREEFRY = "threefry2x32"
_MASK = 0xFFFFFFFF
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry_fold_in(key_data: np.ndarray, data: int) -> np.ndarray:
    """The key data of ``jax.random.fold_in(key, data)`` for a threefry2x32 key, in numpy.

    Bit for bit what JAX computes: the Threefry-2x32 hash (Salmon et al., 2011) of the counter
    pair ``(0, data)`` under the key's two words.

    Args:
      key_data: ``jax.random.key_data(key)``, two uint32 words.
      data: the int folded in, in ``[0, 2**32)``.

    Returns:
      The folded key's two uint32 words.

    Example:
      >>> import jax, numpy as np
      >>> from feasjax.training.keys import threefry_fold_in
      >>> key = jax.random.key(0)
      >>> folded = threefry_fold_in(np.asarray(jax.random.key_data(key)), 3)
      >>> bool((folded == np.asarray(jax.random.key_data(jax.random.fold_in(key, 3)))).all())
      True
    """
    if not 0 <= int(data) <= _MASK:
        raise ValueError(f"data must be an int in [0, 2**32), got {data=}")
    k0, k1 = (int(w) for w in np.asarray(key_data, np.uint32).reshape(2))
    schedule = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0, x1 = schedule[0], (int(data) + schedule[1]) & _MASK  # the counters (0, data), keyed
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = (x0 + x1) & _MASK
            x1 = ((x1 << r) | (x1 >> (32 - r))) & _MASK
            x1 ^= x0
        x0 = (x0 + schedule[(block + 1) % 3]) & _MASK
        x1 = (x1 + schedule[(block + 2) % 3] + block + 1) & _MASK
    return np.array([x0, x1], np.uint32)


def host_epoch_keys(key: jax.Array) -> tuple[Callable[[int], np.ndarray], str | None] | None:
    """``(fold, impl)`` to fold epochs into ``key`` on the host, or ``None`` to let JAX do it.

    ``fold(e)`` gives the key data of ``fold_in(key, e)``; inside a program,
    ``jax.random.wrap_key_data(data, impl=impl)`` makes the key again (``impl`` is ``None`` for
    a legacy raw ``uint32[2]`` key, which the data already is).

    Args:
      key: a concrete ``jax.random`` key of shape ``()`` (or a raw ``uint32[2]`` key).

    Returns:
      ``None`` unless ``key`` is a concrete threefry2x32 key.

    Example:
      >>> import jax
      >>> from feasjax.training.keys import host_epoch_keys
      >>> fold, impl = host_epoch_keys(jax.random.key(0))
      >>> impl, fold(1).shape
      ('threefry2x32', (2,))
    """
    if isinstance(key, jax.core.Tracer) or not isinstance(key, jax.Array):
        return None
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if typed and key.shape != ():
        return None
    if not typed and (key.dtype != np.uint32 or key.shape != (2,)):
        return None
    if str(jax.random.key_impl(key)) != THREEFRY:
        return None
    words = np.asarray(jax.random.key_data(key) if typed else key)
    return (lambda epoch: threefry_fold_in(words, epoch)), (THREEFRY if typed else None)
