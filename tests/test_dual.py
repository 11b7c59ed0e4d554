"""Dual optimizers against hand-computed trajectories, and their ascent marking."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj
from feasjax.core.dual import AscentTransformation, check_ascent, is_ascent, project_nonnegative

# nupi and optimistic ascend already: wrapping them in fj.ascent must change nothing.
WRAPS = pytest.mark.parametrize("wrap", [lambda tx: tx, fj.ascent], ids=["bare", "ascent"])


def _run(tx, errors, theta0):
    theta, state = theta0, tx.init(theta0)
    path = []
    for e in errors:
        upd, state = tx.update(e, state, theta)
        theta = optax.apply_updates(theta, upd)
        path.append(theta)
    return path


@WRAPS
def test_nupi_without_proportional_term_is_gradient_ascent(wrap):
    errors = [jnp.array([0.5, -1.0]), jnp.array([2.0, 0.3]), jnp.array([-0.7, 0.1])]
    nupi_path = _run(wrap(fj.nupi(0.3, kp=0.0, ki=1.0, nu=0.7)), errors, jnp.ones(2))
    ga_path = _run(fj.ascent(optax.sgd(0.3)), errors, jnp.ones(2))
    for a, b in zip(nupi_path, ga_path):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@WRAPS
def test_nupi_two_step_trajectory_by_hand(wrap):
    eta, kp, ki, nu = 0.1, 2.0, 1.0, 0.5
    e0, e1, e2 = 1.0, 3.0, -2.0
    # Ascent: θ_{t+1} = θ_t + η (K_I e_t + K_P (ξ_t − ξ_{t−1})), ξ_t = ν ξ_{t−1} + (1−ν) e_t,
    # ξ_{−1} = 0 and no proportional term on the first step.
    xi0 = (1 - nu) * e0  # 0.5
    theta1 = 0.0 + eta * ki * e0  # 0.1
    xi1 = nu * xi0 + (1 - nu) * e1  # 1.75
    theta2 = theta1 + eta * (ki * e1 + kp * (xi1 - xi0))  # 0.1 + 0.1 * (3 + 2.5) = 0.65
    xi2 = nu * xi1 + (1 - nu) * e2  # -0.125
    theta3 = theta2 + eta * (ki * e2 + kp * (xi2 - xi1))  # 0.65 + 0.1 * (-2 - 3.75) = 0.075
    path = _run(wrap(fj.nupi(eta, kp=kp, ki=ki, nu=nu)),
                [jnp.array([e]) for e in (e0, e1, e2)], jnp.zeros(1))
    np.testing.assert_allclose([float(p[0]) for p in path], [theta1, theta2, theta3], rtol=1e-6)
    assert theta3 == pytest.approx(0.075)


@WRAPS
def test_optimistic_by_hand(wrap):
    eta, alpha = 0.1, 0.5
    path = _run(wrap(fj.optimistic(eta, alpha)), [jnp.array([1.0]), jnp.array([2.0])],
                jnp.zeros(1))
    # First step: plain ascent; second: η ((1+α) g_1 − α g_0).
    np.testing.assert_allclose([float(p[0]) for p in path],
                               [0.1, 0.1 + 0.1 * (1.5 * 2.0 - 0.5 * 1.0)], rtol=1e-6)


def test_ascent_moves_along_the_gradient():
    upd, _ = fj.ascent(optax.adam(0.1)).update(jnp.array([3.0, -3.0]),
                                               fj.ascent(optax.adam(0.1)).init(jnp.zeros(2)))
    np.testing.assert_allclose(upd, [0.1, -0.1], rtol=1e-5)


def test_nupi_jit_and_no_jit_agree():
    tx = fj.nupi(0.2, kp=1.0, ki=0.5, nu=0.3)
    update = jax.jit(tx.update)
    state_a = state_b = tx.init(jnp.zeros(3))
    for t in range(3):
        g = jnp.array([1.0, -1.0, 0.5]) * (t + 1)
        ua, state_a = tx.update(g, state_a)
        ub, state_b = update(g, state_b)
        np.testing.assert_allclose(ua, ub, rtol=1e-6)


def test_project_nonnegative():
    np.testing.assert_array_equal(project_nonnegative(jnp.array([-0.1, 0.0, 2.0])),
                                  [0.0, 0.0, 2.0])


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: fj.nupi(-1.0), "learning_rate must be finite and > 0"),
        (lambda: fj.nupi(0.1, kp=-1.0), "kp must be finite and >= 0"),
        (lambda: fj.nupi(0.1, nu=1.0), r"nu must be in \[0, 1\)"),
        (lambda: fj.optimistic(0.0), "learning_rate must be finite and > 0"),
        (lambda: fj.optimistic(0.1, alpha=-1.0), "alpha must be finite and >= 0"),
    ],
)
def test_bad_hyperparameters_raise(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize("factory", [
    lambda: optax.inject_hyperparams(fj.nupi)(learning_rate=0.1, kp=1.0, nu=0.5),
    lambda: optax.inject_hyperparams(fj.optimistic)(learning_rate=0.1, alpha=0.5),
])
def test_dual_optimizers_work_under_inject_hyperparams_and_indexed(factory):
    plain = {0: fj.nupi(0.1, kp=1.0, nu=0.5), 1: fj.optimistic(0.1, alpha=0.5)}
    tx = factory()
    ref = plain[0] if "kp" in tx.init(jnp.zeros(1)).hyperparams else plain[1]
    s, r = tx.init(jnp.zeros(3)), ref.init(jnp.zeros(3))
    for g in (jnp.ones(3), 2 * jnp.ones(3)):
        u, s = jax.jit(tx.update)(g, s)
        v, r = ref.update(g, r)
        np.testing.assert_allclose(u, v, rtol=1e-6)
    rows = fj.indexed(factory())
    state = rows.init(jnp.zeros(4))
    u, _ = jax.jit(lambda g, st, i: rows.update(g, st, indices=i))(jnp.ones(2), state,
                                                                    jnp.array([0, 2]))
    np.testing.assert_allclose(u, [0.1, 0.1], rtol=1e-6)  # ascent: +η g


def test_nupi_under_inject_hyperparams_is_marked_without_negating():
    """The wrapper returns an unmarked (but ascending) transformation: mark it, negate=False."""
    injected = optax.inject_hyperparams(fj.nupi)(learning_rate=0.1)
    assert not is_ascent(injected)
    with pytest.raises(ValueError, match="dual_optimizer must be an ascent optimizer"):
        check_ascent(injected, "dual_optimizer")
    tx = fj.ascent(injected, negate=False)
    check_ascent(tx, "dual_optimizer")
    state = tx.init(jnp.zeros(2))
    upd, state = tx.update(jnp.array([1.0, -2.0]), state)
    np.testing.assert_allclose(upd, [0.1, -0.2], rtol=1e-6)  # +η K_I e: not negated
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.1)
    group = fj.ConstraintGroup(size=2, dual_optimizer=tx)
    group.validate("c")
    with pytest.raises(ValueError, match="dual_optimizer of constraint group 'c'"):
        group._replace(dual_optimizer=injected).validate("c")


def test_ascent_is_a_marked_extra_args_transformation():
    tx = fj.ascent(optax.sgd(0.1))
    assert isinstance(tx, AscentTransformation)
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    assert is_ascent(tx) and is_ascent(fj.nupi(0.1)) and is_ascent(fj.optimistic(0.1))
    assert not is_ascent(optax.sgd(0.1)) and not is_ascent(None)
    assert optax.with_extra_args_support(tx) is tx
    assert AscentTransformation.__slots__ == () and AscentTransformation._fields == (
        "init", "update")


def test_extra_args_reach_a_marked_transformation_inside_chain():
    def scale_by_extra():
        def update(updates, state, params=None, *, factor, **extra_args):
            del params, extra_args
            return jax.tree.map(lambda u: factor * u, updates), state
        return optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)

    tx = optax.chain(fj.ascent(scale_by_extra()), optax.scale(2.0))
    upd, _ = tx.update(jnp.array([1.0, -1.0]), tx.init(jnp.zeros(2)), factor=3.0,
                       unused_extra=1)
    np.testing.assert_allclose(upd, [-6.0, 6.0])  # 2 · 3 · (−g)


def test_ascent_never_negates_twice():
    once = fj.ascent(optax.sgd(0.1))
    assert fj.ascent(once) is once and fj.ascent(once, negate=False) is once
    nupi = fj.nupi(0.1)
    assert fj.ascent(nupi) is nupi
    twice = fj.ascent(fj.ascent(optax.sgd(0.1)))
    upd, _ = twice.update(jnp.array([2.0]), twice.init(jnp.zeros(1)))
    np.testing.assert_allclose(upd, [0.2], rtol=1e-6)


def test_negate_false_only_marks():
    own = optax.chain(optax.scale(-1.0), optax.sgd(0.1))  # a user's chain that ascends
    marked = fj.ascent(own, negate=False)
    assert is_ascent(marked) and not is_ascent(own)
    g, state = jnp.array([2.0, -1.0]), marked.init(jnp.zeros(2))
    np.testing.assert_allclose(marked.update(g, state)[0], [0.2, -0.1], rtol=1e-6)
    ref = fj.ascent(optax.sgd(0.1))
    np.testing.assert_allclose(ref.update(g, ref.init(jnp.zeros(2)))[0], [0.2, -0.1],
                               rtol=1e-6)


def test_check_ascent_names_the_argument():
    check_ascent(fj.ascent(optax.adam(0.1)), "dual_optimizer")
    check_ascent(fj.nupi(0.1), "dual_optimizer")
    with pytest.raises(ValueError, match=r"^dual_optimizer of constraint group 'samples' must "
                       r"be an ascent optimizer \(the multipliers maximise the Lagrangian\): "
                       r"wrap it as fj\.ascent\(optax\.sgd\(0\.1\)\), or mark one that "
                       r"already ascends with fj\.ascent\(tx, negate=False\); got a descent "
                       r"transformation"):
        check_ascent(optax.sgd(0.1), "dual_optimizer of constraint group 'samples'")
    with pytest.raises(ValueError, match="dual_optimizer must be an ascent optimizer such as "
                       r"fj\.ascent\(optax\.sgd\(0\.1\)\), got str"):
        check_ascent("sgd", "dual_optimizer")
    with pytest.raises(TypeError, match="inner must be an optax GradientTransformation, "
                       "got float"):
        fj.ascent(0.1)
