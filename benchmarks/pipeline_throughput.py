"""How fast the Grain pipeline (:class:`feasjax.data.pipeline.Pipeline`) delivers digits
minibatches, against how fast a jitted FL step on the MLP consumes them.

The pipeline must not be the bottleneck of the engine's streamed epochs: batches per second of
the pipeline alone (shuffle, gather the rows and their indices) over steps per second of the
jitted, donated FL step on one batch, both measured in this process (medians of ``--repeats``).

Usage::

    python benchmarks/pipeline_throughput.py --json pipeline.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import feasjax as fj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    data = fj.load_dataset("digits")
    rows = {"x": data.x_train.astype("float32"), "y": data.y_train}
    pipe = fj.data.Pipeline(rows, batch_size=args.batch_size, seed=0)
    graphdef, params = nnx.split(fj.MLP(64, [64], 10, rngs=nnx.Rngs(0)))
    fl = fj.feasible_learning(fj.per_sample_loss_fn(graphdef), optax.sgd(0.05, momentum=0.9),
                              num_samples=pipe.num_samples, epsilon=0.1)
    step = jax.jit(fl.step, donate_argnums=0)
    batch = jax.device_put(pipe.epoch(0)[0])
    idx = batch.pop("index")
    state, _ = step(fl.init(params), batch, idx)
    jax.block_until_ready(state)

    def pipeline_us():
        start, count = time.perf_counter(), 0
        for epoch in range(30):
            for _ in pipe.batches(epoch):
                count += 1
        return (time.perf_counter() - start) / count * 1e6

    def step_us(state, n=200):
        start = time.perf_counter()
        for _ in range(n):
            state, _ = step(state, batch, idx)
        jax.block_until_ready(state)
        return state, (time.perf_counter() - start) / n * 1e6

    pipeline, steps = [], []
    for _ in range(args.repeats):  # interleaved, so that both see the same machine load
        pipeline.append(pipeline_us())
        state, us = step_us(state)
        steps.append(us)
    result = {"device": str(jax.devices()[0]), "platform": platform.platform(),
              "jax": jax.__version__, "batch_size": args.batch_size,
              "pipeline_us_per_batch": statistics.median(pipeline),
              "fl_step_us": statistics.median(steps)}
    result["pipeline_over_step_speed"] = result["fl_step_us"] / result["pipeline_us_per_batch"]
    print(f"pipeline {result['pipeline_us_per_batch']:.1f} us/batch, FL step "
          f"{result['fl_step_us']:.1f} us: the pipeline is "
          f"{result['pipeline_over_step_speed']:.1f}x faster than the step consumes")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
