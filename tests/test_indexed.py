"""The indexed wrapper equals the inner optimizer run on the named rows, and touches nothing else."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax.core.rows import apply_row_updates

N, B = 10, 4
OPTIMIZERS = {
    "sgd": lambda: optax.sgd(0.1),
    "momentum": lambda: optax.sgd(0.1, momentum=0.9),
    "adam": lambda: optax.adam(0.05),
    "nupi": lambda: fj.nupi(0.1, kp=2.0, ki=1.0, nu=0.5),
    "optimistic": lambda: fj.optimistic(0.1, alpha=0.5),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_indexed_equals_inner_on_rows_and_leaves_others(name):
    inner = OPTIMIZERS[name]()
    tx = fj.indexed(inner)
    params = jnp.linspace(-1.0, 1.0, N)
    state = tx.init(params)
    # The same rows, visited three times with different gradients, against a dense run on them.
    rows = jnp.array([7, 2, 5, 0])
    sub, sub_state = params[rows], inner.init(params[rows])
    untouched = np.setdiff1d(np.arange(N), np.asarray(rows))
    for t in range(3):
        grads = jnp.sin(jnp.arange(B) + 3.0 * t)
        upd, state = tx.update(grads, state, params, indices=rows)
        params = apply_row_updates(params, upd, rows)
        sub_upd, sub_state = inner.update(grads, sub_state, sub)
        sub = optax.apply_updates(sub, sub_upd)
        np.testing.assert_allclose(params[rows], sub, rtol=1e-6)
    np.testing.assert_array_equal(params[untouched], jnp.linspace(-1.0, 1.0, N)[untouched])
    fresh = jax.vmap(inner.init)(jnp.linspace(-1.0, 1.0, N))
    for got, init in zip(jax.tree.leaves(state.inner), jax.tree.leaves(fresh)):
        np.testing.assert_array_equal(np.asarray(got)[untouched], np.asarray(init)[untouched])


def test_rows_have_their_own_counters():
    """Adam's bias correction is per row: a row seen once behaves like a fresh Adam."""
    inner = optax.adam(0.1)
    tx = fj.indexed(inner)
    params = jnp.zeros(3)
    state = tx.init(params)
    for _ in range(5):
        upd, state = tx.update(jnp.ones(1), state, params, indices=jnp.array([0]))
        params = apply_row_updates(params, upd, jnp.array([0]))
    upd, state = tx.update(jnp.ones(1), state, params, indices=jnp.array([1]))
    fresh_upd, _ = inner.update(jnp.ones(1), inner.init(jnp.zeros(1)))
    np.testing.assert_allclose(upd, fresh_upd, rtol=1e-6)
    np.testing.assert_array_equal(state.inner[0].count, [5, 1, 0])


def test_duplicate_indices_sum_gradients_and_step_once():
    tx = fj.indexed(optax.sgd(1.0, momentum=0.5))
    params = jnp.zeros(4)
    state = tx.init(params)
    idx = jnp.array([2, 1, 2])
    upd, state = tx.update(jnp.array([1.0, 10.0, 3.0]), state, params, indices=idx)
    np.testing.assert_allclose(upd, [-4.0, -10.0, -4.0])
    params = apply_row_updates(params, upd, idx)
    np.testing.assert_allclose(params, [0.0, -10.0, -4.0, 0.0])
    # The momentum trace of row 2 holds the summed gradient once.
    np.testing.assert_allclose(state.inner[0].trace, [0.0, 10.0, 4.0, 0.0])


def test_jit_equals_eager_and_no_retrace():
    tx = fj.indexed(optax.adam(0.1))
    params = jnp.arange(6.0)
    traces = []

    def step(state, grads, idx):
        traces.append(1)
        return tx.update(grads, state, params, indices=idx)

    jitted = jax.jit(step)
    s_eager = s_jit = tx.init(params)
    for t in range(3):
        idx = jnp.array([t, t + 2])
        g = jnp.array([1.0, -2.0]) * (t + 1)
        u_eager, s_eager = step(s_eager, g, idx)
        u_jit, s_jit = jitted(s_jit, g, idx)
        np.testing.assert_allclose(u_eager, u_jit, rtol=1e-6)
    assert len(traces) == 3 + 1  # three eager calls, one trace


def test_works_in_chain_and_inject_hyperparams_and_ignores_extra_args():
    tx = fj.indexed(optax.chain(optax.inject_hyperparams(optax.sgd)(learning_rate=0.5),
                                optax.scale(2.0)))
    params = jnp.zeros(3)
    state = tx.init(params)
    upd, _ = tx.update(jnp.array([1.0]), state, params, indices=jnp.array([2]), value=3.0)
    np.testing.assert_allclose(upd, [-1.0])
    outer = optax.chain(fj.indexed(optax.sgd(1.0)), optax.scale(0.5))
    upd, _ = outer.update(jnp.array([1.0]), outer.init(params), params, indices=jnp.array([0]))
    np.testing.assert_allclose(upd, [-0.5])


def test_init_accepts_shape_dtype_struct():
    tx = fj.indexed(optax.adam(0.1))
    abstract = jax.eval_shape(tx.init, jax.ShapeDtypeStruct((5,), jnp.float32))
    assert abstract.inner[0].mu.shape == (5,)
    assert abstract.inner[0].count.shape == (5,)
    assert abstract.rows.shape == (5,)


