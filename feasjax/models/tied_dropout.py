"""Example-tied dropout (Maini et al. 2023, ICML), which FairDropout (Ikram et al. 2025) applies
to subpopulation shift: memorisation sent to units that are dropped at inference. Example ``i``'s
mask is drawn from ``fold_in(key(seed), i)``: no ``N x units`` table is stored."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["TiedDropout", "ExampleTiedDropout"]


class TiedDropout(NamedTuple):
    """Where and how a model uses :class:`ExampleTiedDropout` (an option of MLP and CNN).

    Example:
      >>> from feasjax.models import TiedDropout
      >>> TiedDropout(p_gen=0.5, p_mem=0.2).layer
      -1
    """

    p_gen: float = 0.5  # fraction of always-active generalisation units
    p_mem: float = 0.2  # probability that a memorisation unit is active for an example
    layer: int = -1  # which hidden layer (MLP; the CNN has one dense hidden layer)
    seed: int = 0  # seed of the example-tied masks


def _check_probability(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a float in [0, 1], got {name}={value!r}")
    return float(value)


class ExampleTiedDropout(nnx.Module):
    """Example-tied dropout over ``features`` units; the batch's sample indices pick the masks.

    In training mode (``deterministic=False``) unit ``j`` of example ``i`` is kept if
    ``j < round(p_gen · features)`` or ``u_ij < p_mem`` with ``u_i = uniform(fold_in(key, i))``;
    in eval mode (``model.eval()``) only the generalisation units are kept. Kept units are not
    rescaled (Maini et al. 2023).

    Args:
      features: number of units.
      p_gen: fraction of generalisation units, in ``[0, 1]``.
      p_mem: probability that a memorisation unit is active for an example, in ``[0, 1]``.
      seed: seed of the masks.
      deterministic: start in eval mode.

    Example:
      >>> import jax.numpy as jnp
      >>> from feasjax.models import ExampleTiedDropout
      >>> layer = ExampleTiedDropout(8, p_gen=0.5, p_mem=0.5, seed=0)
      >>> m = layer.mask(jnp.array([3, 3, 4]))
      >>> bool((m[0] == m[1]).all()), m[:, :4].tolist() == [[1.0] * 4] * 3
      (True, True)
      >>> layer.eval()
      >>> layer(jnp.ones((1, 8))).tolist()
      [[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]]
    """

    def __init__(self, features: int, *, p_gen: float, p_mem: float, seed: int = 0,
                 deterministic: bool = False) -> None:
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive int, got {features=}")
        self.features = features
        self.p_gen = _check_probability(p_gen, "p_gen")
        self.p_mem = _check_probability(p_mem, "p_mem")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed=}")
        self.seed = seed
        self.num_gen = round(self.p_gen * features)
        self.deterministic = deterministic

    def _generalisation_units(self) -> jax.Array:
        return jnp.arange(self.features) < self.num_gen

    def mask(self, indices: jax.Array) -> jax.Array:
        """The training-mode masks of the examples ``indices``, ``(B, features)`` float32."""
        key = jax.random.key(self.seed)
        uniform = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i),
                                                        (self.features,)))(indices)
        return (self._generalisation_units()[None, :] | (uniform < self.p_mem)).astype(jnp.float32)

    def __call__(self, x: jax.Array, indices: jax.Array | None = None) -> jax.Array:
        """Mask ``x`` of shape ``(B, features)``; ``indices`` (``(B,)`` ints) in training mode."""
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(f"x must have shape (B, {self.features}), got {x.shape=}")
        if self.deterministic:
            return x * self._generalisation_units().astype(x.dtype)[None, :]
        if indices is None:
            raise ValueError("ExampleTiedDropout in training mode needs the batch's sample "
                             "indices: call model(x, indices=batch['index']), or model.eval()")
        indices = jnp.asarray(indices)
        if indices.shape != (x.shape[0],) or not jnp.issubdtype(indices.dtype, jnp.integer):
            raise ValueError(f"indices must be ({x.shape[0]},) ints, got shape "
                             f"{indices.shape} and dtype {indices.dtype}")
        return x * self.mask(indices).astype(x.dtype)
