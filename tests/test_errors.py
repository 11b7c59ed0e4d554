"""Bad input raises a clear error at the public entry point; inside jit it is never silent."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import checkify

import feasjax as fj

X = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
Y = jnp.array([1.0, -1.0, 0.5, 2.0])


def losses_fn(w, batch):
    x, y = batch
    return (x @ w - y) ** 2


def _fl(**kw):
    return fj.feasible_learning(losses_fn, optax.sgd(0.1), num_samples=4, epsilon=0.1, **kw)


def test_out_of_range_indices_raise_eagerly():
    fl = _fl()
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\), got out-of-range values \[4\]"):
        fl.step(fl.init(jnp.zeros(2)), (X[:2], Y[:2]), jnp.array([0, 4]))


def test_float_indices_raise():
    fl = _fl()
    with pytest.raises(TypeError, match="indices must be an integer array, got dtype float32"):
        fl.step(fl.init(jnp.zeros(2)), (X[:2], Y[:2]), jnp.array([0.0, 1.0]))


def test_missing_indices_raise():
    fl = _fl()
    with pytest.raises(ValueError, match="indices are required for the indexed constraint group"):
        fl.step(fl.init(jnp.zeros(2)), (X, Y))


def test_losses_of_wrong_length_raise():
    fl = _fl()
    with pytest.raises(ValueError, match=r"violations must have shape \(2,\) \(one per index\), "
                                         r"got \(4,\)"):
        fl.step(fl.init(jnp.zeros(2)), (X, Y), jnp.array([0, 1]))


def test_losses_of_wrong_rank_raise():
    fl = fj.feasible_learning(lambda w, b: jnp.ones((2, 2)), optax.sgd(0.1), num_samples=4,
                              epsilon=0.1)
    with pytest.raises(ValueError, match=r"per_sample_loss must return a 1-D array.*\(2, 2\)"):
        fl.step(fl.init(jnp.zeros(2)), (X, Y), jnp.array([0, 1]))


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: fj.feasible_learning(losses_fn, optax.sgd(0.1), num_samples=4, epsilon=-0.1),
         r"epsilon must be finite and >= 0, got epsilon=-0.1"),
        (lambda: fj.resilient(alpha=-1.0), r"alpha must be finite and > 0, got alpha=-1.0"),
        (lambda: fj.resilient(alpha=0.0), r"alpha must be finite and > 0"),
        (lambda: fj.feasible_learning(losses_fn, optax.sgd(0.1), num_samples=0, epsilon=0.1),
         "num_samples must be an integer >= 1, got num_samples=0"),
        (lambda: _fl(scheme="alternating"), "scheme must be one of"),
        (lambda: _fl(reduction="max"), "reduction must be one of"),
        (lambda: _fl(on_nonfinite="ignore"), "on_nonfinite must be 'skip' or 'raise'"),
        (lambda: fj.augmented_lagrangian(penalty=1.0, growth=0.5), "growth must be >= 1"),
        (lambda: fj.quadratic_penalty(penalty=float("nan")), "penalty must be finite"),
        (lambda: fj.primal_dual(lambda p, b: None, optax.sgd(0.1),
                                {"c": fj.ConstraintGroup(size=2, kind="eq")}),
         "kind must be one of"),
    ],
)
def test_bad_configuration_raises(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_mismatched_multipliers_raise():
    fl = _fl()
    with pytest.raises(ValueError, match=r"multipliers\['samples'\] must have shape \(4,\), got \(3,\)"):
        fl.init(jnp.zeros(2), multipliers={fj.SAMPLES: jnp.ones(3)})
    with pytest.raises(ValueError, match=r"multipliers must be a dict with keys \['samples'\]"):
        fl.init(jnp.zeros(2), multipliers={"other": jnp.ones(4)})
    state = fl.init(jnp.zeros(2))
    bad = state._replace(multipliers={fj.SAMPLES: jnp.ones(5)})
    with pytest.raises(ValueError, match=r"must have shape \(4,\), got \(5,\)"):
        fl.step(bad, (X[:1], Y[:1]), jnp.array([0]))


def test_nonfinite_losses_raise_naming_the_samples():
    fl = _fl(on_nonfinite="raise")
    y = Y.at[2].set(jnp.nan)
    with pytest.raises(ValueError, match=r"non-finite losses/violations at sample indices \[3\]"):
        fl.step(fl.init(jnp.zeros(2)), (X[1:], y[1:]), jnp.array([1, 3, 0]))


@pytest.mark.parametrize("jit", [False, True])
def test_nonfinite_step_is_skipped_and_counted(jit):
    fl = _fl()
    step = jax.jit(fl.step) if jit else fl.step
    state = fl.init(jnp.ones(2))
    y = Y.at[1].set(jnp.inf)
    new, info = step(state, (X, y), jnp.arange(4))
    assert not bool(info.ok) and not bool(info.finite)
    assert int(new.skipped) == 1 and int(new.step) == 1
    chex.assert_trees_all_equal(new.params, state.params)
    chex.assert_trees_all_equal(new.multipliers, state.multipliers)
    chex.assert_trees_all_equal(new.dual_states, state.dual_states)


def test_out_of_range_indices_inside_jit_skip_the_step():
    fl = _fl()
    state = fl.init(jnp.ones(2))
    new, info = jax.jit(fl.step)(state, (X[:2], Y[:2]), jnp.array([0, 9]))
    assert not bool(info.indices_valid) and int(new.skipped) == 1
    chex.assert_trees_all_equal(new.multipliers, state.multipliers)
    chex.assert_trees_all_equal(new.params, state.params)


def test_checked_mode_raises_inside_jit():
    fl = _fl(checked=True)
    step = checkify.checkify(jax.jit(fl.step))
    state = fl.init(jnp.ones(2))
    err, _ = step(state, (X[:2], Y[:2]), jnp.array([0, 1]))
    err.throw()  # valid input: no error
    err, _ = step(state, (X[:2], Y[:2]), jnp.array([0, 9]))
    with pytest.raises(checkify.JaxRuntimeError, match="indices out of range at step 0"):
        err.throw()
    err, _ = step(state, (X[:2], Y[:2].at[0].set(jnp.nan)), jnp.array([0, 1]))
    with pytest.raises(checkify.JaxRuntimeError, match="non-finite losses or gradients"):
        err.throw()


class JitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_fl_and_rfl_steps_jit_equals_eager(self):
        for form in (fj.lagrangian(), fj.resilient(2.0)):
            fl = fj.feasible_learning(losses_fn, optax.adam(0.05), num_samples=4, epsilon=0.1,
                                      formulation=form,
                                      dual_optimizer=fj.ascent(fj.nupi(0.1, kp=1.0, nu=0.5)))
            step = self.variant(fl.step)
            ref_state = state = fl.init(jnp.array([0.2, -0.1]))
            for t in range(4):
                idx = jnp.array([[0, 1], [2, 3], [1, 2], [3, 0]][t])
                state, _ = step(state, (X[idx], Y[idx]), idx)
                ref_state, _ = fl.step(ref_state, (X[idx], Y[idx]), idx)
            chex.assert_trees_all_close(state.params, ref_state.params, rtol=1e-6)
            chex.assert_trees_all_close(state.multipliers, ref_state.multipliers, rtol=1e-6)


def test_donated_step_does_not_retrace():
    fl = _fl()
    traces = []

    def step(state, batch, idx):
        traces.append(1)
        return fl.step(state, batch, idx)

    jitted = jax.jit(step, donate_argnums=0)
    state = fl.init(jnp.zeros(2))
    for t in range(3):
        idx = jnp.array([t, t + 1])
        state, _ = jitted(state, (X[idx], Y[idx]), idx)
    assert len(traces) == 1
    assert np.isfinite(np.asarray(state.multipliers[fj.SAMPLES])).all()
