"""FedAvg (McMahan et al. 2017) and FedOpt (Reddi et al. 2021) rounds as one compiled program:
every client's local training in one ``vmap`` over the padded data's leading client axis (split
over a mesh's devices with ``shard_map``); personal parameters are trained, never averaged.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from feasjax.parallel.mesh import mesh_axis

__all__ = ["FederatedState", "Federated", "client_update", "federated_averaging"]

LossFn = Callable[[Any, dict], jax.Array]  # (params, {"x": (B, ...), "y": (B,)}) -> (B,)


class FederatedState(NamedTuple):
    """Server state of :func:`federated_averaging`."""

    params: Any  # the global model
    server_state: optax.OptState  # the server optimizer's state
    round: jax.Array  # shape=(), int32: rounds done


class Federated(NamedTuple):
    """``init(params) -> FederatedState`` and ``round(state, clients, key, personal=None) ->
    (state, personal)``, made by :func:`federated_averaging`."""

    init: Callable[[Any], FederatedState]
    round: Callable[..., tuple[FederatedState, Any]]


def _check_clients(clients: Any) -> None:
    if not isinstance(clients, dict) or not {"x", "y", "mask"} <= set(clients):
        keys = sorted(clients) if isinstance(clients, dict) else type(clients).__name__
        raise ValueError(f"clients must be a dict with keys 'x', 'y', 'mask' (leading axes: "
                         f"clients, rows), got {keys}")
    shapes = {k: jnp.shape(clients[k])[:2] for k in ("x", "y", "mask")}
    if len(set(shapes.values())) != 1 or len(shapes["mask"]) != 2:
        raise ValueError(f"clients['x'], ['y'] and ['mask'] must share their leading (clients, "
                         f"rows) axes, got {shapes}")


def client_update(loss_fn: LossFn, optimizer: optax.GradientTransformation, local_steps: int, *,
                  batch_size: int | None = None) -> Callable[[Any, dict, jax.Array], Any]:
    """Local training of one client: ``train(params, client, key) -> params``.

    Each step minimises the masked mean of ``loss_fn`` over the client's real rows (full batch
    when ``batch_size`` is None, else ``batch_size`` rows drawn with replacement), from a fresh
    optimizer state; the steps run in one ``lax.scan``. ``vmap`` it over clients.

    Args:
      loss_fn: per-sample losses ``(params, {"x", "y"}) -> (B,)``.
      optimizer: any optax transformation.
      local_steps: steps per call, >= 1.
      batch_size: rows per step, or None for the client's whole (padded, masked) data.

    Returns:
      ``train(params, client, key)`` with ``client = {"x": (n, ...), "y": (n,), "mask": (n,)}``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax.federated import client_update
      >>> loss = lambda w, b: (b["x"] @ w - b["y"]) ** 2
      >>> train = client_update(loss, optax.sgd(0.5), local_steps=50)
      >>> client = {"x": jnp.ones((3, 1)), "y": jnp.array([2.0, 2.0, 9.0]),
      ...           "mask": jnp.array([True, True, False])}
      >>> train(jnp.zeros(1), client, jax.random.key(0)).round(3)
      Array([2.], dtype=float32)
    """
    if isinstance(local_steps, bool) or not isinstance(local_steps, int) or local_steps < 1:
        raise ValueError(f"local_steps must be a positive int, got {local_steps=}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None (full batch), got "
                         f"{batch_size=}")

    def objective(params, client, key):
        batch = client
        if batch_size is not None:
            count = jnp.maximum(jnp.sum(client["mask"]), 1)  # real rows come first
            rows = jax.random.randint(key, (batch_size,), 0, count)
            batch = jax.tree.map(lambda v: v[rows], client)
        losses = loss_fn(params, {"x": batch["x"], "y": batch["y"]})
        weight = batch["mask"].astype(losses.dtype)
        return jnp.sum(weight * losses) / jnp.maximum(jnp.sum(weight), 1.0)

    def train(params, client, key):
        def step(carry, step_key):
            p, s = carry
            grads = jax.grad(objective)(p, client, step_key)
            updates, s = optimizer.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)),
                                      jax.random.split(key, local_steps))
        return params

    return train


def _weighted_delta(train, params, clients, keys, personal, axis_name):
    """Size-weighted sum of the clients' deltas and of their weights (psum-ed over the mesh)."""
    def one(client, key, mine):
        start = params if mine is None else (params, mine)
        trained = train(start, client, key)
        shared, mine = (trained, None) if mine is None else trained
        return optax.tree.sub(shared, params), mine

    deltas, personal = jax.vmap(one)(clients, keys, personal)
    weights = jnp.sum(clients["mask"], axis=1).astype(jnp.float32)  # n_k; 0 for padding clients
    total = jax.tree.map(lambda d: jnp.tensordot(weights, d, axes=1).astype(d.dtype), deltas)
    count = jnp.sum(weights)
    if axis_name is not None:
        total, count = jax.lax.psum((total, count), axis_name)
    return total, count, personal


