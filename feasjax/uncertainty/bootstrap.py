"""Multiplier bootstrap for Polyak–Ruppert averaged SGD: the main chain and B replicas in one program.

Replica ``b`` runs the main chain's SGD recursion on the same data stream with every sample's
loss weighted by an i.i.d. multiplier ``W`` of mean 1 and variance 1 (``Exp(1)``, ``Poisson(1)``),
step sizes ``η_k = η_0 k^{-γ}``, ``γ ∈ (1/2, 1]``, and averages after a burn-in; the spread of
``θ̄^b − θ̄`` approximates the law of ``θ̄ − θ*`` (Sheshukova et al. 2025,
https://arxiv.org/abs/2502.06719; Fang, Xu and Yang, JMLR 2018). Replicas are one ``vmap``, a
stream one ``lax.scan``. Memory: (B + 1) x (2 params + optimizer state).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from feasjax.averaging.averagers import polyak
from feasjax.core.weighting import Reduction, check_reduction, weighted_sum

__all__ = ["MULTIPLIERS", "ChainState", "BootstrapState", "MultiplierBootstrap",
           "power_decay_schedule", "multiplier_bootstrap", "bootstrap_estimates"]

Sampler = Callable[[jax.Array, tuple[int, ...]], jax.Array]
MULTIPLIERS: dict[str, Sampler] = {
    "exponential": lambda key, shape: jax.random.exponential(key, shape),
    "poisson": lambda key, shape: jax.random.poisson(key, 1.0, shape).astype(jnp.float32),
}


class ChainState(NamedTuple):
    """One SGD chain (leaves gain a leading replica axis of size B in ``BootstrapState.replicas``)."""

    params: Any  # pytree like the initial params
    opt_state: Any  # the optimizer's state pytree
    average: Any  # pytree like params: Polyak–Ruppert mean of iterates after burn-in


class BootstrapState(NamedTuple):
    """State of the main chain and of the B bootstrap replicas."""

    main: ChainState  # unbatched, multipliers 1
    replicas: ChainState  # every leaf shape=(B, *leaf.shape)
    keys: jax.Array  # shape=(B,), one PRNG key per replica
    count: jax.Array  # shape=(), int32, steps taken


class MultiplierBootstrap(NamedTuple):
    """Pure functions returned by :func:`multiplier_bootstrap` (jit them yourself)."""

    init: Callable[..., BootstrapState]  # (params, key) -> state
    step: Callable[..., BootstrapState]  # (state, batch, *, weights=None) -> state
    run: Callable[..., BootstrapState]  # (state, stream, *, weights=None) -> state (lax.scan)


def power_decay_schedule(learning_rate: float, gamma: float = 2 / 3) -> optax.Schedule:
    """Step sizes ``η_k = η_0 k^(−γ)``, ``γ`` in ``(1/2, 1]``, as an optax schedule of ``count = k − 1``.

    Example:
      >>> from feasjax.uncertainty import power_decay_schedule
      >>> float(power_decay_schedule(1.0, gamma=1.0)(3))  # eta_4 = 1 / 4
      0.25
    """
    if not 0.5 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (1/2, 1], got {gamma=}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate=}")
    return lambda count: learning_rate * (jnp.asarray(count, jnp.float32) + 1.0) ** (-gamma)


def _check_multipliers(sampler: Sampler, num_samples: int = 1 << 16) -> None:
    """Draw once and raise unless the law has mean 1 and variance 1 (6 standard errors slack)."""
    draws = np.asarray(sampler(jax.random.key(0), (num_samples,)), dtype=np.float64)
    if draws.shape != (num_samples,):
        raise ValueError(f"weights sampler must return shape (n,), got {draws.shape} for n={num_samples}")
    mean, var = draws.mean(), draws.var(ddof=1)
    se_mean = math.sqrt(var / num_samples)
    se_var = math.sqrt(max(np.mean((draws - mean) ** 4) - var**2, 0.0) / num_samples)
    if not abs(mean - 1.0) <= max(0.01, 6 * se_mean):
        raise ValueError(f"weights must have mean 1, got sample mean {mean:.4f}")
    if not abs(var - 1.0) <= max(0.02, 6 * se_var):
        raise ValueError(f"weights must have variance 1, got sample variance {var:.4f}")


def _replica_sharding(sharding: Mesh | NamedSharding | None, num_replicas: int):
    """The ``NamedSharding`` of the replica axis (all mesh axes for a bare mesh), checked."""
    if sharding is None:
        return None
    if isinstance(sharding, Mesh):
        sharding = NamedSharding(sharding, PartitionSpec(sharding.axis_names))
    if not isinstance(sharding, NamedSharding):
        raise TypeError(f"sharding must be a Mesh, a NamedSharding or None, got {type(sharding)}")
    names = jax.tree.leaves(tuple(sharding.spec)[:1])  # the mesh axes of the replica axis
    shards = math.prod(sharding.mesh.shape[name] for name in names)
    if num_replicas % shards:
        raise ValueError(f"num_replicas must be divisible by the {shards} replica shards, got {num_replicas=}")
    return sharding


def _leading_dims(tree: Any, ndim: int, name: str) -> tuple[int, ...]:
    leaves = jax.tree.leaves(tree)
    dims = {tuple(jnp.shape(x)[:ndim]) for x in leaves}
    if not leaves or len(dims) != 1 or len(next(iter(dims))) != ndim:
        raise ValueError(f"{name} leaves must share {ndim} leading axes, got shapes {[jnp.shape(x) for x in leaves]}")
    return dims.pop()


def multiplier_bootstrap(loss_fn: Callable[..., jax.Array], num_replicas: int, *,
                         learning_rate: float | None = None, gamma: float = 2 / 3,
                         burn_in: int = 0, weights: str | Sampler = "exponential",
                         optimizer: optax.GradientTransformation | None = None,
                         reduction: Reduction = "mean", batched_loss: bool = False,
                         sharding: Mesh | NamedSharding | None = None, block: int = 256
                         ) -> MultiplierBootstrap:
    """Main SGD chain plus ``num_replicas`` multiplier-bootstrap chains, vectorised with ``vmap``.

    Every step shares one minibatch across chains. Replica ``b`` after ``c`` steps draws its
    multipliers for the next ``T`` steps as ``sampler(fold_in(keys[b], c), (T, m))`` (``T = 1`` in
    ``step``, ``block`` in ``run``), so results do not depend on sharding or ``jit``.

    Args:
      loss_fn: ``loss_fn(params, example) -> scalar`` (vmapped over the minibatch), or with
        ``batched_loss=True`` ``loss_fn(params, batch) -> (m,)`` per-sample losses.
      num_replicas: number ``B >= 2`` of bootstrap chains.
      learning_rate: ``η_0`` of the default SGD with :func:`power_decay_schedule`; ``None`` when
        passing ``optimizer``.
      gamma: step-size exponent in ``(1/2, 1]`` (default SGD only).
      burn_in: iterates ``θ_1..θ_burn_in`` are left out of the Polyak–Ruppert mean.
      weights: ``"exponential"``, ``"poisson"`` or ``sampler(key, shape)`` with mean 1 and
        variance 1 (checked on one large draw at construction).
      optimizer: any optax transformation in place of the default SGD.
      reduction: ``"mean"`` or ``"sum"`` over the minibatch.
      batched_loss: whether ``loss_fn`` already maps a batch to per-sample losses.
      sharding: a ``Mesh`` or ``NamedSharding`` for the replica axis (``B`` must divide evenly).
      block: steps whose multipliers ``run`` draws at once (memory ``block x B x m`` floats).

    Returns:
      A :class:`MultiplierBootstrap` of pure ``init(params, key)``, ``step(state, batch)`` (leaves
      ``(m, ...)``) and ``run(state, stream)`` (leaves ``(n_steps, m, ...)``, one ``lax.scan``);
      both accept ``weights=`` (``(B, m)`` per step) to override the drawn multipliers.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from feasjax.uncertainty import multiplier_bootstrap, bootstrap_estimates
      >>> loss = lambda theta, z: 0.5 * (z[0] - theta[0]) ** 2
      >>> boot = multiplier_bootstrap(loss, 4, learning_rate=0.5, burn_in=10)
      >>> stream = jax.random.normal(jax.random.key(0), (200, 1, 1)) + 3.0
      >>> init = boot.init(jnp.zeros(1), jax.random.key(1))
      >>> state = jax.jit(boot.run)(init, stream)
      >>> center, replicas = bootstrap_estimates(state)
      >>> center.shape, replicas.shape
      ((1,), (4, 1))
    """
    for name, value, low in (("num_replicas", num_replicas, 2), ("burn_in", burn_in, 0),
                             ("block", block, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {name}={value!r}")
    check_reduction(reduction)
    schedule = None
    if optimizer is None:
        if learning_rate is None:
            raise ValueError("learning_rate is required when optimizer is None")
        # Plain SGD: the step size is shared by all chains, so it is computed once per step
        # outside the replica vmap (a per-replica schedule would evaluate B + 1 powers a step).
        schedule = power_decay_schedule(learning_rate, gamma)
        optimizer = optax.scale(-1.0)
    elif learning_rate is not None:
        raise ValueError(f"pass learning_rate or optimizer, not both, got {learning_rate=}")
    if isinstance(weights, str):
        if weights not in MULTIPLIERS:
            raise ValueError(f"weights must be one of {tuple(MULTIPLIERS)} or a sampler, got {weights=}")
        sampler = MULTIPLIERS[weights]
    elif callable(weights):
        _check_multipliers(weights)
        sampler = weights
    else:
        raise TypeError(f"weights must be a str or a callable sampler, got {type(weights)}")
    replica_sharding = _replica_sharding(sharding, num_replicas)
    per_sample = loss_fn if batched_loss else jax.vmap(loss_fn, in_axes=(None, 0))
    mean = polyak()  # the Polyak-Ruppert average of each chain

    # Explicit mesh axes carry the sharding in the array types already; Auto ones need a hint.
    hint = replica_sharding is not None and (
        jax.sharding.AxisType.Explicit not in replica_sharding.mesh.axis_types)

    def chain_step(chain: ChainState, batch, multipliers, count, step_size) -> ChainState:
        def objective(params):
            values = per_sample(params, batch)
            return weighted_sum(values, multipliers.astype(values.dtype), reduction)

        grads = jax.grad(objective)(chain.params)
        updates, opt_state = optimizer.update(grads, chain.opt_state, chain.params)
        if step_size is not None:
            updates = jax.tree.map(lambda u: (step_size * u).astype(u.dtype), updates)
        params = optax.apply_updates(chain.params, updates)
        # Weight 1/k for the k-th iterate after burn-in (k <= 1: a copy), as polyak() folds.
        weight = mean.weight(jnp.maximum(count - burn_in, 1) - 1)
        average = jax.tree.map(lambda a, p: mean.fold_leaf(a, p, weight, True),
                               chain.average, params)
        return ChainState(params, opt_state, average)

    def init(params, key) -> BootstrapState:
        # A copy per leaf: the chain's params and average (and the caller's params) must not
        # share a buffer, or a jitted step that donates the state fails.
        main = jax.tree.map(jnp.copy, ChainState(params, optimizer.init(params), params))
        replicas = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_replicas, *jnp.shape(x))), main)
        keys = jax.random.split(key, num_replicas)
        if replica_sharding is not None:
            replicas, keys = jax.device_put((replicas, keys), replica_sharding)
        return BootstrapState(main, replicas, keys, jnp.zeros((), jnp.int32))

    def draw(state: BootstrapState, steps: int, m: int) -> jax.Array:
        """Multipliers of the next ``steps`` steps, shape (steps, B, m): one draw per replica."""
        per_replica = lambda key: sampler(jax.random.fold_in(key, state.count), (steps, m))
        return jnp.swapaxes(jax.vmap(per_replica)(state.keys), 0, 1)

    def step(state: BootstrapState, batch, *, weights=None) -> BootstrapState:
        (m,) = _leading_dims(batch, 1, "batch")
        if weights is None:
            weights = draw(state, 1, m)[0]
        elif jnp.shape(weights) != (num_replicas, m):
            raise ValueError(f"weights must have shape {(num_replicas, m)}, got {jnp.shape(weights)}")
        step_size = None if schedule is None else schedule(state.count)
        count = state.count + 1
        main = chain_step(state.main, batch, jnp.ones((m,)), count, step_size)
        replicas = jax.vmap(chain_step, in_axes=(0, None, 0, None, None))(
            state.replicas, batch, weights, count, step_size)
        if hint:
            replicas = jax.lax.with_sharding_constraint(replicas, replica_sharding)
        return BootstrapState(main, replicas, state.keys, count)

    def given(state, batch_and_weights):  # a scan body (not unrolled: each copy compiles again)
        return step(state, batch_and_weights[0], weights=batch_and_weights[1]), None

    def run(state: BootstrapState, stream, *, weights=None) -> BootstrapState:
        n, m = _leading_dims(stream, 2, "stream")
        if weights is not None:
            if jnp.shape(weights) != (n, num_replicas, m):
                raise ValueError(f"weights must have shape {(n, num_replicas, m)}, got {jnp.shape(weights)}")
            return jax.lax.scan(given, state, (stream, weights))[0]
        size = min(block, n)
        q = -(-n // size)  # blocks; the last one padded, its padding steps skipped by a cond
        pad = [(0, q * size - n)]
        blocks = jax.tree.map(lambda x: jnp.pad(x, pad + [(0, 0)] * (x.ndim - 1)).reshape(
            q, size, *x.shape[1:]), stream)
        stop = state.count + n

        def one_block(s, xs):
            def body(s, bw):
                return jax.lax.cond(s.count < stop, given, lambda s, _: (s, None), s, bw)
            return jax.lax.scan(body, s, (xs, draw(s, size, m)))[0], None

        # One copy of the step in the program, however n divides into blocks.
        return jax.lax.scan(one_block, state, blocks)[0]

    return MultiplierBootstrap(init, step, run)


def bootstrap_estimates(state: BootstrapState) -> tuple[jax.Array, jax.Array]:
    """Flattened Polyak–Ruppert averages ``(center, replicas)``, shapes ``(d,)`` and ``(B, d)``.

    In ``ravel_pytree`` order (``state.main.average`` / ``state.replicas.average`` keep the
    pytree form).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from feasjax.uncertainty import multiplier_bootstrap, bootstrap_estimates
      >>> boot = multiplier_bootstrap(lambda p, z: p["w"] @ z, 3, learning_rate=0.1)
      >>> state = boot.init({"w": jnp.ones(2)}, jax.random.key(0))
      >>> [x.shape for x in bootstrap_estimates(state)]
      [(2,), (3, 2)]
    """
    flat = lambda tree: ravel_pytree(tree)[0]  # noqa: E731
    return flat(state.main.average), jax.vmap(flat)(state.replicas.average)
