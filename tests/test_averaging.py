"""Averaging wrapper: exact iterates and weights of each averager, and the optax contract."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from feasjax.averaging.averagers import WindowLeaf, ema, lawa, polyak, swa, tail_polyak
from feasjax.averaging.indexed import indexed_averaged
from feasjax.averaging.schedules import swa_schedule
from feasjax.averaging.wrappers import (AveragedState, averaged, averaged_params,
                                        find_averaged_states)
from feasjax.core.dual import ascent
from feasjax.core.rows import apply_row_updates, indexed

T = 12


def _params():
    return {"a": jnp.zeros(3), "b": jnp.ones((2, 2))}


def _grads(steps=T, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {"a": jax.random.normal(k1, (steps, 3)), "b": jax.random.normal(k2, (steps, 2, 2))}


def _make_step(tx, counter=None):
    def step(params, state, g):
        if counter is not None:
            counter.append(1)  # runs once per trace
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state

    return jax.jit(step)


def _run(tx, steps=T, seed=0):
    """Iterates theta_0..theta_T (float64 numpy), evaluated params and states after each step."""
    params, grads = _params(), _grads(steps, seed)
    state, step = tx.init(params), _make_step(tx)
    iterates, evals, states = [params], [averaged_params(state, params)], [state]
    for t in range(steps):
        params, state = step(params, state, jax.tree.map(lambda g: g[t], grads))
        iterates.append(params)
        evals.append(averaged_params(state, params))
        states.append(state)
    as64 = lambda trees: [jax.tree.map(lambda x: np.asarray(x, np.float64), tr) for tr in trees]
    return as64(iterates), as64(evals), states


def _assert_tree_close(actual, expected, rtol=1e-5, atol=1e-6):
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=rtol, atol=atol), actual, expected)


def _mean(trees):
    return jax.tree.map(lambda *xs: np.mean(np.stack(xs), axis=0), *trees)


def _inner():
    return optax.sgd(0.1, momentum=0.9)


@pytest.mark.parametrize("start, every", [(0, 1), (3, 1), (2, 3), (5, 4)])
def test_polyak_is_the_mean_of_the_iterates_from_start_step(start, every):
    iterates, evals, _ = _run(averaged(_inner(), polyak(start, every=every)))
    for t in range(T + 1):
        counted = [iterates[j] for j in range(start, t + 1, every)]
        _assert_tree_close(evals[t], _mean(counted) if counted else iterates[t])


def test_tail_polyak_averages_exactly_the_last_fraction():
    iterates, evals, _ = _run(averaged(_inner(), tail_polyak(horizon=T, fraction=0.25)))
    _assert_tree_close(evals[T], _mean(iterates[T - 2 : T + 1]))  # round(0.25 * 12) = 3 iterates


@pytest.mark.parametrize("k, every, burn_in", [(3, 1, 0), (2, 2, 3), (4, 3, 1)])
def test_lawa_is_the_mean_of_the_last_k_snapshots(k, every, burn_in):
    iterates, evals, _ = _run(averaged(_inner(), lawa(k, every, burn_in)))
    for t in range(T + 1):
        snaps = [iterates[j] for j in range(burn_in + every, t + 1, every)][-k:]
        _assert_tree_close(evals[t], _mean(snaps) if snaps else iterates[t])


def _ema_reference(iterates, decay, warmup, every, start, gamma=1.0, power=2 / 3):
    out, avg, u = [], None, 0
    for t, theta in enumerate(iterates):
        if t >= start and (t - start) % every == 0:
            if avg is None:
                avg = theta
            else:
                d = decay
                if warmup == "linear":
                    d = min(decay, (1 + u) / (10 + u))
                elif warmup == "timm":
                    d = min(decay, 1 - (1 + u / gamma) ** (-power))
                avg = jax.tree.map(lambda a, x, d=d: d * a + (1 - d) * x, avg, theta)
                u += 1
        out.append(theta if avg is None else avg)
    return out


@pytest.mark.parametrize("warmup", ["none", "linear", "timm"])
@pytest.mark.parametrize("every, start", [(1, 0), (2, 3)])
def test_ema_matches_the_hand_rolled_recursion(warmup, every, start):
    tx = averaged(_inner(), ema(0.8, warmup, every=every, start_step=start, warmup_gamma=2.0))
    iterates, evals, _ = _run(tx)
    expected = _ema_reference(iterates, 0.8, warmup, every, start, gamma=2.0)
    for t in range(T + 1):
        _assert_tree_close(evals[t], expected[t])


def test_swa_averages_exactly_the_cycle_end_iterates_at_the_low_rate():
    start, cycle = 4, 3
    sched = swa_schedule(optax.constant_schedule(0.2), start, swa_lr=0.1, cycle_length=cycle, min_lr=0.01)
    iterates, evals, _ = _run(averaged(optax.sgd(sched), swa(cycle, start)))
    ends = [j for j in range(start + cycle, T + 1, cycle)]
    assert ends == [7, 10]
    # theta_j is produced by the update with optax count j - 1, which uses the low rate.
    assert [float(sched(j - 1)) for j in ends] == pytest.approx([0.01, 0.01])
    assert float(sched(start)) == pytest.approx(0.07) and float(sched(start - 1)) == pytest.approx(0.2)
    _assert_tree_close(evals[T], _mean([iterates[j] for j in ends]))
    _assert_tree_close(evals[start + cycle - 1], iterates[start + cycle - 1])  # nothing yet


@pytest.mark.parametrize("averager", [polyak(1, every=3), ema(0.9, every=3), lawa(2, 3)])
def test_average_is_bitwise_unchanged_between_every_steps(averager):
    _, _, states = _run(averaged(_inner(), averager))
    held = lambda s: jax.tree.map(  # noqa: E731  LAWA's last ring slot is scratch space
        lambda leaf: leaf._replace(ring=leaf.ring[:-1]) if isinstance(leaf, WindowLeaf) else leaf,
        s.average, is_leaf=lambda x: isinstance(x, WindowLeaf),
    )
    for t in range(1, T + 1):
        same = jax.tree.map(np.array_equal, held(states[t]), held(states[t - 1]))
        assert all(jax.tree.leaves(same)) == ((t - averager.first) % 3 != 0 or t < averager.first)


@pytest.mark.parametrize("averager", [ema(0.9, "timm"), polyak(2), lawa(2, 2), swa(2, 1)])
def test_one_compilation_serves_all_steps(averager):
    tx, traces = averaged(_inner(), averager), []
    step, params, grads = _make_step(tx, traces), _params(), _grads()
    state = tx.init(params)
    for t in range(T):
        params, state = step(params, state, jax.tree.map(lambda g: g[t], grads))
    assert len(traces) == 1


def test_jit_equals_no_jit_and_scan():
    tx, grads = averaged(_inner(), lawa(3, 2, 1)), _grads()
    _, evals, states = _run(tx)

    def body(carry, g):
        params, state = carry
        u, state = tx.update(g, state, params)
        return (optax.apply_updates(params, u), state), None

    params, state = _params(), tx.init(_params())
    (params_scan, state_scan), _ = jax.jit(lambda c, g: jax.lax.scan(body, c, g))((params, state), grads)
    _assert_tree_close(averaged_params(state_scan, params_scan), evals[T])
    for t in range(3):  # eager, no jit
        u, state = tx.update(jax.tree.map(lambda g: g[t], grads), state, params)
        params = optax.apply_updates(params, u)
    _assert_tree_close(averaged_params(state, params), evals[3])


def test_works_inside_chain_and_inject_hyperparams():
    ref = _run(averaged(_inner(), ema(0.7, "linear")))[1][T]
    chained = optax.chain(optax.identity(), averaged(_inner(), ema(0.7, "linear")))
    _assert_tree_close(_run(chained)[1][T], ref)
    factory = lambda learning_rate, decay: averaged(  # noqa: E731
        optax.sgd(learning_rate, momentum=0.9), ema(decay, "linear")
    )
    injected = optax.inject_hyperparams(factory)(learning_rate=0.1, decay=0.7)
    _assert_tree_close(_run(injected)[1][T], ref)
    inner_injected = averaged(optax.inject_hyperparams(optax.sgd)(0.1, momentum=0.9), ema(0.7, "linear"))
    _assert_tree_close(_run(inner_injected)[1][T], ref)


def test_partition_merges_averages_of_each_part():
    labels = {"a": "avg", "b": "raw"}
    tx = optax.partition({"avg": averaged(_inner(), polyak()), "raw": _inner()}, labels)
    iterates, evals, states = _run(tx)
    assert len(find_averaged_states(states[T])) == 1
    _assert_tree_close(evals[T]["a"], _mean(iterates)["a"])
    _assert_tree_close(evals[T]["b"], iterates[T]["b"])


def test_mask_copies_non_parameter_collections():
    tx = averaged(_inner(), polyak(), mask={"a": True, "b": False})
    iterates, evals, states = _run(tx)
    assert isinstance(states[T].average["b"], optax.MaskedNode)
    _assert_tree_close(evals[T]["a"], _mean(iterates)["a"])
    _assert_tree_close(evals[T]["b"], iterates[T]["b"])


def test_extra_args_are_forwarded_and_unknown_ones_ignored():
    tx = averaged(_inner(), ema(0.9))
    params = _params()
    u, _ = tx.update(_params(), tx.init(params), params, value=jnp.array(1.0), unknown="x")
    _assert_tree_close(u, jax.tree.map(lambda x: -0.1 * x, _params()))


def test_init_accepts_shape_dtype_structs():
    structs = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _params())
    state = jax.eval_shape(averaged(_inner(), lawa(3, 2)).init, structs)
    assert state.average["a"].ring.shape == (4, 3) and state.count.dtype == jnp.int32


def test_bad_arguments_raise_clear_errors():
    tx = averaged(_inner(), polyak())
    with pytest.raises(ValueError, match="needs params"):
        tx.update(_params(), tx.init(_params()))
    with pytest.raises(TypeError, match="averager must be"):
        averaged(_inner(), 0.99)
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        ema(1.0)
    with pytest.raises(ValueError, match="warmup must be one of"):
        ema(0.9, warmup="cosine")
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        polyak(every=0)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        lawa(0, 1)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        tail_polyak(10, 0.0)
    with pytest.raises(ValueError, match="cycle_length must be an integer >= 1"):
        swa_schedule(0.1, 10, 0.05, cycle_length=0)
    with pytest.raises(ValueError, match="holds no AveragedState"):
        averaged_params(_inner().init(_params()), _params())


@pytest.mark.parametrize("axis_type", [jax.sharding.AxisType.Explicit, jax.sharding.AxisType.Auto])
@pytest.mark.parametrize("averager", [ema(0.9, "linear"), lawa(2, 2)])
def test_state_keeps_the_parameters_sharding(averager, axis_type):
    P = jax.sharding.PartitionSpec
    mesh = jax.make_mesh((8,), ("x",), axis_types=(axis_type,))
    params = {"w": jax.device_put(jnp.arange(32.0).reshape(16, 2), jax.NamedSharding(mesh, P("x")))}
    tx = averaged(_inner(), averager)
    state, step = jax.jit(tx.init)(params), _make_step(tx)
    new_params, new_state = step(params, state, jax.tree.map(jnp.ones_like, params))
    new_params, new_state = step(new_params, new_state, jax.tree.map(jnp.ones_like, params))
    before, after = jax.tree.leaves(state.average), jax.tree.leaves(new_state.average)
    assert [jax.typeof(x) for x in before] == [jax.typeof(x) for x in after]
    for x, y in zip(before, after):
        spec = P("x") if x.ndim == 2 else P(None, "x")  # LAWA's ring has a leading slot axis
        for leaf in (x, y):
            assert leaf.sharding.is_equivalent_to(jax.NamedSharding(mesh, spec), leaf.ndim)


def test_checkpoint_round_trip_and_resume_equal_uninterrupted_run(tmp_path):
    tx = optax.chain(optax.clip(1.0), averaged(_inner(), lawa(3, 2, 1)), )
    tx_ema = averaged(_inner(), ema(0.99, "linear"))
    grads = _grads(2 * T)
    for opt in (tx, tx_ema):
        step = _make_step(opt)
        params, state = _params(), opt.init(_params())
        for t in range(2 * T):
            params, state = step(params, state, jax.tree.map(lambda g: g[t], grads))
        uninterrupted = averaged_params(state, params)

        params, state = _params(), opt.init(_params())
        for t in range(T):
            params, state = step(params, state, jax.tree.map(lambda g: g[t], grads))
        path = tmp_path / type(opt).__name__ / str(id(opt))
        with ocp.CheckpointManager(path) as mngr:
            mngr.save(T, args=ocp.args.StandardSave({"params": params, "opt": state}))
            mngr.wait_until_finished()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, {"params": params, "opt": state})
        with ocp.CheckpointManager(path) as mngr:
            restored = mngr.restore(T, args=ocp.args.StandardRestore(abstract))
        params, state = restored["params"], restored["opt"]
        assert find_averaged_states(state)[0].count == T and isinstance(
            find_averaged_states(state)[0], AveragedState
        )
        for t in range(T, 2 * T):
            params, state = step(params, state, jax.tree.map(lambda g: g[t], grads))
        jax.tree.map(np.testing.assert_array_equal, averaged_params(state, params), uninterrupted)


def test_nnx_optimizer_average_is_readable_and_loadable():
    from flax import nnx

    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, averaged(optax.sgd(0.1), polyak()), wrt=nnx.Param)
    x = jnp.ones((1, 2))
    kernels = [np.asarray(model.kernel[...])]
    for _ in range(3):
        opt.update(model, nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model))
        kernels.append(np.asarray(model.kernel[...]))
    avg = averaged_params(opt.opt_state, nnx.state(model, nnx.Param))
    np.testing.assert_allclose(avg["kernel"], np.mean(kernels, axis=0), rtol=1e-6)
    nnx.update(model, avg)
    np.testing.assert_allclose(model.kernel[...], np.mean(kernels, axis=0), rtol=1e-6)


# ---- indexed (per-row) averaging of a multiplier vector --------------------------------------
N = 6
BATCHES = np.array([[0, 2], [2, 5], [1, 2], [5, 0], [2, 3]])


def _run_indexed(averager, batches=BATCHES):
    """Multipliers moved by sgd only at the batch rows; returns per-row touch histories too."""
    tx = indexed_averaged(optax.sgd(1.0), averager)
    lam = jnp.arange(N, dtype=jnp.float32)
    state = tx.init(lam)

    @jax.jit
    def step(lam, state, idx, t):
        g = jnp.zeros(N).at[idx].set(-(t + 1.0) * (idx + 1.0))  # distinct values per row and step
        u, state = tx.update(g, state, lam, indices=idx)
        return optax.apply_updates(lam, u), state

    history = [[float(v)] for v in lam]
    states = [state]
    for t, idx in enumerate(batches):
        lam, state = step(lam, state, jnp.asarray(idx), t)
        for i in set(idx.tolist()):
            history[i].append(float(lam[i]))
        states.append(state)
    return lam, states, history


def test_indexed_polyak_averages_each_row_over_its_own_touches():
    lam, states, history = _run_indexed(polyak())
    np.testing.assert_allclose(averaged_params(states[-1], lam), [np.mean(h) for h in history], rtol=1e-6)
    np.testing.assert_array_equal(states[-1].count, [len(h) - 1 for h in history])


def test_indexed_lawa_and_ema_follow_the_per_row_clock():
    lam, states, history = _run_indexed(lawa(2, 1))
    expected = [np.mean(h[1:][-2:]) if len(h) > 1 else h[0] for h in history]
    np.testing.assert_allclose(averaged_params(states[-1], lam), expected, rtol=1e-6)
    lam, states, history = _run_indexed(ema(0.5, "linear"))
    expected = [_ema_reference(h, 0.5, "linear", 1, 0)[-1] for h in history]
    np.testing.assert_allclose(averaged_params(states[-1], lam), expected, rtol=1e-6)


@pytest.mark.parametrize("averager", [polyak(), lawa(2, 1), ema(0.9)])
def test_indexed_update_touches_only_the_batch_rows(averager):
    _, states, _ = _run_indexed(averager)
    for t, idx in enumerate(BATCHES):
        untouched = np.setdiff1d(np.arange(N), idx)
        before, after = states[t], states[t + 1]
        for b, a in zip(jax.tree.leaves(before.average), jax.tree.leaves(after.average)):
            b, a = np.asarray(b), np.asarray(a)  # per-row states are rows first (LAWA's ring too)
            np.testing.assert_array_equal(b[untouched], a[untouched])
        np.testing.assert_array_equal(before.count[untouched], after.count[untouched])
        np.testing.assert_array_equal(before.n[untouched], after.n[untouched])
        np.testing.assert_array_equal(after.count[idx], before.count[idx] + 1)
        np.testing.assert_array_equal(after.n[idx], before.n[idx] + 1)  # every touch is folded


def test_indexed_duplicate_rows_are_folded_once_per_step():
    tx = indexed_averaged(optax.sgd(1.0), polyak())
    lam = jnp.zeros(N)
    g = -jnp.ones(N)
    _, s_dup = tx.update(g, tx.init(lam), lam, indices=jnp.array([1, 1, 3]))
    _, s_one = tx.update(g, tx.init(lam), lam, indices=jnp.array([1, 3]))
    jax.tree.map(np.testing.assert_array_equal, s_dup, s_one)
    assert int(s_dup.n[1]) == 2


def test_indexed_averaged_over_fj_indexed_folds_its_row_updates():
    # fj.indexed returns the (B,) updates of the batch rows, not dense (N,) updates.
    tx = indexed_averaged(indexed(ascent(optax.sgd(1.0))), polyak())
    lam = jnp.arange(N, dtype=jnp.float32)
    state = tx.init(lam)

    @jax.jit
    def step(lam, state, idx, t):
        u, state = tx.update((t + 1.0) * (idx + 1.0), state, lam, indices=idx)
        return apply_row_updates(lam, u, idx), state

    history = [[float(v)] for v in lam]
    for t, idx in enumerate([*BATCHES, np.array([4, 4])]):  # a repeated row moves (and folds) once
        lam, state = step(lam, state, jnp.asarray(idx), t)
        for i in set(idx.tolist()):
            history[i].append(float(lam[i]))
    assert len(history[4]) == 2 and history[4][1] == 4.0 + 2 * 5 * 6.0  # both gradients, once
    expected = [np.mean(h) for h in history]
    np.testing.assert_allclose(averaged_params(state, lam), expected, rtol=1e-6)
    np.testing.assert_array_equal(state.n, [len(h) for h in history])


def test_indexed_bad_arguments_raise():
    tx = indexed_averaged(optax.sgd(1.0), polyak())
    lam = jnp.zeros(N)
    with pytest.raises(ValueError, match="needs indices="):
        tx.update(lam, tx.init(lam), lam)
    with pytest.raises(ValueError, match=r"indices must be 1-D \(one index per batch row\)"):
        tx.update(lam, tx.init(lam), lam, indices=jnp.zeros((2, 2), jnp.int32))
    with pytest.raises(TypeError, match="indices must be an integer array"):
        tx.update(lam, tx.init(lam), lam, indices=jnp.zeros(2))
    with pytest.raises(ValueError, match="share one leading"):
        tx.init({"a": jnp.zeros(3), "b": jnp.zeros(4)})
