"""Images per second of ResNet-18 training steps: plain Flax + Optax ERM against feasjax ERM, FL
and RFL through the engine, and of the Grain pipeline alone.

The reference is an ERM step written here without feasjax (``nnx.split`` once, a jitted
``lax.scan`` over an epoch's minibatches with the state donated, SGD with momentum 0.9 and
weight decay 5e-4, BatchNorm statistics threaded): the cost of Feasible Learning at the
paper's scale is the ratio of FL's images/s to it. feasjax runs ``fj.train`` (one compiled
epoch per call) with the same model, optimizer and batches; the pipeline is
:class:`feasjax.data.pipeline.Pipeline` over host arrays. Every figure is a median over
``--repeats`` epochs after a compiled warm-up epoch, the configurations measured round-robin.

On a CPU the sizes are tiny (the widths and N below, recorded in the JSON); on an accelerator
the defaults are the paper's: widths (64, 128, 256, 512), N = 50,000 images of 32x32x3.

Usage::

    PYTHONPATH=. python benchmarks/resnet_throughput.py --json resnet.json          # CPU sizes
    PYTHONPATH=. python benchmarks/resnet_throughput.py --full --json resnet.json   # the paper's
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import feasjax as fj


def _optimizer() -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.1, momentum=0.9))


def _plain_epoch(graphdef, batch_size: int, steps: int):
    """An epoch of the plain Flax + Optax ERM step, no feasjax: ``(carry, data, key)``."""
    tx = _optimizer()

    def loss_fn(params, state, x, y):
        model = nnx.merge(graphdef, params, state, copy=True)
        model.train()
        logits = model(x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, nnx.state(model, nnx.Not(nnx.Param))

    def step(carry, idx, data):
        params, opt_state, state = carry
        grads, state = jax.grad(loss_fn, has_aux=True)(params, state, data["x"][idx],
                                                      data["y"][idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, state), None

    def epoch(carry, data, key):
        perm = jax.random.permutation(key, data["y"].shape[0])[:steps * batch_size]
        carry, _ = jax.lax.scan(lambda c, i: step(c, i, data), carry,
                                perm.reshape(steps, batch_size))
        return carry

    return jax.jit(epoch, donate_argnums=0)


def _solver(method: str, graphdef, n: int):
    loss = fj.per_sample_loss_fn(graphdef)
    if method == "erm":
        return fj.empirical_risk(loss, _optimizer())
    return fj.feasible_learning(loss, _optimizer(), num_samples=n, epsilon=0.5,
                                dual_optimizer=fj.nupi(1e-4), init_multiplier=0.0,
                                formulation=fj.resilient(1.0) if method == "rfl" else None)


def measure(widths, blocks, n: int, batch_size: int, dtype, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    data = {"x": jnp.asarray(x, dtype), "y": jnp.asarray(y)}
    model = fj.ResNet((32, 32, 3), 10, widths=widths, blocks=blocks, dtype=dtype,
                      rngs=nnx.Rngs(0))
    graphdef, params, state = fj.models.split_model(model)
    steps = n // batch_size
    copy = lambda tree: jax.tree.map(jnp.copy, tree)  # noqa: E731 - every run its own buffers
    plain = _plain_epoch(graphdef, batch_size, steps)
    carries = {"plain_erm": (copy(params), _optimizer().init(params), copy(state))}
    solvers = {m: _solver(m, graphdef, n) for m in ("erm", "fl", "rfl")}
    for m, solver in solvers.items():
        carries[m] = solver.init(copy(params), model_state=copy(state))

    def run(name, epoch):
        key = jax.random.key(epoch)
        start = time.perf_counter()
        if name == "plain_erm":
            carries[name] = jax.block_until_ready(plain(carries[name], data, key))
        else:
            carries[name], _ = fj.train(solvers[name], carries[name], data, epochs=1,
                                        batch_size=batch_size, key=key, progress=False)
            jax.block_until_ready(carries[name])
        return steps * batch_size / (time.perf_counter() - start)

    seconds = {name: [] for name in carries}
    for name in carries:  # compile
        run(name, 0)
    for r in range(repeats):
        for name in carries:
            seconds[name].append(run(name, r + 1))
    pipe = fj.data.Pipeline({"x": x, "y": y}, batch_size=batch_size, seed=0)
    start = time.perf_counter()
    count = sum(1 for e in range(repeats) for _ in pipe.batches(e))
    pipeline = count * batch_size / (time.perf_counter() - start)
    images = {name: statistics.median(v) for name, v in seconds.items()}
    return {"plain_erm_images_per_s": images["plain_erm"],
            "feasjax_erm_images_per_s": images["erm"], "fl_images_per_s": images["fl"],
            "rfl_images_per_s": images["rfl"], "pipeline_images_per_s": pipeline,
            "fl_over_plain_erm": images["fl"] / images["plain_erm"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="the paper's sizes (for an accelerator): widths 64-512, N 50,000")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 256, 1024])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    widths, n = ((64, 128, 256, 512), 50_000) if args.full else ((4, 8, 8, 16), 2048)
    blocks = (2, 2, 2, 2)
    report = {"device": str(jax.devices()[0]), "platform": platform.platform(),
              "jax": jax.__version__, "sizes": {"widths": list(widths), "blocks": list(blocks),
                                                "num_samples": n, "image": [32, 32, 3],
                                                "scaled_down": not args.full},
              "results": {}}
    for dtype in args.dtypes:
        for batch in args.batches:
            result = measure(widths, blocks, n, batch, jnp.dtype(dtype), args.repeats)
            report["results"][f"{dtype}/{batch}"] = result
            print(f"{dtype:8s} batch {batch:5d}: plain ERM {result['plain_erm_images_per_s']:9.1f}"
                  f"  feasjax ERM {result['feasjax_erm_images_per_s']:9.1f}  FL "
                  f"{result['fl_images_per_s']:9.1f}  RFL {result['rfl_images_per_s']:9.1f}  "
                  f"pipeline {result['pipeline_images_per_s']:9.0f} images/s; FL/plain "
                  f"{result['fl_over_plain_erm']:.3f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
