"""Formulation terms, penalty growth and the public API's documentation contract."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj


def test_quadratic_penalty_minimiser_in_closed_form():
    # min x² + ρ/2 max(0, 1 − x)²  ->  x* = ρ / (2 + ρ)
    rho = 3.0
    problem = lambda x, b: fj.ProblemOutput(x**2, {"c": fj.ConstraintValue(1.0 - x[None])})  # noqa: E731
    solver = fj.primal_dual(problem, optax.sgd(0.05),
                            {"c": fj.ConstraintGroup(size=1, formulation=fj.quadratic_penalty(rho))})
    state = solver.init(jnp.array(0.0))
    step = jax.jit(solver.step)
    for _ in range(400):
        state, _ = step(state, None)
    assert float(state.params) == pytest.approx(rho / (2 + rho), abs=1e-5)
    assert float(state.multipliers["c"][0]) == 0.0  # no multipliers move


def test_augmented_lagrangian_terms_and_penalty_growth():
    form = fj.augmented_lagrangian(penalty=2.0, growth=10.0, tolerance=0.5, max_penalty=50.0)
    state = form.init()
    lam, g = jnp.array([1.0, 0.0]), jnp.array([0.5, -2.0])
    # d/dg of the inequality term is max(0, λ + ρ g).
    cot = jax.grad(lambda g: jnp.sum(form.primal_term(lam, g, state, "inequality")))(g)
    np.testing.assert_allclose(cot, [2.0, 0.0])
    cot_eq = jax.grad(lambda g: jnp.sum(form.primal_term(lam, g, state, "equality")))(g)
    np.testing.assert_allclose(cot_eq, [2.0, -4.0])
    np.testing.assert_allclose(form.dual_gradient(lam, g, state, "equality"), [1.0, -4.0])
    state = form.update_state(state, jnp.array([1.0]), "inequality")  # first: no growth
    assert float(state.penalty) == 2.0
    state = form.update_state(state, jnp.array([0.8]), "inequality")  # 0.8 > 0.5 * 1.0
    assert float(state.penalty) == 20.0
    state = form.update_state(state, jnp.array([0.1]), "inequality")  # 0.1 < 0.5 * 0.8
    assert float(state.penalty) == 20.0
    state = form.update_state(state, jnp.array([0.1]), "inequality")  # stalled: grow, capped
    assert float(state.penalty) == 50.0


def test_resilient_dual_gradient_is_relaxed_violation():
    form = fj.resilient(alpha=4.0)
    np.testing.assert_allclose(
        form.dual_gradient(jnp.array([2.0]), jnp.array([1.0]), form.init(), "inequality"), [0.5])


def test_every_public_function_documents_a_runnable_example():
    missing = [name for name in fj.__all__
               if inspect.isfunction(getattr(fj, name))
               and ">>>" not in (inspect.getdoc(getattr(fj, name)) or "")]
    assert not missing, f"public functions without a doctest example: {missing}"
