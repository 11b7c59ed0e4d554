"""Primal-dual solvers on problems with known KKT points, closed-form dual dynamics and schemes."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax.core.formulations import slack


def _run(solver, state, steps, indices_fn=None, batch=None):
    """Run ``steps`` jitted steps in one lax.scan; ``indices_fn(t)`` gives each step's indices."""

    def body(state, t):
        idx = None if indices_fn is None else indices_fn(t)
        state, _ = solver.step(state, batch, idx)
        return state, None

    return jax.jit(lambda s: jax.lax.scan(body, s, jnp.arange(steps))[0])(state)


C = jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]])
D = jnp.array([1.0, 0.5])
X_EQ = C.T @ jnp.linalg.solve(C @ C.T, D)
LAMBDA_EQ = -2.0 * jnp.linalg.solve(C @ C.T, D)  # stationarity: 2x + Cᵀλ = 0

A = jnp.array([[-1.0, -1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
B_VEC = jnp.array([-1.0, 2.0, -0.7, 5.0])  # x0 + x1 >= 1 and x1 >= 0.7 active, others not
X_INEQ = jnp.array([0.3, 0.7])
LAMBDA_INEQ = jnp.array([0.6, 0.0, 0.8, 0.0])


def _equality_problem(x, batch):
    return fj.ProblemOutput(jnp.sum(x**2), {"c": fj.ConstraintValue(C @ x - D)})


def _inequality_problem(x, batch):
    return fj.ProblemOutput(jnp.sum(x**2), {"c": fj.ConstraintValue(A @ x - B_VEC)})


def _indexed_inequality_problem(x, idx):
    return fj.ProblemOutput(jnp.sum(x**2), {"c": fj.ConstraintValue(A[idx] @ x - B_VEC[idx])})


FORMULATIONS = {
    "lagrangian": (fj.lagrangian(), 0.2),
    "augmented_lagrangian": (fj.augmented_lagrangian(penalty=1.0), 1.0),
}


@pytest.mark.parametrize("scheme", ["simultaneous", "dual_then_primal"])
@pytest.mark.parametrize("form_name", sorted(FORMULATIONS))
def test_equality_constrained_least_norm(form_name, scheme):
    form, dual_lr = FORMULATIONS[form_name]
    group = fj.ConstraintGroup(size=2, kind="equality", formulation=form, reduction="sum",
                               dual_optimizer=fj.ascent(optax.sgd(dual_lr)))
    solver = fj.primal_dual(_equality_problem, optax.sgd(0.1), {"c": group}, scheme=scheme)
    state = _run(solver, solver.init(jnp.zeros(3)), 3000)
    np.testing.assert_allclose(state.params, X_EQ, atol=1e-4)
    np.testing.assert_allclose(state.multipliers["c"], LAMBDA_EQ, atol=1e-4)


@pytest.mark.parametrize("form_name", sorted(FORMULATIONS))
def test_inequality_constrained_with_active_set(form_name):
    form, dual_lr = FORMULATIONS[form_name]
    group = fj.ConstraintGroup(size=4, formulation=form, reduction="sum",
                               dual_optimizer=fj.ascent(optax.sgd(dual_lr)))
    solver = fj.primal_dual(_inequality_problem, optax.sgd(0.1), {"c": group})
    state = _run(solver, solver.init(jnp.zeros(2)), 3000)
    np.testing.assert_allclose(state.params, X_INEQ, atol=1e-4)
    np.testing.assert_allclose(state.multipliers["c"], LAMBDA_INEQ, atol=1e-4)


@pytest.mark.parametrize("form_name", sorted(FORMULATIONS))
def test_inequality_constraints_sampled_by_index(form_name):
    """Each step names the constraints in a fresh random order (indexed multipliers)."""
    form, dual_lr = FORMULATIONS[form_name]
    group = fj.ConstraintGroup(size=4, formulation=form, indexed=True, reduction="sum",
                               dual_optimizer=fj.ascent(optax.sgd(dual_lr)))
    problem = lambda x, batch: _indexed_inequality_problem(x, batch)  # noqa: E731
    solver = fj.primal_dual(problem, optax.sgd(0.1), {"c": group})
    keys = jax.random.split(jax.random.key(0), 3000)

    def body(state, key):
        idx = jax.random.permutation(key, 4)
        return solver.step(state, idx, idx)[0], None

    state = jax.jit(lambda s: jax.lax.scan(body, s, keys)[0])(solver.init(jnp.zeros(2)))
    np.testing.assert_allclose(state.params, X_INEQ, atol=1e-4)
    np.testing.assert_allclose(state.multipliers["c"], LAMBDA_INEQ, atol=1e-4)


def test_inequality_constraints_random_subsets_approach_kkt():
    """Random subsets of 2 of the 4 constraints with decaying steps: stochastic, so looser."""
    sched = optax.polynomial_schedule(0.1, 0.002, power=1.0, transition_steps=6000)
    group = fj.ConstraintGroup(size=4, indexed=True, reduction="sum",
                               dual_optimizer=fj.ascent(optax.sgd(sched)))
    solver = fj.primal_dual(lambda x, i: _indexed_inequality_problem(x, i), optax.sgd(sched),
                            {"c": group})
    keys = jax.random.split(jax.random.key(1), 6000)

    def body(state, key):
        idx = jax.random.choice(key, 4, (2,), replace=False)
        return solver.step(state, idx, idx)[0], None

    state = jax.jit(lambda s: jax.lax.scan(body, s, keys)[0])(solver.init(jnp.zeros(2)))
    np.testing.assert_allclose(state.params, X_INEQ, atol=5e-2)


def _per_sample_losses(w, batch):
    x, y = batch
    return (x @ w - y) ** 2


X = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
Y = jnp.array([1.0, -1.0, 0.5, 2.0])


def test_fixed_theta_dual_steps_closed_form_fl():
    eta, eps, k, lam0 = 0.1, 0.3, 7, jnp.array([0.2, 1.0, 0.0, 0.5])
    fl = fj.feasible_learning(_per_sample_losses, optax.set_to_zero(), num_samples=4,
                              epsilon=eps, dual_optimizer=fj.ascent(optax.sgd(eta)))
    w = jnp.array([0.3, -0.2])
    state = fl.init(w, multipliers={fj.SAMPLES: lam0})
    idx = jnp.arange(4)
    for _ in range(k):
        state, info = fl.step(state, (X, Y), idx)
    losses = _per_sample_losses(w, (X, Y))
    np.testing.assert_allclose(state.multipliers[fj.SAMPLES],
                               jnp.maximum(0.0, lam0 + k * eta * (losses - eps)), rtol=1e-5)


def test_fixed_theta_rfl_fixed_point_and_slack():
    alpha, eps = 2.0, 0.3
    rfl = fj.feasible_learning(_per_sample_losses, optax.set_to_zero(), num_samples=4,
                               epsilon=eps, formulation=fj.resilient(alpha),
                               dual_optimizer=fj.ascent(optax.sgd(0.5)))
    w = jnp.array([0.3, -0.2])
    state = _run(rfl, rfl.init(w), 200, indices_fn=lambda t: jnp.arange(4), batch=(X, Y))
    g = _per_sample_losses(w, (X, Y)) - eps
    assert (g > 0).any() and (g < 0).any()
    np.testing.assert_allclose(state.multipliers[fj.SAMPLES], alpha * jnp.maximum(g, 0),
                               rtol=1e-5, atol=1e-6)
    # The optimal slack u = λ/α absorbs exactly the positive part of the violation.
    np.testing.assert_allclose(slack(state.multipliers[fj.SAMPLES], alpha),
                               jnp.maximum(g, 0), rtol=1e-5, atol=1e-6)


def test_rfl_equals_fl_with_decoupled_decay_at_batch_rows():
    alpha, eta, eps = 4.0, 0.2, 0.1
    common = dict(num_samples=4, epsilon=eps, init_multiplier=1.0)
    rfl = fj.feasible_learning(_per_sample_losses, optax.sgd(0.05),
                               formulation=fj.resilient(alpha),
                               dual_optimizer=fj.ascent(optax.sgd(eta)), **common)
    decay = fj.ascent(optax.chain(optax.add_decayed_weights(1.0 / alpha), optax.sgd(eta)))
    fl_decay = fj.feasible_learning(_per_sample_losses, optax.sgd(0.05), dual_optimizer=decay,
                                    **common)
    a, b = rfl.init(jnp.zeros(2)), fl_decay.init(jnp.zeros(2))
    for t in range(6):
        idx = jnp.array([[0, 2], [1, 3], [3, 0]][t % 3])
        a, _ = rfl.step(a, (X[idx], Y[idx]), idx)
        b, _ = fl_decay.step(b, (X[idx], Y[idx]), idx)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-6)
    np.testing.assert_allclose(a.multipliers[fj.SAMPLES], b.multipliers[fj.SAMPLES], rtol=1e-6)


@pytest.mark.parametrize("scheme", ["simultaneous", "dual_then_primal", "primal_then_dual"])
def test_one_step_of_each_scheme_by_hand(scheme):
    lr, eta, eps = 0.1, 0.5, 0.2
    y = jnp.array([0.0, 1.0, 3.0])
    losses_fn = lambda w, batch: (w - batch) ** 2  # noqa: E731
    fl = fj.feasible_learning(losses_fn, optax.sgd(lr), num_samples=3, epsilon=eps,
                              dual_optimizer=fj.ascent(optax.sgd(eta)), scheme=scheme)
    w0, lam0 = jnp.array(0.5), jnp.array([1.0, 2.0, 0.0])
    state, _ = fl.step(fl.init(w0, {fj.SAMPLES: lam0}), y, jnp.arange(3))
    dual = lambda w: jnp.maximum(0.0, lam0 + eta * ((w - y) ** 2 - eps))  # noqa: E731
    weights = {"simultaneous": lam0, "dual_then_primal": dual(w0), "primal_then_dual": lam0}
    w1 = w0 - lr * jnp.mean(weights[scheme] * 2 * (w0 - y))
    lam1 = dual(w1) if scheme == "primal_then_dual" else dual(w0)
    np.testing.assert_allclose(state.params, w1, rtol=1e-6)
    np.testing.assert_allclose(state.multipliers[fj.SAMPLES], lam1, rtol=1e-6)


def test_sum_reduction_scales_primal_gradient_by_batch_size():
    fl_sum = fj.feasible_learning(_per_sample_losses, optax.sgd(0.01), num_samples=4,
                                  epsilon=0.1, reduction="sum")
    fl_mean = fj.feasible_learning(_per_sample_losses, optax.sgd(0.04), num_samples=4,
                                   epsilon=0.1)
    idx = jnp.arange(4)
    a, _ = fl_sum.step(fl_sum.init(jnp.ones(2)), (X, Y), idx)
    b, _ = fl_mean.step(fl_mean.init(jnp.ones(2)), (X, Y), idx)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-6)


def test_erm_runs_through_the_same_machinery():
    erm = fj.empirical_risk(_per_sample_losses, optax.sgd(0.1))
    state = _run(erm, erm.init(jnp.zeros(2)), 500, batch=(X, Y))
    w_ls = jnp.linalg.lstsq(X, Y)[0]
    np.testing.assert_allclose(state.params, w_ls, atol=1e-4)
    assert state.multipliers == {}


def test_proxy_measurement_drives_the_dual_step():
    """The dual step follows the measurement (here a 0/1 indicator), the primal the surrogate."""
    indicator = lambda w, batch: ((w - batch) ** 2 > 0.5).astype(jnp.float32)  # noqa: E731
    fl = fj.feasible_learning(lambda w, b: (w - b) ** 2, optax.set_to_zero(), num_samples=2,
                              epsilon=0.25, measurement_fn=indicator,
                              dual_optimizer=fj.ascent(optax.sgd(1.0)), init_multiplier=0.0)
    state, info = fl.step(fl.init(jnp.array(0.0)), jnp.array([0.5, 2.0]), jnp.arange(2))
    np.testing.assert_allclose(state.multipliers[fj.SAMPLES], [0.0, 0.75])
    np.testing.assert_allclose(info.aux, [0.25, 4.0])
