"""The experiment behind ``feasjax federated``: FedAvg on K clients, then every personalization.

Local models train from the global model's initialisation for ``rounds * local_steps`` steps;
every stage is jitted once and reused across seeds.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from feasjax.data.federated import FederatedData
from feasjax.experiments.builders import timed
from feasjax.federated import personalize as pz
from feasjax.federated import portfolio as pf
from feasjax.federated.config import METHODS, FederatedConfig
from feasjax.federated.rounds import client_update, federated_averaging
from feasjax.models.losses import per_sample_loss_fn, predict_fn
from feasjax.models.nets import MLP
from feasjax.training.engine import train as engine_train

__all__ = ["run_federated"]


def _summary(acc: Any, seconds: float) -> dict:
    acc = np.asarray(acc, np.float64)
    return {"mean_client_accuracy": float(acc.mean()), "worst_client_accuracy": float(acc.min()),
            "client_accuracy": acc.tolist(), "seconds": seconds}


def _stages(data: FederatedData, cfg: FederatedConfig) -> SimpleNamespace:
    d = int(np.prod(data.train["x"].shape[2:]))

    def init(seed):
        return nnx.split(MLP(d, list(cfg.hidden), data.num_classes, rngs=nnx.Rngs(seed)))

    graphdef, _ = init(0)
    loss, predict = per_sample_loss_fn(graphdef), predict_fn(graphdef)
    opt = optax.sgd(cfg.learning_rate)
    fed = federated_averaging(loss, opt, local_steps=cfg.local_steps, batch_size=cfg.batch_size,
                              mesh=cfg.mesh)
    long = client_update(loss, opt, cfg.rounds * cfg.local_steps, batch_size=cfg.batch_size)
    tune = client_update(loss, opt, cfg.finetune_steps, batch_size=cfg.batch_size)
    alphas, thetas = jnp.asarray(cfg.alphas), jnp.asarray(cfg.thetas)

    def fedavg(params, train, key):
        if cfg.mesh is not None and (extra := -data.num_clients % cfg.mesh.size):
            # Empty clients (all rows masked) weigh 0: they only pad the client axis.
            train = jax.tree.map(lambda v: jnp.pad(v, [(0, extra)] + [(0, 0)] * (v.ndim - 1)),
                                 train)

        def round_step(carry, clients, ids):  # a round: every client, in a shuffled order
            state, round_key = carry
            state, _ = fed.round(state, clients, jax.random.fold_in(round_key, state.round),
                                 client_ids=ids)
            return (state, round_key), {}

        num = train["mask"].shape[0]
        (state, _), _ = engine_train(round_step, (fed.init(jax.tree.map(jnp.copy, params)), key),
                                     train, epochs=cfg.rounds, batch_size=num, key=key,
                                     progress=False)
        return state.params

    def cat(a, b):  # two client sets as one: one trace of the program serves both
        return jax.tree.map(lambda u, v: jnp.concatenate([u, v]), a, b)

    def halves(tree, k=data.num_clients):
        return jax.tree.map(lambda v: v[:k], tree), jax.tree.map(lambda v: v[k:], tree)

    @jax.jit
    def local(params, train, test, key):
        # The local models on all training rows, and (for mix) on all but the held-out ones.
        fit, held = pz.held_out_split(train, cfg.held_out)
        models, fit_models = halves(pz.train_clients(long, params, cat(train, fit), key))
        return models, fit_models, held, pz.client_metrics(predict, models, test)[0]

    @jax.jit
    def finetune(global_params, train, test, key):
        models = pz.train_clients(tune, global_params, train, key)
        return pz.client_metrics(predict, models, test)[0]

    @jax.jit
    def mix(global_params, local_models, fit_models, held, test):
        acc, loss = pz.alpha_curve(predict, cat(fit_models, local_models), global_params,
                                   cat(held, test), alphas)
        alpha = pz.select_alpha(halves(loss)[0], alphas)  # on the held-out rows
        mixed = pz.mix_clients(local_models, global_params, alpha)
        return pz.client_metrics(predict, mixed, test)[0], alpha, halves(acc)[1]

    @jax.jit
    def portfolio(train, test, key):
        k_phi, k_init, k_run = jax.random.split(key, 3)
        phi = pf.random_features(k_phi, d, cfg.num_features)
        featurize = jax.vmap(lambda c: {**c, "x": phi(c["x"])})
        ftrain, ftest = featurize(train), featurize(test)
        pfed = federated_averaging(pf.portfolio_loss(lambda f: f), optax.sgd(
            cfg.prompt_learning_rate), local_steps=cfg.local_steps, batch_size=cfg.batch_size)

        def run(theta):
            g, personal = pf.portfolio_params(k_init, data.num_classes, cfg.num_features,
                                              data.num_clients, theta)

            def body(carry, r):
                state, personal = carry
                return pfed.round(state, ftrain, jax.random.fold_in(k_run, r), personal), None

            (state, personal), _ = jax.lax.scan(body, (pfed.init(g), personal),
                                                jnp.arange(cfg.rounds))
            prompts = jax.vmap(pf.portfolio_prompts, in_axes=(None, 0))(state.params, personal)
            return pz.client_metrics(pf.prompt_logits, prompts, ftest)[0]

        return jax.vmap(run)(thetas)  # (G, K)

    evaluate = jax.jit(lambda p, test: pz.client_metrics(predict, p, test, per_client=False)[0])
    return SimpleNamespace(init=init, evaluate=evaluate, fedavg=fedavg, local=local,
                           finetune=finetune, mix=mix, portfolio=portfolio)


def run_federated(data: FederatedData, methods: Sequence[str] = METHODS,
                  seeds: Sequence[int] = (0,), config: FederatedConfig = FederatedConfig()
                  ) -> dict:
    """Every requested personalization method for every seed: per-client test accuracies.

    Args:
      data: a :class:`feasjax.data.federated.FederatedData` (classification).
      methods: a subset of ``METHODS``: ``local``, ``global``, ``finetune``, ``mix``,
        ``portfolio``.
      seeds: seeds of the model initialisation and of the clients' minibatches.
      config: a :class:`FederatedConfig`.

    Returns:
      ``{method: [one dict per seed]}``; each dict has ``mean_client_accuracy``,
      ``worst_client_accuracy``, ``client_accuracy`` (per client) and ``seconds`` (that
      method's stages, compilation included on the first seed); ``mix`` adds ``alpha`` (per
      client), ``best_alpha`` and ``best_alpha_accuracy`` (the empirical best of the grid on
      the test rows, per client) and ``accuracy_by_alpha`` (mean over clients, per grid
      value); ``portfolio`` adds ``theta``, ``accuracy_by_theta`` and ``best_theta``.

    Example:
      >>> from feasjax.data import federated_dataset
      >>> from feasjax.federated import FederatedConfig, run_federated
      >>> data = federated_dataset("breast_cancer", num_clients=2, beta=1.0)
      >>> cfg = FederatedConfig(rounds=1, local_steps=1, num_features=4,
      ...                       alphas=(0.0, 1.0), thetas=(0.5,), theta=0.5)
      >>> out = run_federated(data, ["global"], seeds=[0], config=cfg)
      >>> sorted(out["global"][0])
      ['client_accuracy', 'mean_client_accuracy', 'seconds', 'worst_client_accuracy']
    """
    if not methods or not set(methods) <= set(METHODS):
        raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {methods!r}")
    if "portfolio" in methods and config.theta not in config.thetas:
        raise ValueError(f"config.theta={config.theta} must be one of config.thetas="
                         f"{config.thetas}")
    st = _stages(data, config)
    train = jax.tree.map(jnp.asarray, data.train)
    # Test rows padded (masked) to the training length, so that held-out and test rows stack.
    width = max(data.train["y"].shape[1], data.test["y"].shape[1])
    test = jax.tree.map(lambda v: jnp.asarray(np.pad(
        v, [(0, 0), (0, width - v.shape[1])] + [(0, 0)] * (v.ndim - 2),
        mode="constant" if v.dtype == bool else "edge")), data.test)
    out = {m: [] for m in methods}
    for seed in seeds:
        key = jax.random.key(seed)
        _, params = st.init(seed)
        g_time = l_time = 0.0
        if {"global", "finetune", "mix"} & set(methods):
            g, g_time = timed(st.fedavg, params, train, jax.random.fold_in(key, 1))
            g_acc = st.evaluate(g, test)
        if {"local", "mix"} & set(methods):
            (local_models, fit_models, held, l_acc), l_time = timed(
                st.local, params, train, test, jax.random.fold_in(key, 2))
        if "local" in methods:
            out["local"].append(_summary(l_acc, l_time))
        if "global" in methods:
            out["global"].append(_summary(g_acc, g_time))
        if "finetune" in methods:
            acc, t = timed(st.finetune, g, train, test, jax.random.fold_in(key, 3))
            out["finetune"].append(_summary(acc, g_time + t))
        if "mix" in methods:
            (acc, alpha, curve), t = timed(st.mix, g, local_models, fit_models, held, test)
            curve, alphas = np.asarray(curve), np.asarray(config.alphas)
            out["mix"].append({**_summary(acc, g_time + l_time + t),
                               "alpha": np.asarray(alpha).tolist(),
                               "best_alpha": alphas[curve.argmax(1)].tolist(),
                               "best_alpha_accuracy": float(curve.max(1).mean()),
                               "accuracy_by_alpha": curve.mean(0).tolist()})
        if "portfolio" in methods:
            by_theta, t = timed(st.portfolio, train, test, jax.random.fold_in(key, 5))
            mean = np.asarray(by_theta).mean(1)
            at = list(config.thetas).index(config.theta)
            out["portfolio"].append({**_summary(by_theta[at], t), "theta": config.theta,
                                     "accuracy_by_theta": mean.tolist(),
                                     "best_theta": float(config.thetas[int(mean.argmax())])})
    return out
