"""A dual vector of any size costs O(batch) per step: the compiled loop only scatters into it."""
import re

import jax
import jax.numpy as jnp
import optax
import pytest

import feasjax as fj
from tests._helpers import squared_errors

N = 100_003  # a size no other array in the program has


@pytest.mark.parametrize("dual", ["sgd", "nupi"])
def test_compiled_epoch_touches_the_dual_state_only_by_scatter(dual):
    dual_tx = {"sgd": fj.ascent(optax.sgd(0.1)),
               "nupi": fj.ascent(fj.nupi(0.1, kp=1.0, nu=0.5))}[dual]
    fl = fj.feasible_learning(squared_errors, optax.sgd(0.1),
                              num_samples=N, epsilon=0.1, dual_optimizer=dual_tx)
    data = {"x": jnp.ones((64, 3)), "y": jnp.ones(64)}

    def run(state, batches):
        def body(state, idx):
            return fl.step(state, jax.tree.map(lambda a: a[idx % 64], data), idx)[0], None

        return jax.lax.scan(body, state, batches)[0]

    hlo = jax.jit(run, donate_argnums=0).lower(
        fl.init(jnp.zeros(3)), jnp.zeros((4, 16), jnp.int32)).compile().as_text()
    producers = set()
    for line in hlo.splitlines():
        match = re.search(r"= \w+\[%d\]\S* ([\w-]+)\(" % N, line)
        if match:
            op = match.group(1)
            producers.add("scatter-fusion" if op == "fusion" and "scatter" in line else op)
    assert producers, "the dual state should appear in the compiled program"
    # No copy, broadcast, select or reduction over N: only the donated buffers and scatters.
    assert producers <= {"parameter", "get-tuple-element", "scatter", "scatter-fusion",
                         "tuple", "bitcast"}, producers
