"""Optimal local/global mixing: closed forms against Monte Carlo, estimator, pytree mixing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from feasjax.averaging.mixing import (estimate_mixing_alpha, mix, mixing_helps, mixing_mse,
                                      optimal_mixing_alpha)

R, N_LOCAL, N_OTHER = 100_000, 10, 100
ALPHAS = jnp.linspace(0.0, 1.0, 1001)


def _simulate(key, sigma_g, delta, shared):
    """One local dataset N(0, 1) and one global dataset; the estimators are their means.

    ``shared=True``: the global estimator also uses the local samples (covariance c != 0).
    """
    kl, kg = jax.random.split(key)
    local = jax.random.normal(kl, (N_LOCAL,))
    other = delta + sigma_g * jax.random.normal(kg, (N_OTHER,))
    glob = jnp.concatenate([local, other]) if shared else other
    return jnp.mean(local), jnp.mean(glob)


def _theory(sigma_g, delta, shared):
    """(v_L, v_G, bias, cov) of the simulated estimators."""
    if shared:
        n = N_LOCAL + N_OTHER
        return 1 / N_LOCAL, (N_LOCAL + N_OTHER * sigma_g**2) / n**2, N_OTHER * delta / n, 1 / n
    return 1 / N_LOCAL, sigma_g**2 / N_OTHER, delta, 0.0


SETTINGS = [(1.0, 0.0, False), (2.0, 0.3, False), (1.0, 2.0, False), (3.0, 5.0, False), (2.0, 0.5, True)]


@pytest.mark.parametrize("sigma_g, delta, shared", SETTINGS)
def test_monte_carlo_mse_curve_and_argmin_match_theory(sigma_g, delta, shared):
    keys = jax.random.split(jax.random.key(1234), R)
    theta_l, theta_g = jax.vmap(lambda k: _simulate(k, sigma_g, delta, shared))(keys)
    # Mean over datasets of ((1 - a) theta_L + a theta_G - mu_L)^2 with mu_L = 0, expanded in the
    # three empirical moments (the same numbers, without an (alphas x R) array).
    ll, gg, lg = (jnp.mean(x * y) for x, y in ((theta_l, theta_l), (theta_g, theta_g), (theta_l, theta_g)))
    empirical = (1 - ALPHAS) ** 2 * ll + ALPHAS**2 * gg + 2 * ALPHAS * (1 - ALPHAS) * lg
    v_l, v_g, bias, cov = _theory(sigma_g, delta, shared)
    theory = mixing_mse(ALPHAS, v_l, v_g, bias, cov)
    assert float(jnp.max(jnp.abs(empirical / theory - 1))) < 0.03
    a_star = float(optimal_mixing_alpha(v_l, v_g, bias, cov))
    assert abs(float(ALPHAS[jnp.argmin(empirical)]) - a_star) < 0.02
    assert float(ALPHAS[jnp.argmin(theory)]) == pytest.approx(a_star, abs=1e-3)
    # "mixing helps iff 0 < alpha < 2 alpha*", away from the two roots where MC noise decides.
    helps = mixing_helps(ALPHAS, v_l, v_g, bias, cov)
    clear = (ALPHAS > 0.02) & (jnp.abs(ALPHAS - 2 * a_star) > 0.02)
    assert bool(jnp.all(jnp.where(clear, helps == (empirical < empirical[0]), True)))


def test_optimal_alpha_closed_form_and_helps_boundaries():
    assert float(optimal_mixing_alpha(1.0, 0.5, 0.5)) == pytest.approx(1 / 1.75)
    assert float(optimal_mixing_alpha(1.0, 1.0, 0.0, cov=0.5)) == pytest.approx(0.5)
    assert float(optimal_mixing_alpha(0.0, 0.0, 0.0)) == 0.0  # nothing to gain, no NaN
    a = optimal_mixing_alpha(0.3, 0.2, 0.4)
    m0 = mixing_mse(0.0, 0.3, 0.2, 0.4)
    assert float(mixing_mse(2 * a, 0.3, 0.2, 0.4)) == pytest.approx(float(m0), rel=1e-5)
    assert float(mixing_mse(a, 0.3, 0.2, 0.4)) < float(m0)
    assert not bool(mixing_helps(2 * a + 1e-3, 0.3, 0.2, 0.4)) and bool(mixing_helps(2 * a - 1e-3, 0.3, 0.2, 0.4))


def test_plug_in_estimator_matches_hand_computation_and_helps():
    kl, kg = jax.random.split(jax.random.key(0))
    local, glob = jax.random.normal(kl, (8, 3)), 0.1 + 2 * jax.random.normal(kg, (50, 3))
    ln, gn = np.asarray(local, np.float64), np.asarray(glob, np.float64)
    v_l = np.var(ln, axis=0, ddof=1).sum() / 8
    v_g = np.var(gn, axis=0, ddof=1).sum() / 50
    d2 = np.sum((gn.mean(0) - ln.mean(0)) ** 2)
    assert float(estimate_mixing_alpha(local, glob)) == pytest.approx(v_l / (v_l + v_g + d2), rel=1e-5)

    def one(key):  # Delta = 0: the estimated mixture must beat the local mean on average
        k1, k2 = jax.random.split(key)
        xl, xg = jax.random.normal(k1, (N_LOCAL,)), jax.random.normal(k2, (N_OTHER,))
        a = estimate_mixing_alpha(xl, xg)
        return a, (1 - a) * jnp.mean(xl) + a * jnp.mean(xg), jnp.mean(xl)

    a, mixed, local_only = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(1), 4000))
    assert bool(jnp.all((a >= 0) & (a <= 1)))
    assert float(jnp.mean(mixed**2)) < 0.7 * float(jnp.mean(local_only**2))  # measured ~0.55


def test_mix_pytrees_with_scalar_and_per_leaf_alpha():
    local = {"prompt": jnp.zeros((2, 3)), "head": {"w": jnp.zeros(4), "b": jnp.zeros(())}}
    glob = jax.tree.map(jnp.ones_like, local)
    out = mix(local, glob, 0.25)
    assert all(bool(jnp.all(x == 0.25)) for x in jax.tree.leaves(out))
    out = mix(local, glob, {"prompt": 0.75, "head": 0.0})  # portfolio: one alpha per part
    assert bool(jnp.all(out["prompt"] == 0.75)) and bool(jnp.all(out["head"]["w"] == 0))
    out = mix(local, glob, {"prompt": jnp.full((2, 3), 0.5), "head": {"w": 1.0, "b": 0.5}})
    assert bool(jnp.all(out["head"]["w"] == 1)) and float(out["head"]["b"]) == 0.5
    jitted = jax.jit(mix)(local, glob, {"prompt": 0.75, "head": 0.0})
    jax.tree.map(np.testing.assert_array_equal, jitted, mix(local, glob, {"prompt": 0.75, "head": 0.0}))


def test_mixing_input_validation():
    with pytest.raises(ValueError, match="v_local must be >= 0"):
        optimal_mixing_alpha(-1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="v_global must be >= 0"):
        mixing_mse(0.5, 1.0, -0.1, 0.0)
    with pytest.raises(ValueError, match="cov must satisfy"):
        optimal_mixing_alpha(1.0, 1.0, 0.0, cov=2.0)
    a, b = {"w": jnp.zeros(3)}, {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="alpha leaves must be scalars or have the leaf's shape"):
        mix(a, b, jnp.full((2,), 0.5))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        mix(a, b, 1.5)
    with pytest.raises(ValueError, match="same structure"):
        mix(a, {"v": jnp.ones(3)}, 0.5)
    with pytest.raises(ValueError, match="leaf shapes differ"):
        mix(a, {"w": jnp.ones(4)}, 0.5)
    with pytest.raises(ValueError, match="pytree prefix"):
        mix(a, b, {"other": 0.5})
    with pytest.raises(ValueError, match=r"shapes \(n, \) or \(n, d\)"):
        estimate_mixing_alpha(jnp.zeros((5, 2)), jnp.zeros((5, 3)))
