"""Formulation terms and penalty growth (the public API's documentation contract is in
test_api.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax.core import defaults


def test_quadratic_penalty_minimiser_in_closed_form():
    # min x² + ρ/2 max(0, 1 − x)²  ->  x* = ρ / (2 + ρ)
    rho = 3.0

    def problem(x, batch):
        return fj.ProblemOutput(x**2, {"c": fj.ConstraintValue(1.0 - x[None])})

    group = fj.ConstraintGroup(size=1, formulation=fj.quadratic_penalty(rho))
    solver = fj.primal_dual(problem, optax.sgd(0.05), {"c": group})
    state = solver.init(jnp.array(0.0))
    step = jax.jit(solver.step)
    for _ in range(400):
        state, _ = step(state, None)
    assert float(state.params) == pytest.approx(rho / (2 + rho), abs=1e-5)
    # No multipliers: they stay where they started.
    assert float(state.multipliers["c"][0]) == defaults.INIT_MULTIPLIER


def test_augmented_lagrangian_terms_and_penalty_growth():
    form = fj.augmented_lagrangian(penalty=2.0, growth=10.0, tolerance=0.5, patience=2,
                                   atol=0.05, max_penalty=50.0)
    state = form.init()
    lam, g = jnp.array([1.0, 0.0]), jnp.array([0.5, -2.0])
    # d/dg of the inequality term is max(0, λ + ρ g).
    cot = jax.grad(lambda g: jnp.sum(form.primal_term(lam, g, state, "inequality")))(g)
    np.testing.assert_allclose(cot, [2.0, 0.0])
    cot_eq = jax.grad(lambda g: jnp.sum(form.primal_term(lam, g, state, "equality")))(g)
    np.testing.assert_allclose(cot_eq, [2.0, -4.0])
    np.testing.assert_allclose(form.dual_gradient(lam, g, state, "equality"), [1.0, -4.0])
    # Windows of 2 dual steps; v = the window's largest norm ||max(0, g)||, r = the previous v.
    # The negative entries do not count for inequalities.
    windows = [
        ([1.0, -3.0], [0.8]),  # v = 1.0, r = inf: first window, no growth      -> ρ = 2
        ([0.3], [0.4, -1.0]),  # v = 0.4 <= 0.5 * 1.0: sufficient decrease      -> ρ = 2
        ([0.1], [0.3]),        # v = 0.3 > 0.5 * 0.4: stalled                   -> ρ = 20
        ([0.25], [0.2]),       # v = 0.25 > 0.5 * 0.3: stalled, capped          -> ρ = 50
        ([0.04], [0.03]),      # v = 0.04 > 0.5 * 0.25 but <= atol: converged   -> ρ = 50
    ]
    expected = [(2.0, 2.0), (2.0, 2.0), (2.0, 20.0), (20.0, 50.0), (50.0, 50.0)]
    refs = [1.0, 0.4, 0.3, 0.25, 0.04]
    for (first, second), (mid, end), ref in zip(windows, expected, refs):
        state = form.update_state(state, jnp.array(first), "inequality")
        assert float(state.penalty) == mid  # ρ changes only at the end of a window
        assert int(state.count) == 1
        state = form.update_state(state, jnp.array(second), "inequality")
        assert float(state.penalty) == end
        assert float(state.reference) == pytest.approx(ref)
        assert int(state.count) == 0 and float(state.window_max) == 0.0


def test_augmented_lagrangian_fixed_penalty_by_default():
    form = fj.augmented_lagrangian(penalty=3.0)
    state, update = form.init(), jax.jit(form.update_state, static_argnums=2)
    for _ in range(250):  # violations that never decrease: growth = 1 keeps ρ
        state = update(state, jnp.array([1.0]), "equality")
    assert float(state.penalty) == 3.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(growth=0.5), "growth must be >= 1"),
    (dict(tolerance=0.0), r"tolerance must be in \(0, 1\]"),
    (dict(patience=0), "patience must be a positive int, got patience=0"),
    (dict(atol=-1.0), "atol must be finite and >= 0"),
    (dict(max_penalty=0.5), "max_penalty must be >= penalty"),
])
def test_augmented_lagrangian_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fj.augmented_lagrangian(1.0, **kwargs)


def test_resilient_dual_gradient_is_relaxed_violation():
    form = fj.resilient(alpha=4.0)
    np.testing.assert_allclose(
        form.dual_gradient(jnp.array([2.0]), jnp.array([1.0]), form.init(), "inequality"), [0.5])
