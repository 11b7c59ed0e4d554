"""Donation: every state an ``init`` builds can be donated to a user's jitted step.

XLA refuses to donate one buffer twice, so no ``init`` may put one buffer in two fields, nor
hand back a buffer of the params it was given (the user donates those too). ``fj.train``'s
``unalias`` used to hide such states; here the user's own step meets them as they are.
"""
import jax
import jax.numpy as jnp
import optax
import pytest

import feasjax as fj
from feasjax.core.rows import apply_row_updates

N, IDX = 4, jnp.array([0, 2])
AVERAGERS = {
    "ema": lambda: fj.ema(0.9),
    "polyak": lambda: fj.polyak(),
    "polyak5": lambda: fj.polyak(5),
    "tail_polyak": lambda: fj.tail_polyak(10, 0.5),
    "lawa": lambda: fj.lawa(3, 2),
    "swa": lambda: fj.swa(2, 3),
}


def _lam():
    return jnp.arange(N, dtype=jnp.float32)


def _model():
    return {"w": jnp.ones(3), "b": jnp.zeros(())}


def _cases():
    """name -> () -> (tx, params, grads, extra update args); grads of shape (2,) are rows."""
    rows, dense, kw = jnp.ones(2), jnp.ones(N), {"indices": IDX}
    cases = {}
    for name, avg in AVERAGERS.items():
        cases[f"averaged-{name}"] = lambda avg=avg: (
            fj.averaged(optax.sgd(0.1, momentum=0.9), avg()), _model(), _model(), {})
        cases[f"indexed_averaged-{name}"] = lambda avg=avg: (
            fj.indexed_averaged(optax.sgd(0.1), avg()), _lam(), dense, kw)
        cases[f"indexed_averaged-indexed-{name}"] = lambda avg=avg: (
            fj.indexed_averaged(fj.indexed(fj.ascent(optax.sgd(0.1))), avg()), _lam(), rows, kw)
    duals = {"ascent": lambda: fj.ascent(optax.sgd(0.1, momentum=0.9)),
             "nupi": lambda: fj.nupi(0.1, kp=1.0), "optimistic": lambda: fj.optimistic(0.1),
             "sgd": lambda: optax.sgd(0.1), "adam": lambda: optax.adam(0.1),
             "averaged-lawa": lambda: fj.ascent(fj.averaged(optax.sgd(0.1), fj.lawa(2, 1)))}
    for name, dual in duals.items():
        cases[f"{name}"] = lambda dual=dual: (dual(), _lam(), dense, {})
        cases[f"indexed-{name}"] = lambda dual=dual: (fj.indexed(dual()), _lam(), rows, kw)
    cases["feasible"] = lambda: (
        fj.feasible(optax.adam(0.1), num_samples=N, epsilon=0.1,
                    dual_optimizer=fj.ascent(fj.averaged(optax.sgd(0.1), fj.lawa(2, 1)))),
        _model(), _model(), {"losses": jnp.ones(2), "indices": IDX})
    cases["constrained"] = lambda: (
        fj.constrained(fj.averaged(optax.sgd(0.1), fj.polyak(3)), {
            "dense": fj.ConstraintGroup(size=2, dual_optimizer=fj.optimistic(0.1)),
            "rows": fj.ConstraintGroup(size=N, indexed=True, dual_optimizer=fj.nupi(0.1))}),
        _model(), _model(),
        {"violations": {"dense": jnp.ones(2), "rows": jnp.ones(2)}, "indices": IDX})
    return cases


CASES = _cases()


def _buffers(tree):
    return [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(tree)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_init_state_can_be_donated_with_the_params(name):
    tx, params, grads, extra = CASES[name]()
    state = tx.init(params)
    state_buffers, param_buffers = _buffers(state), _buffers(params)
    assert len(set(state_buffers)) == len(state_buffers), "init put one buffer in two fields"
    assert not set(state_buffers) & set(param_buffers), "init kept a buffer of the params"

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params, **extra)
        if jax.tree.leaves(grads)[0].shape == IDX.shape:  # fj.indexed's (B,) row updates
            return apply_row_updates(params, updates, IDX), state
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    for _ in range(2):
        params, state = step(params, state, grads)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((params, state)))


def test_primal_dual_state_can_be_donated():
    def problem(x, batch):
        del batch
        return fj.ProblemOutput(jnp.sum(x**2), {"eq": fj.ConstraintValue(x[:1] + x[1:] - 1)})

    solver = fj.primal_dual(problem, fj.averaged(optax.sgd(0.1), fj.lawa(2, 1)),
                            {"eq": fj.ConstraintGroup(size=1, kind="equality")})
    state = solver.init(jnp.zeros(2))
    assert len(set(_buffers(state))) == len(_buffers(state))
    step = jax.jit(solver.step, donate_argnums=0)
    for _ in range(2):
        state, _ = step(state, None)


def test_bootstrap_state_can_be_donated():
    # The main chain's params and its Polyak-Ruppert average started as one buffer (the params).
    loss = lambda theta, z: 0.5 * (z[0] - theta[0]) ** 2
    boot = fj.uncertainty.multiplier_bootstrap(loss, 2, learning_rate=0.5, burn_in=1)
    params = jnp.zeros(1)
    state = boot.init(params, jax.random.key(0))
    assert len(set(_buffers(state))) == len(_buffers(state)), "init put one buffer in two fields"
    assert not set(_buffers(state)) & set(_buffers(params)), "init kept a buffer of the params"
    step = jax.jit(boot.step, donate_argnums=0)
    for _ in range(2):
        state = step(state, jnp.ones((3, 1)))
    assert bool(jnp.all(jnp.isfinite(state.main.average)))
