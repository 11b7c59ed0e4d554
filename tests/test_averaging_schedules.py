"""Averages along the learning-rate schedules of benchmarks/averaging_speedup.py, by hand.

A tiny least-squares model is trained by SGD with momentum under a constant, a cosine and SWA's
cyclic schedule; the iterates are recomputed in float64 numpy from optax's update rule and the
EMA / LAWA / SWA averages are folded by hand from them. The benchmark also follows one
trajectory with several averagers at once through ``averaged(optax.identity(), averager)``, and
vmaps the multipliers' EMA decay as a traced value: both are checked here.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from feasjax.averaging import (averaged, averaged_params, ema, indexed_averaged, lawa, swa,
                               swa_schedule)

T, LR, MU = 14, 0.2, 0.9
A = np.array([[1.0, 0.5], [0.2, 1.5], [0.7, -0.3]])
B = np.array([1.0, -2.0, 0.5])


def _schedules():
    return {
        "constant": optax.constant_schedule(LR),
        "cosine": optax.cosine_decay_schedule(LR, T),
        "swa": swa_schedule(LR, start_step=4, swa_lr=LR, cycle_length=3, min_lr=LR / 10),
    }


def _lr_by_hand(name, count):
    if name == "constant":
        return LR
    if name == "cosine":
        return LR * 0.5 * (1 + np.cos(np.pi * min(count, T) / T))
    if count < 4:
        return LR
    j = (count - 4) % 3
    return LR + (LR / 10 - LR) * (j + 1) / 3


def _iterates_by_hand(name):
    """theta_0..theta_T of optax.sgd(schedule, momentum=MU) on 0.5 ||A theta - b||^2."""
    theta, trace, out = np.zeros(2), np.zeros(2), [np.zeros(2)]
    for count in range(T):
        grad = A.T @ (A @ theta - B)
        trace = grad + MU * trace  # optax.trace: no dampening, no Nesterov
        theta = theta - _lr_by_hand(name, count) * trace
        out.append(theta)
    return out


def _run(tx):
    """Averaged params after each step of the jitted SGD loop (one compilation)."""
    params, state = jnp.zeros(2), tx.init(jnp.zeros(2))
    loss = lambda p: 0.5 * jnp.sum((jnp.asarray(A, jnp.float32) @ p - B) ** 2)  # noqa: E731

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
        return params, state, averaged_params(state, params)

    evals = []
    for _ in range(T):
        params, state, avg = step(params, state)
        evals.append(np.asarray(avg, np.float64))
    return evals


def _ema_by_hand(iterates, decay):
    avg, out = iterates[0], []
    for theta in iterates[1:]:
        avg = decay * avg + (1 - decay) * theta
        out.append(avg)
    return out


def _window_by_hand(iterates, first, every, k):
    out = []
    for t in range(1, T + 1):
        snaps = [iterates[j] for j in range(first, t + 1, every)][-k:]
        out.append(np.mean(snaps, axis=0) if snaps else iterates[t])
    return out


@pytest.mark.parametrize("schedule", ["constant", "cosine", "swa"])
def test_schedules_match_the_hand_written_rates(schedule):
    fn = _schedules()[schedule]
    expected = [_lr_by_hand(schedule, c) for c in range(T + 2)]
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(jnp.arange(T + 2)), expected, rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "swa"])
@pytest.mark.parametrize("kind", ["ema", "lawa", "swa"])
def test_average_after_k_steps_equals_the_hand_computation(schedule, kind):
    iterates = _iterates_by_hand(schedule)
    if kind == "ema":
        averager, expected = ema(0.7), _ema_by_hand(iterates, 0.7)
    elif kind == "lawa":  # snapshots theta_3, theta_5, ...; the last 3 of them
        averager, expected = lawa(3, 2, burn_in=1), _window_by_hand(iterates, 3, 2, 3)
    else:  # cycle ends theta_7, theta_10, theta_13: the low-rate iterates of the swa schedule
        averager, expected = swa(3, 4), _window_by_hand(iterates, 7, 3, T)
    evals = _run(averaged(optax.sgd(_schedules()[schedule], momentum=MU), averager))
    for t in range(T):
        np.testing.assert_allclose(evals[t], expected[t], rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("averager", [ema(0.9), lawa(2, 3)])
def test_identity_inner_fed_the_optimizer_updates_equals_wrapping_the_optimizer(averager):
    # The benchmark follows one trajectory with several averagers: each is
    # averaged(optax.identity(), a) updated with the SGD updates and the params before them.
    sgd = optax.sgd(_schedules()["cosine"], momentum=MU)
    follower, wrapped = averaged(optax.identity(), averager), averaged(sgd, averager)
    a32 = jnp.asarray(A, jnp.float32)
    g = lambda p: a32.T @ (a32 @ p - B)  # noqa: E731

    def body(carry, _):
        p, s, f, q, w = carry
        u, s = sgd.update(g(p), s, p)
        _, f = follower.update(u, f, p)
        v, w = wrapped.update(g(q), w, q)
        return (optax.apply_updates(p, u), s, f, optax.apply_updates(q, v), w), None

    p0 = jnp.zeros(2)
    (p, _, f, q, w), _ = jax.lax.scan(
        body, (p0, sgd.init(p0), follower.init(p0), p0, wrapped.init(p0)), length=T)
    np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(averaged_params(f, p), averaged_params(w, q))


def test_indexed_ema_with_a_vmapped_traced_decay_equals_each_decay_alone():
    # The FL part vmaps the multipliers' EMA decay (decay 0 keeps the raw multipliers).
    lam0, idx = jnp.arange(4.0), jnp.array([[0, 2], [2, 3], [1, 2]])
    deltas = jnp.array([[1.0, 0, -2, 0], [0, 0, 3, 1], [0, 5, 1, 0]])

    def final(decay):
        tx = indexed_averaged(optax.identity(), ema(decay))
        lam, state = lam0, tx.init(lam0)
        for d, i in zip(deltas, idx):
            _, state = tx.update(d, state, lam, indices=i)
            lam = lam + d
        return averaged_params(state, lam), lam

    decays = jnp.array([0.0, 0.5, 0.9])
    batched, lam = jax.jit(jax.vmap(final))(decays)
    alone = jax.jit(final)
    for row, d in zip(batched, decays):
        np.testing.assert_allclose(row, alone(d)[0], rtol=1e-6)
    np.testing.assert_allclose(batched[0], lam[0])  # decay 0: the raw multipliers
    # Row 2 is touched three times: 2 -> 0 -> 3 -> 4; by hand with decay 0.5.
    np.testing.assert_allclose(batched[1, 2], 0.5 * (0.5 * (0.5 * 2 + 0.5 * 0) + 0.5 * 3) + 0.5 * 4)
