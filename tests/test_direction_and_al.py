"""Dual direction safety, the shared defaults on closed-form problems, and the augmented
Lagrangian's penalty growth on Nocedal & Wright's chapter-17 example."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax.core import defaults
from feasjax.core.dual import is_ascent

SCHEMES = pytest.mark.parametrize("scheme", ["simultaneous", "dual_then_primal"])


def _run(solver, state, steps):
    """``steps`` steps in one jitted ``lax.scan``; returns the state and each step's ρ (if any)."""

    def body(state, _):
        state, _ = solver.step(state, None)
        forms = state.formulation_states.get("c")
        return state, getattr(forms, "penalty", jnp.zeros([]))

    return jax.jit(lambda s: jax.lax.scan(body, s, jnp.arange(steps)))(state)


# (i) min ||x||² s.t. C x = d: x* = Cᵀ(CCᵀ)⁻¹d, λ* = −2(CCᵀ)⁻¹d (stationarity 2x + Cᵀλ = 0).
C = jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]])
D = jnp.array([1.0, 0.5])
X_EQ = C.T @ jnp.linalg.solve(C @ C.T, D)
LAMBDA_EQ = -2.0 * jnp.linalg.solve(C @ C.T, D)
# (ii) min ||x||² s.t. A x <= b: x0 + x1 >= 1 and x1 >= 0.7 active, the other two slack.
A = jnp.array([[-1.0, -1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
B = jnp.array([-1.0, 2.0, -0.7, 5.0])
X_INEQ = jnp.array([0.3, 0.7])
LAMBDA_INEQ = jnp.array([0.6, 0.0, 0.8, 0.0])

PROBLEMS = {
    "equality": (lambda x, b: fj.ProblemOutput(jnp.sum(x**2), {"c": fj.ConstraintValue(C @ x - D)}),
                 3, X_EQ, LAMBDA_EQ),
    "inequality": (lambda x, b: fj.ProblemOutput(jnp.sum(x**2),
                                                 {"c": fj.ConstraintValue(A @ x - B)}),
                   2, X_INEQ, LAMBDA_INEQ),
}


def test_constraint_group_defaults_come_from_one_place():
    for indexed in (False, True):
        group = fj.ConstraintGroup(size=3, indexed=indexed)
        assert group.resolved_reduction() == defaults.REDUCTION == "mean"
        assert group.init_multiplier == defaults.INIT_MULTIPLIER == 1.0
        assert is_ascent(group.dual_optimizer)
    assert defaults.SCHEME == "simultaneous" and defaults.DUAL_LEARNING_RATE == 0.1
    tx = fj.ConstraintGroup(size=2).dual_optimizer
    upd, _ = tx.update(jnp.array([1.0, -3.0]), tx.init(jnp.zeros(2)))
    np.testing.assert_allclose(upd, [0.1, -0.3], rtol=1e-6)  # λ ← λ + 0.1 g
    assert fj.ConstraintGroup(size=2, reduction="sum").resolved_reduction() == "sum"


@SCHEMES
@pytest.mark.parametrize("reduction", [None, "sum"])
@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_defaults_converge_to_the_kkt_point(kind, reduction, scheme):
    """Default dual optimizer and init; "mean" (default) multipliers are m times the textbook."""
    problem, dim, x_star, lam_star = PROBLEMS[kind]
    group = fj.ConstraintGroup(size=lam_star.shape[0], kind=kind, reduction=reduction)
    solver = fj.primal_dual(problem, optax.sgd(0.1), {"c": group}, scheme=scheme)
    state, _ = _run(solver, solver.init(jnp.zeros(dim)), 3000)
    scale = lam_star.shape[0] if reduction is None else 1  # (1/m) Σ λ_j g_j
    np.testing.assert_allclose(state.params, x_star, atol=1e-4)
    np.testing.assert_allclose(state.multipliers["c"], scale * lam_star, atol=1e-4)


def test_a_plain_optax_dual_optimizer_is_refused():
    problem = PROBLEMS["inequality"][0]
    match = (r"dual_optimizer of constraint group 'c' must be an ascent optimizer .*"
             r"fj\.ascent\(optax\.sgd\(0\.1\)\).*negate=False")
    for bad in (optax.sgd(0.1), optax.inject_hyperparams(fj.nupi)(learning_rate=0.1)):
        group = fj.ConstraintGroup(size=4, dual_optimizer=bad)
        with pytest.raises(ValueError, match=match):
            group.validate("c")
        with pytest.raises(ValueError, match=match):
            fj.primal_dual(problem, optax.sgd(0.1), {"c": group})
    # Formulations without multipliers have no dual step to check.
    fj.ConstraintGroup(size=4, formulation=fj.quadratic_penalty(1.0),
                       dual_optimizer=optax.sgd(0.1)).validate("c")


@pytest.mark.parametrize("dual", [
    lambda: fj.nupi(0.1), lambda: fj.ascent(fj.nupi(0.1)), lambda: fj.optimistic(0.1),
    lambda: fj.ascent(optax.sgd(0.1)),
    lambda: fj.ascent(optax.inject_hyperparams(fj.nupi)(learning_rate=0.1), negate=False),
])
def test_every_marked_dual_optimizer_raises_a_violated_multiplier(dual):
    problem = PROBLEMS["inequality"][0]
    group = fj.ConstraintGroup(size=4, dual_optimizer=dual(), init_multiplier=0.5)
    solver = fj.primal_dual(problem, optax.sgd(0.1), {"c": group})
    state, _ = jax.jit(solver.step)(solver.init(jnp.zeros(2)), None)
    g = A @ jnp.zeros(2) - B  # (1, -2, 0.7, -5): rows 0 and 2 violated
    np.testing.assert_allclose(state.multipliers["c"], jnp.maximum(0.0, 0.5 + 0.1 * g),
                               rtol=1e-6)


def _nw_problem(x, batch):
    """Nocedal & Wright, ch. 17: min x1 + x2 s.t. x1² + x2² − 2 = 0; x* = (−1, −1).

    With L = f + λ g (our sign convention), stationarity 1 + 2 λ x_i = 0 gives λ* = 1/2.
    """
    return fj.ProblemOutput(x[0] + x[1], {"c": fj.ConstraintValue((x[0]**2 + x[1]**2 - 2.0)[None])})


@SCHEMES
def test_augmented_lagrangian_with_penalty_growth_solves_nw_example(scheme):
    form = fj.augmented_lagrangian(1.0, growth=2.0, max_penalty=1e3)
    group = fj.ConstraintGroup(size=1, kind="equality", formulation=form, reduction="sum")
    solver = fj.primal_dual(_nw_problem, optax.sgd(0.005), {"c": group}, scheme=scheme)
    state, penalties = _run(solver, solver.init(jnp.array([-1.5, -0.5])), 3000)
    np.testing.assert_allclose(state.params, [-1.0, -1.0], atol=1e-4)
    np.testing.assert_allclose(state.multipliers["c"], [0.5], atol=1e-4)
    penalties = np.asarray(penalties)
    assert penalties.max() > 1.0 and penalties.max() <= 1e3  # grew, and stayed capped
    assert np.all(np.diff(penalties) >= 0)  # ρ never shrinks
    changes = np.flatnonzero(np.diff(penalties)) + 1
    assert np.all(changes % 100 == 99)  # only at the end of a window of `patience` steps
    assert float(state.formulation_states["c"].penalty) == penalties[-1]