def test_pytree_rows_with_matrix_leaves():
    tx = fj.indexed(optax.sgd(1.0))
    params = {"w": jnp.zeros((4, 2)), "b": jnp.zeros(4)}
    state = tx.init(params)
    idx = jnp.array([3])
    upd, state = tx.update({"w": jnp.ones((1, 2)), "b": jnp.ones(1)}, state, params, indices=idx)
    new = apply_row_updates(params, upd, idx)
    np.testing.assert_array_equal(new["w"][3], [-1.0, -1.0])
    np.testing.assert_array_equal(new["w"][:3], 0.0)


def test_bad_indices_raise():
    tx = fj.indexed(optax.sgd(1.0))
    params = jnp.zeros(4)
    state = tx.init(params)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\).*\[4\]"):
        tx.update(jnp.ones(2), state, params, indices=jnp.array([0, 4]))
    with pytest.raises(ValueError, match=r"out-of-range values \[-1\]"):
        tx.update(jnp.ones(1), state, params, indices=jnp.array([-1]))
    with pytest.raises(TypeError, match="indices must be an integer array, got dtype float32"):
        tx.update(jnp.ones(1), state, params, indices=jnp.array([1.0]))
    with pytest.raises(ValueError, match=r"indices must be 1-D"):
        tx.update(jnp.ones(1), state, params, indices=jnp.array([[1]]))
    with pytest.raises(ValueError, match=r"updates must have leading axis of size 2"):
        tx.update(jnp.ones(3), state, params, indices=jnp.array([0, 1]))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\)"):
        apply_row_updates(params, jnp.ones(1), jnp.array([9]))


def test_out_of_range_inside_jit_is_never_written():
    """Inside jit the range cannot raise; the row is not written and its update is NaN."""
    tx = fj.indexed(optax.sgd(1.0))
    params = jnp.zeros(4)
    state = tx.init(params)
    upd, _ = jax.jit(lambda s, i: tx.update(jnp.ones(1), s, params, indices=i))(
        state, jnp.array([7]))
    assert np.isnan(np.asarray(upd)).all()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_out_of_range_inside_jit_is_nan_without_params(name):
    """README: an index outside [0, N) reads as NaN, also when update gets no params and the
    inner optimizer keeps no per-row state (sgd) from which N could be read."""
    tx = fj.indexed(OPTIMIZERS[name]())
    state = tx.init(jnp.zeros(N))
    step = jax.jit(lambda s, i: tx.update(jnp.ones(3), s, indices=i))
    upd, new = step(state, jnp.array([1, N, -1]))
    assert np.isfinite(upd[0]) and np.isnan(upd[1:]).all()
    _, only_row_1 = jax.jit(lambda s: tx.update(jnp.ones(1), s, indices=jnp.array([1])))(state)
    chex.assert_trees_all_equal(new, only_row_1)  # the bad rows wrote nothing


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_unique_indices_promise_gives_the_same_rows_without_grouping(name):
    tx, rows = fj.indexed(OPTIMIZERS[name]()), jnp.array([7, 2, 5, 0])
    params, grads = jnp.linspace(-1.0, 1.0, N), jnp.sin(jnp.arange(B) + 1.0)
    state = tx.init(params)
    grouped = tx.update(grads, state, params, indices=rows)
    promised = tx.update(grads, state, params, indices=rows, unique_indices=True)
    chex.assert_trees_all_equal(promised, grouped)
    # The promise is what skips grouping: with a repeated row the two differ.
    tx, repeated = fj.indexed(optax.sgd(1.0)), jnp.array([2, 2, 5, 0])
    honest = tx.update(grads, tx.init(params), params, indices=repeated)[0]
    broken = tx.update(grads, tx.init(params), params, indices=repeated, unique_indices=True)[0]
    assert float(honest[0]) == float(honest[1]) == -float(grads[0] + grads[1])
    assert float(broken[0]) == -float(grads[0])


def test_row_helpers():
    # The cases the helpers' docstrings showed before they became one-line private docs.
    from feasjax.core import rows

    first, is_first = rows.unique_rows(jnp.array([4, 2, 4]))
    assert first.tolist() == [0, 1, 0] and is_first.tolist() == [True, True, False]
    combined = rows.combine_duplicates(jnp.array([1.0, 2.0, 3.0]), jnp.array([7, 5, 7]))
    assert combined.tolist() == [4.0, 2.0, 4.0]
    assert rows.in_range(jnp.array([-1, 0, 3, 4]), 4).tolist() == [4, 0, 3, 4]
    assert rows.gather_rows({"a": jnp.arange(5.0)}, jnp.array([3, -1]))["a"][0] == 3.0
    assert jnp.isnan(rows.gather_rows(jnp.arange(5.0), jnp.array([-1]))[0])
    scattered = rows.scatter_rows(jnp.zeros(4), jnp.array([5.0, 6.0]), jnp.array([0, 2]))
    assert scattered.tolist() == [5.0, 0.0, 6.0, 0.0]
    added = apply_row_updates(jnp.ones(3), jnp.array([2.0, 2.0]), jnp.array([1, 1]))
    assert added.tolist() == [1.0, 3.0, 1.0]
    state = fj.indexed(optax.adam(0.1)).init(jnp.zeros(3))
    _, new = rows.update_rows(optax.adam(0.1), jnp.ones(1), state, jnp.array([2]))
    assert rows.write_rows(state, new, jnp.array([2])).inner[0].count.tolist() == [0, 0, 1]
