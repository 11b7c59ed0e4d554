"""Issue: no silent wrong result. Each case failed on 0.1.0 (see the issue's list)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax.core.rows import apply_row_updates
from tests._helpers import squared_errors


@pytest.mark.parametrize("inner", [optax.sgd(0.5), optax.adam(0.1)])
def test_out_of_range_indices_never_touch_a_row_under_jit(inner):
    tx = fj.indexed(inner)
    lam = jnp.arange(4.0)

    @jax.jit
    def step(lam, state, idx):
        upd, state = tx.update(jnp.ones(2), state, indices=idx)
        return apply_row_updates(lam, upd, idx), state

    state = tx.init(lam)
    new_lam, new_state = step(lam, state, jnp.array([-1, 4]))
    np.testing.assert_array_equal(new_lam, lam)  # -1 used to wrap to row 3, 4 was dropped
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)
    new_lam, _ = step(lam, state, jnp.array([-1, 1]))
    np.testing.assert_array_equal(new_lam[jnp.array([0, 2, 3])], [0.0, 2.0, 3.0])
    assert float(new_lam[1]) < 1.0  # the valid row took its descent step


def test_indexed_averaged_ignores_out_of_range_rows_under_jit():
    tx = fj.indexed_averaged(fj.indexed(optax.sgd(1.0)), fj.polyak())
    params = jnp.zeros(3)
    state = tx.init(params)
    _, new = jax.jit(lambda s, i: tx.update(jnp.ones(2), s, params, indices=i))(
        state, jnp.array([-1, 3]))
    np.testing.assert_array_equal(new.count, state.count)
    np.testing.assert_array_equal(new.average, state.average)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\)"):
        tx.update(jnp.ones(1), state, params, indices=jnp.array([3]))


@pytest.mark.parametrize("losses", [lambda p, b: (b @ p > 0), lambda p, b: (b @ p).astype(int)])
def test_integer_or_boolean_losses_are_rejected(losses):
    fl = fj.feasible_learning(losses, optax.sgd(0.1), num_samples=4, epsilon=0.1)
    with pytest.raises(TypeError, match="must return float losses"):
        fl.step(fl.init(jnp.ones(2)), jnp.ones((2, 2)), jnp.array([0, 1]))


def test_a_nan_learning_rate_skips_the_step_instead_of_poisoning_the_parameters():
    fl = fj.feasible_learning(lambda p, b: (b @ p) ** 2, optax.sgd(float("nan")),
                              num_samples=4, epsilon=0.1)
    state, info = jax.jit(fl.step)(fl.init(jnp.ones(2)), jnp.ones((2, 2)), jnp.array([0, 1]))
    assert not bool(info.ok) and int(state.skipped) == 1
    np.testing.assert_array_equal(state.params, jnp.ones(2))


@pytest.mark.parametrize("num_samples", [2.5, True, 2.0, "3"])
def test_num_samples_must_be_an_integer(num_samples):
    with pytest.raises(TypeError, match="num_samples must be an integer >= 1"):
        fj.feasible_learning(lambda p, b: b, optax.sgd(0.1), num_samples=num_samples,
                             epsilon=0.1)


def test_numpy_integer_num_samples_are_accepted():
    fl = fj.feasible_learning(lambda p, b: b, optax.sgd(0.1), num_samples=np.int64(3),
                              epsilon=0.1)
    assert fl.init(jnp.zeros(1)).multipliers["samples"].shape == (3,)


@pytest.mark.parametrize("multipliers, error, match", [
    (jnp.array([1.0, jnp.nan, 1.0]), ValueError, r"multipliers\['samples'\] must be finite"),
    (jnp.array([1, 2, 3]), TypeError, r"multipliers\['samples'\] must be a float array"),
])
def test_multipliers_must_be_finite_floats(multipliers, error, match):
    fl = fj.feasible_learning(lambda p, b: b, optax.sgd(0.1), num_samples=3, epsilon=0.1)
    with pytest.raises(error, match=match):
        fl.init(jnp.zeros(1), multipliers={"samples": multipliers})


@pytest.mark.parametrize("epsilon", [None, "0.1", float("nan"), -1.0])
def test_epsilon_must_be_a_finite_nonnegative_number(epsilon):
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0|epsilon must be "
                                         "finite and >= 0"):
        fj.feasible_learning(lambda p, b: b, optax.sgd(0.1), num_samples=3, epsilon=epsilon)


def test_mix_refuses_a_nan_coefficient():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        fj.mix(jnp.zeros(2), jnp.ones(2), float("nan"))


def test_metrics_on_empty_input_are_nan_as_documented():
    empty = jnp.zeros(0)
    assert all(np.isnan(float(v)) for v in fj.loss_summary(empty, 0.1).values())
    assert np.isnan(float(fj.metrics.quantile(empty, 0.5)) if hasattr(fj, "metrics")
                    else float(fj.metrics.quantile(empty, 0.5)))
    assert all(np.isnan(float(v)) for v in fj.metrics.multiplier_stats(empty).values())


def test_worst_class_accuracy_refuses_labels_outside_the_classes():
    logits = jnp.eye(3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        fj.metrics.worst_class_accuracy(logits, jnp.array([0, 1, 2]), 2)
    inside_jit = jax.jit(lambda y: fj.metrics.worst_class_accuracy(logits, y, 2))(
        jnp.array([0, 1, 2]))
    assert np.isnan(float(inside_jit))  # not the accuracy of the two valid samples


def _regression(n=8):
    x = jax.random.normal(jax.random.key(0), (n, 2))
    return {"x": x, "y": x @ jnp.array([1.0, -1.0])}


def test_train_refuses_a_solver_sized_for_fewer_samples_than_the_data():
    fl = fj.feasible_learning(squared_errors, optax.sgd(0.1), num_samples=4, epsilon=0.1)
    with pytest.raises(ValueError, match="has 4 multipliers .* the data has 8 samples"):
        fj.train(fl, fl.init(jnp.zeros(2)), _regression(), epochs=1, batch_size=2,
                 key=jax.random.key(0), progress=False)


@pytest.mark.parametrize("batch_size", [2.0, True, "2"])
def test_batch_size_must_be_an_integer(batch_size):
    fl = fj.feasible_learning(squared_errors, optax.sgd(0.1), num_samples=8, epsilon=0.1)
    with pytest.raises(ValueError, match="batch_size must be an int"):
        fj.train(fl, fl.init(jnp.zeros(2)), _regression(), epochs=1, batch_size=batch_size,
                 key=jax.random.key(0), progress=False)


def test_checked_solvers_work_inside_train_and_raise_on_a_bad_step():
    from jax.experimental import checkify

    fl = fj.feasible_learning(squared_errors, optax.sgd(0.1), num_samples=8, epsilon=0.1,
                              checked=True)
    state, _ = fj.train(fl, fl.init(jnp.zeros(2)), _regression(), epochs=2, batch_size=4,
                        key=jax.random.key(0), progress=False)
    assert int(state.step) == 4
    bad = _regression()
    bad["y"] = bad["y"].at[3].set(jnp.nan)
    with pytest.raises(checkify.JaxRuntimeError, match="non-finite losses or gradients"):
        fj.train(fl, fl.init(jnp.zeros(2)), bad, epochs=1, batch_size=4,
                 key=jax.random.key(0), progress=False)


def test_raise_mode_names_non_finite_gradients_of_finite_losses_eagerly():
    def loss(w, batch):  # finite value, infinite gradient at w = 0
        return jnp.sqrt(jnp.abs(w[0])) + 0.0 * batch

    fl = fj.feasible_learning(loss, optax.sgd(0.1), num_samples=2, epsilon=0.1,
                              on_nonfinite="raise")
    with pytest.raises(ValueError, match=r"gradients \(the losses were finite\) must be finite"):
        fl.step(fl.init(jnp.zeros(1)), jnp.zeros(2), jnp.array([0, 1]))


def test_all_finite_sees_every_bad_value_and_never_overflows():
    from feasjax.core.dual_step import all_finite
    big = jnp.full((1000,), 3e38, jnp.float32)  # their sum overflows; each one is finite
    assert bool(all_finite(big, {"w": -big}))
    for bad in (jnp.inf, -jnp.inf, jnp.nan):
        assert not bool(all_finite(big, {"w": big.at[17].set(bad)}))
        assert not bool(all_finite(jnp.zeros(3), jnp.array(bad, jnp.bfloat16)))
        assert not bool(jax.jit(all_finite)(jnp.ones((2, 2), jnp.complex64).at[1, 0].set(bad)))
    assert bool(all_finite(jnp.arange(3), ())) and bool(all_finite())  # no float leaf: true


def test_a_skipped_step_leaves_the_parameters_bit_for_bit():
    # The solver selects the old parameters on a skipped step (not old + 0, which would turn
    # -0.0 into 0.0): the state of a step with a NaN loss is the state before it.
    params = jnp.array([-0.0, 1.5, -2.0])
    solver = fj.feasible_learning(lambda w, b: (w - b) ** 2, optax.sgd(0.1, momentum=0.9),
                                  num_samples=3, epsilon=0.1)
    state = solver.init(params)
    new, info = jax.jit(solver.step)(state, jnp.array([1.0, jnp.nan, 0.0]), jnp.arange(3))
    assert not bool(info.ok) and int(new.skipped) == 1
    for got, before in zip(jax.tree.leaves(new._replace(step=0, skipped=0)),
                           jax.tree.leaves(state._replace(step=0, skipped=0))):
        assert np.asarray(got).tobytes() == np.asarray(before).tobytes()
