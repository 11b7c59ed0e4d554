"""The scan-compiled training loop."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from tests._helpers import linear_data, squared_errors


def _data(n=24, d=3, seed=0):
    return linear_data(n, d, seed=seed, noise=0.1)


def _fl(n=24):
    return fj.feasible_learning(squared_errors, optax.sgd(0.02), num_samples=n, epsilon=0.05)


def test_epoch_indices_are_a_permutation_prefix():
    idx = np.asarray(fj.epoch_indices(jax.random.key(3), 10, 3))
    assert idx.shape == (3, 3)
    assert len(set(idx.ravel().tolist())) == 9 and idx.min() >= 0 and idx.max() < 10
    full = np.asarray(fj.epoch_indices(jax.random.key(3), 12, 4)).ravel()
    np.testing.assert_array_equal(np.sort(full), np.arange(12))
    other = np.asarray(fj.epoch_indices(jax.random.key(4), 12, 4)).ravel()
    assert (full != other).any()


def test_loss_decreases_for_fl_and_erm():
    data = _data()
    for solver in (_fl(), fj.empirical_risk(squared_errors, optax.sgd(0.05, momentum=0.9))):
        state, hist = fj.train(solver, solver.init(jnp.zeros(3)), data, epochs=15,
                               batch_size=6, key=jax.random.key(0), epsilon=0.05,
                               progress=False)
        assert hist.mean_loss[-1] < 0.1 * hist.mean_loss[0]
    assert hist.skipped[-1] == 0


def test_scan_equals_step_by_step():
    data, solver = _data(), _fl()
    key = jax.random.key(1)
    state_scan, info = jax.jit(fj.epoch_fn(solver, 6))(solver.init(jnp.zeros(3)), data, key)
    state = solver.init(jnp.zeros(3))
    step = jax.jit(solver.step)
    for idx in fj.epoch_indices(key, 24, 6):
        state, _ = step(state, jax.tree.map(lambda a: a[idx], data), idx)
    chex.assert_trees_all_close(state_scan.params, state.params, rtol=1e-6)
    chex.assert_trees_all_close(state_scan.multipliers, state.multipliers, rtol=1e-6)
    assert info.losses.shape == (4, 6) and bool(info.ok.all())


def test_one_compilation_for_all_epochs():
    data, solver = _data(), _fl()
    traces = []
    inner = fj.epoch_fn(solver, 6)

    def counted(state, data, key):
        traces.append(1)
        return inner(state, data, key)

    runner = jax.jit(counted, donate_argnums=0)
    fj.train(solver, solver.init(jnp.zeros(3)), data, epochs=3, batch_size=6,
             key=jax.random.key(0), progress=False, epoch_runner=runner)
    assert len(traces) == 1


def test_nonfinite_raise_names_epoch_step_and_samples():
    data = _data()
    data["y"] = data["y"].at[5].set(jnp.nan)
    solver = _fl()
    with pytest.raises(FloatingPointError,
                       match=r"epoch 0, step \d+ \(global step \d+\): .*sample indices \[5\]"):
        fj.train(solver, solver.init(jnp.zeros(3)), data, epochs=2, batch_size=6,
                 key=jax.random.key(0), on_nonfinite="raise", progress=False)
    state, hist = fj.train(solver, solver.init(jnp.zeros(3)), data, epochs=2, batch_size=6,
                           key=jax.random.key(0), progress=False)
    assert hist.skipped == [1, 2]
    assert np.isfinite(np.asarray(state.multipliers[fj.SAMPLES])).all()


def test_bad_loop_arguments():
    solver = _fl()
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, 24\]"):
        fj.train(solver, solver.init(jnp.zeros(3)), _data(), epochs=1, batch_size=25,
                 key=jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fj.train(solver, solver.init(jnp.zeros(3)), _data(), epochs=0, batch_size=4,
                 key=jax.random.key(0), progress=False)
    small = _fl(n=20)  # would skip every step that touches a row >= 20
    with pytest.raises(ValueError, match=r"constraint group 'samples' has 20 multipliers \(the "
                                         r"solver's num_samples\) but the data has 24 samples; "
                                         r"build the solver with num_samples=24"):
        fj.train(small, small.init(jnp.zeros(3)), _data(), epochs=1, batch_size=4,
                 key=jax.random.key(0), progress=False)


def test_a_carry_holding_one_array_twice_is_copied_before_it_is_donated():
    w = jnp.zeros(())  # XLA refuses to donate one buffer twice (or one the data passes again)
    (a, b), _ = fj.train(lambda carry, y, idx: ((carry[0] + 1, carry[1] - 1), {}), (w, w),
                         jnp.arange(4.0), epochs=2, batch_size=2, key=jax.random.key(0),
                         progress=False)
    assert (float(a), float(b)) == (4.0, -4.0)


def test_train_compiles_once_per_solver_across_calls_and_epochs():
    erm = fj.empirical_risk(fj.per_example(lambda w, y: (w - y) ** 2), optax.sgd(0.1))
    traces = []

    def step(state, batch, idx):
        traces.append(1)  # runs only while tracing
        return erm.step(state, batch, idx)

    solver = erm._replace(step=step)
    data = jnp.arange(8.0)
    state = None
    for _ in range(3):
        state, hist = fj.train(solver, solver.init(jnp.zeros(())), data, epochs=4, batch_size=2,
                            key=jax.random.key(0), progress=False)
    assert len(traces) == 1 and len(hist.mean_loss) == 4
    assert hist.mean_loss[-1] < hist.mean_loss[0]


def test_epoch_without_duplicate_grouping_equals_the_grouping_one():
    # A shuffled epoch never repeats an index within a minibatch, so the default epoch skips
    # the dual step's duplicate grouping (a sort per step); the states must not differ.
    data = _data()
    solver = fj.feasible_learning(squared_errors, optax.sgd(0.02, momentum=0.5), num_samples=24,
                                  epsilon=0.05, dual_optimizer=fj.ascent(optax.adam(0.05)))
    key = jax.random.key(3)
    fast = jax.jit(fj.epoch_fn(solver, 6))(solver.init(jnp.zeros(3)), data, key)
    grouped = jax.jit(fj.epoch_fn(solver, 6, unique_indices=False))(
        solver.init(jnp.zeros(3)), data, key)
    chex.assert_trees_all_equal(fast, grouped)
    # A sampler that draws with replacement keeps the grouping unless told otherwise.
    def with_replacement(key, n):
        return jax.random.randint(key, (4, 6), 0, n)

    drawn = fj.epoch_fn(solver, 6, sampler=with_replacement)(solver.init(jnp.zeros(3)), data,
                                                              key)
    promised = fj.epoch_fn(solver, 6, sampler=with_replacement, unique_indices=True)(
        solver.init(jnp.zeros(3)), data, key)
    assert np.any([len(set(row)) < 6 for row in np.asarray(drawn[1].indices)])
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(drawn[0].dual_states),
                                                         jax.tree.leaves(promised[0].dual_states)))


@pytest.mark.parametrize("key", [jax.random.key(5), jax.random.PRNGKey(5),
                                 jax.random.key(5, impl="rbg")], ids=["typed", "raw", "rbg"])
def test_train_is_the_epoch_loop_with_fold_in_and_its_history_reads_the_losses(key):
    # Whatever the key's implementation, epoch e of fj.train runs fj.epoch_fn with
    # fold_in(key, e), and the history holds
    # the epoch's mean loss (NaN losses left out) and feasible fraction.
    data = _data()
    data["y"] = data["y"].at[5].set(jnp.nan)  # sample 5's steps are skipped, its loss is NaN
    solver = _fl()
    state, hist = fj.train(solver, solver.init(jnp.zeros(3)), data, epochs=3, batch_size=5,
                           key=key, epsilon=0.05, progress=False)
    ref, run = solver.init(jnp.zeros(3)), jax.jit(fj.epoch_fn(solver, 5))
    for epoch in range(3):
        ref, info = run(ref, data, jax.random.fold_in(key, epoch))
        losses = np.asarray(info.losses)
        assert hist.mean_loss[epoch] == pytest.approx(np.nanmean(losses), rel=1e-6)
        assert hist.feasible_fraction[epoch] == pytest.approx(np.mean(losses <= 0.05))
        assert hist.skipped[epoch] == int(ref.skipped)
    assert hist.skipped[-1] >= 1  # sample 5 was drawn (each epoch leaves 4 samples out)
    chex.assert_trees_all_equal(state.params, ref.params)
    chex.assert_trees_all_equal(state.multipliers, ref.multipliers)