def federated_averaging(loss_fn: LossFn, client_optimizer: optax.GradientTransformation, *,
                        local_steps: int, server_optimizer: optax.GradientTransformation | None
                        = None, batch_size: int | None = None,
                        mesh: Mesh | None = None) -> Federated:
    """FedAvg / FedOpt: one jitted round trains all clients (``vmap``) and updates the server.

    Args:
      loss_fn: per-sample losses ``(params, {"x", "y"}) -> (B,)``; with personal parameters
        ``params`` is the pair ``(shared, personal)``.
      client_optimizer: optax transformation of the local steps (restarted every round).
      local_steps: local steps per round, >= 1.
      server_optimizer: optax transformation of the pseudo-gradient ``-delta``, ``delta`` the
        client-size-weighted mean of the clients' deltas (default ``optax.sgd(1.0)``: FedAvg,
        ``w <- w + delta``; ``optax.adam(lr)``: FedAdam).
      batch_size: rows per local step (None: full batch).
      mesh: optional 1-D mesh (:func:`feasjax.data_mesh`): clients are split over its devices;
        the number of clients must be a multiple of its size (pad with
        :func:`feasjax.data.federated.pad_clients`' empty clients, which weigh 0).

    Returns:
      A :class:`Federated`; ``round(state, clients, key, personal=None, client_ids=None)``
      takes client arrays with a leading client axis ``K``, optional personal parameters
      (leading axis ``K``) and, for clients given in another order (a shuffled batch of
      :func:`feasjax.train`), their ids, so that each client draws its own minibatches.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from feasjax.federated import federated_averaging
      >>> loss = lambda w, b: (b["x"] @ w - b["y"]) ** 2
      >>> fed = federated_averaging(loss, optax.sgd(0.1), local_steps=5)
      >>> clients = {"x": jnp.ones((2, 4, 1)),
      ...            "y": jnp.stack([jnp.zeros(4), 2 * jnp.ones(4)]),
      ...            "mask": jnp.ones((2, 4), bool)}
      >>> state = fed.init(jnp.zeros(1))
      >>> for r in range(30):
      ...     state, _ = fed.round(state, clients, jax.random.key(r))
      >>> state.params.round(3), int(state.round)
      (Array([1.], dtype=float32), 30)
    """
    server = optax.sgd(1.0) if server_optimizer is None else server_optimizer
    train = client_update(loss_fn, client_optimizer, local_steps, batch_size=batch_size)
    axis = None if mesh is None else mesh_axis(mesh)

    def init(params):
        return FederatedState(params, server.init(params), jnp.zeros([], jnp.int32))

    def round_fn(state, clients, key, personal=None, client_ids=None):
        _check_clients(clients)
        num = clients["mask"].shape[0]
        if mesh is not None and num % mesh.size:
            raise ValueError(f"the {num} clients must be a multiple of the mesh's {mesh.size} "
                             f"devices; pad the client axis with empty clients")
        keys = jax.random.split(key, num)
        if client_ids is not None:  # clients in another order: each keeps its own key
            keys = keys[client_ids]
        local = lambda p, c, k, m: _weighted_delta(train, p, c, k, m, axis)  # noqa: E731
        if mesh is not None:
            split, whole = NamedSharding(mesh, P(axis)), NamedSharding(mesh, P())
            clients, keys, personal = jax.reshard((clients, keys, personal), split)
            state = state._replace(params=jax.reshard(state.params, whole))
            # check_vma=False: each device differentiates its own copy of the replicated
            # model; the only cross-device sum is the explicit psum of the deltas.
            local = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(axis), P(axis), P(axis)),
                                  out_specs=(P(), P(), P(axis)), check_vma=False)
        total, count, personal = local(state.params, clients, keys, personal)
        delta = jax.tree.map(lambda t: t / jnp.maximum(count, 1.0).astype(t.dtype), total)
        updates, server_state = server.update(optax.tree.scale(-1.0, delta), state.server_state,
                                              state.params)
        return FederatedState(optax.apply_updates(state.params, updates), server_state,
                              state.round + 1), personal

    return Federated(init, jax.jit(round_fn))
