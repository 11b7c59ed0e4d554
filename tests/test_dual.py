"""Dual optimizers against hand-computed trajectories."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import feasjax as fj


def _run(tx, errors, theta0):
    theta, state = theta0, tx.init(theta0)
    path = []
    for e in errors:
        upd, state = tx.update(e, state, theta)
        theta = optax.apply_updates(theta, upd)
        path.append(theta)
    return path


def test_nupi_without_proportional_term_is_gradient_ascent():
    errors = [jnp.array([0.5, -1.0]), jnp.array([2.0, 0.3]), jnp.array([-0.7, 0.1])]
    nupi_path = _run(fj.ascent(fj.nupi(0.3, kp=0.0, ki=1.0, nu=0.7)), errors, jnp.ones(2))
    ga_path = _run(fj.ascent(optax.sgd(0.3)), errors, jnp.ones(2))
    for a, b in zip(nupi_path, ga_path):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_nupi_two_step_trajectory_by_hand():
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
    path = _run(fj.ascent(fj.nupi(eta, kp=kp, ki=ki, nu=nu)),
                [jnp.array([e]) for e in (e0, e1, e2)], jnp.zeros(1))
    np.testing.assert_allclose([float(p[0]) for p in path], [theta1, theta2, theta3], rtol=1e-6)
    assert theta3 == pytest.approx(0.075)


def test_optimistic_by_hand():
    eta, alpha = 0.1, 0.5
    path = _run(fj.ascent(fj.optimistic(eta, alpha)), [jnp.array([1.0]), jnp.array([2.0])],
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
    np.testing.assert_array_equal(fj.project_nonnegative(jnp.array([-0.1, 0.0, 2.0])),
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
    np.testing.assert_allclose(u, [-0.1, -0.1], rtol=1e-6)
