"""fj.constrained / fj.feasible as optax transformations: composition, schemes, equivalences."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import feasjax as fj
from feasjax.core.transform import SCHEMES
from tests import reference_v010

EPS = 0.1


# ---------------------------------------------------------------- (f) the 0.1.0 solver
C = jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]])
D = jnp.array([1.0, 0.5])
A = jnp.array([[-1.0, -1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
B_VEC = jnp.array([-1.0, 2.0, -0.7, 5.0])
XR = jax.random.normal(jax.random.key(3), (12, 3))
YR = XR @ jnp.array([1.0, -2.0, 0.5]) + 0.3 * jax.random.normal(jax.random.key(4), (12,))

# name -> (kind, size, indexed, objective f(x), violations g(x, idx), x0)
PROBLEMS = {
    "equality": ("equality", 2, False, lambda x: jnp.sum(x**2), lambda x, i: C @ x - D,
                 jnp.zeros(3)),
    "inequality": ("inequality", 4, False, lambda x: jnp.sum(x**2), lambda x, i: A @ x - B_VEC,
                   jnp.zeros(2)),
    "sampled_inequality": ("inequality", 4, True, lambda x: jnp.sum(x**2),
                           lambda x, i: A[i] @ x - B_VEC[i], jnp.zeros(2)),
    "feasible_learning": ("inequality", 12, True, lambda x: 0.0,
                          lambda x, i: (XR[i] @ x - YR[i]) ** 2 - EPS, jnp.zeros(3)),
}


def _batches(indexed, size, steps):
    keys = jax.random.split(jax.random.key(7), steps)
    if not indexed:
        return [None] * steps
    return [jax.random.choice(k, size, (3,), replace=False) for k in keys]


def _group(kind, size, indexed):
    return fj.ConstraintGroup(size=size, kind=kind, indexed=indexed, reduction="mean",
                              init_multiplier=0.5, dual_optimizer=fj.ascent(optax.sgd(0.2)))


def _run_solver(make, name, scheme, steps):
    kind, size, indexed, f, g, x0 = PROBLEMS[name]

    def problem(x, idx):
        return fj.ProblemOutput(f(x) + 0.0 * jnp.sum(x), {"c": fj.ConstraintValue(g(x, idx))})

    solver = make(problem, optax.sgd(0.05), {"c": _group(kind, size, indexed)}, scheme=scheme)
    step = jax.jit(solver.step)
    state = solver.init(x0)
    for idx in _batches(indexed, size, steps):
        state, _ = step(state, idx, idx)
    return state.params, state.multipliers["c"]


def _run_transformation(name, scheme, steps):
    """A user-written step for each scheme, with the optax transformation."""
    kind, size, indexed, f, g, x0 = PROBLEMS[name]
    tx = fj.constrained(optax.sgd(0.05), {"c": _group(kind, size, indexed)}, scheme=scheme)

    def objective(x, lam, idx):
        return f(x) + jnp.mean(lam * g(x, idx))

    @jax.jit
    def step(x, state, idx):
        if scheme == "dual_then_primal":
            state = fj.dual_update(tx, state, violations=g(x, idx), indices=idx)
        grads = jax.grad(objective)(x, fj.multipliers(state, idx), idx)
        extra = {"violations": g(x, idx)} if scheme == "simultaneous" else {}
        updates, state = tx.update(grads, state, x, indices=idx, **extra)
        x = optax.apply_updates(x, updates)
        if scheme == "primal_then_dual":
            state = fj.dual_update(tx, state, violations=g(x, idx), indices=idx)
        return x, state

    x, state = x0, tx.init(x0)
    for idx in _batches(indexed, size, steps):
        x, state = step(x, state, idx)
    return x, fj.multipliers(state)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_transformation_and_solver_match_the_010_solver(name, scheme):
    ref_x, ref_lam = _run_solver(reference_v010.primal_dual, name, scheme, 150)
    new_x, new_lam = _run_solver(fj.primal_dual, name, scheme, 150)
    tx_x, tx_lam = _run_transformation(name, scheme, 150)
    assert float(jnp.abs(ref_lam - 0.5).max()) > 1e-2, "the multipliers should have moved"
    for x, lam in ((new_x, new_lam), (tx_x, tx_lam)):
        np.testing.assert_allclose(x, ref_x, atol=1e-6)
        np.testing.assert_allclose(lam, ref_lam, atol=1e-6)


# ---------------------------------------------------------------- (a) optax.chain on digits
def _digits_mlp():
    from feasjax.data.datasets import load_dataset
    from feasjax.models.losses import per_sample_loss_fn

    ds = load_dataset("digits")
    graphdef, params = nnx.split(fj.MLP(64, [64], 10, rngs=nnx.Rngs(0)))
    return ds, params, per_sample_loss_fn(graphdef, "cross_entropy")


def _train_with(tx, params, loss_fn, x, y, *, epochs, batch_size=64, key=jax.random.key(0)):
    n = x.shape[0]

    def step(carry, idx):
        p, s = carry
        batch = {"x": x[idx], "y": y[idx]}
        lam = fj.multipliers(s, idx)

        def objective(p):
            losses = loss_fn(p, batch)
            return jnp.mean(lam * (losses - EPS)), losses

        (value, losses), grads = jax.value_and_grad(objective, has_aux=True)(p)
        updates, s = tx.update(grads, s, p, losses=losses, indices=idx, value=value)
        return (optax.apply_updates(p, updates), s), value

    def epoch(carry, e):
        return jax.lax.scan(step, carry, fj.epoch_indices(jax.random.fold_in(key, e), n,
                                                          batch_size))

    run = jax.jit(lambda c: jax.lax.scan(epoch, c, jnp.arange(epochs)))
    (params, state), values = run((params, tx.init(params)))
    return params, state, values


def test_fl_inside_optax_chain_with_adamw_trains_digits_like_the_demo():
    from feasjax.experiments import RunConfig, run_method

    demo = run_method(fj.load_dataset("digits"), "fl", RunConfig(devices=1), progress=False)
    ds, params, loss_fn = _digits_mlp()
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
    fl = fj.feasible(optax.adamw(1e-2, weight_decay=1e-4), num_samples=len(y), epsilon=EPS)
    tx = optax.chain(optax.clip_by_global_norm(1.0), fl)
    params, state, _ = _train_with(tx, params, loss_fn, x, y, epochs=30)
    losses = loss_fn(params, {"x": x, "y": y})
    assert float(losses.max()) <= 1.2 * demo.metrics["train"]["max_loss"]
    assert float(jnp.mean(losses <= EPS)) >= demo.metrics["train"]["feasible_fraction"] - 0.01
    lam = fj.multipliers(state)
    assert int(fj.constrained_state(state).skipped) == 0
    assert float(lam.max()) > 1.5 > 1.0 > float(lam.min())  # hard samples weigh more


# ---------------------------------------------------------------- (c) extra args reach optax
def test_reduce_on_plateau_in_the_primal_chain_receives_value():
    primal = optax.chain(optax.sgd(0.1), optax.contrib.reduce_on_plateau(
        factor=0.5, patience=2, accumulation_size=1, cooldown=0))
    tx = fj.feasible(primal, num_samples=4, epsilon=EPS)
    w, state = jnp.zeros(2), tx.init(jnp.zeros(2))
    idx = jnp.array([0, 1])
    update = jax.jit(lambda g, s, w, v: tx.update(g, s, w, losses=jnp.ones(2), indices=idx,
                                                  value=v))
    scales = []
    for value in [5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]:  # improves, then a plateau
        upd, state = update(jnp.ones(2), state, w, jnp.asarray(value))
        scales.append(float(state.inner_state[1].scale))
    assert scales[:3] == [1.0, 1.0, 1.0] and scales[-1] < 1.0
    np.testing.assert_allclose(upd, -0.1 * scales[-1] * jnp.ones(2))


def test_lbfgs_gets_value_grad_and_value_fn():
    target = jnp.array([1.0, -2.0])

    def f(w):
        return jnp.sum((w - target) ** 2)

    tx = fj.constrained(optax.lbfgs(), {"c": fj.ConstraintGroup(size=1, init_multiplier=0.0)})
    w, state = jnp.zeros(2), tx.init(jnp.zeros(2))

    @jax.jit  # one compilation: eagerly, L-BFGS's line search traced anew every step
    def step(w, state):
        lam = fj.multipliers(state)
        value, grad = jax.value_and_grad(lambda w: f(w) + jnp.mean(lam * (w[:1] - 3)))(w)
        updates, state = tx.update(grad, state, w, violations=w[:1] - 3, value=value,
                                   grad=grad, value_fn=lambda w: f(w) + lam[0] * (w[0] - 3))
        return optax.apply_updates(w, updates), state

    for _ in range(10):  # the constraint w_0 <= 3 is inactive: plain L-BFGS
        w, state = step(w, state)
    assert float(fj.multipliers(state)[0]) == 0.0
    np.testing.assert_allclose(w, target, atol=1e-4)


# ---------------------------------------------------------------- optax contracts
def _tiny():
    tx = fj.feasible(optax.adam(0.1), num_samples=6, epsilon=EPS)
    grads, params = {"w": jnp.ones(3)}, {"w": jnp.zeros(3)}
    return tx, grads, params, jnp.array([4, 1]), jnp.array([0.5, 0.0])


def test_jit_equals_no_jit_and_does_not_retrace():
    tx, grads, params, idx, losses = _tiny()
    traces = []

    def update(g, s, p):
        traces.append(1)
        return tx.update(g, s, p, losses=losses, indices=idx)

    jitted, state_a, state_b = jax.jit(update), tx.init(params), tx.init(params)
    for _ in range(3):
        ua, state_a = update(grads, state_a, params)
        ub, state_b = jitted(grads, state_b, params)
        chex_equal = jax.tree.map(np.testing.assert_allclose, (ua, state_a), (ub, state_b))
        del chex_equal
    assert len(traces) == 3 + 1  # three eager calls, one trace for the jitted ones


def test_unexpected_extra_args_are_accepted_and_init_takes_shape_dtype_structs():
    tx, grads, params, idx, losses = _tiny()
    state = tx.init(jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params))
    updates, _ = tx.update(grads, state, params, losses=losses, indices=idx, foo=1, bar="x")
    assert updates["w"].shape == (3,)


def test_inject_hyperparams_of_epsilon_and_of_the_primal_learning_rate():
    tx = optax.inject_hyperparams(fj.feasible, static_args=("num_samples",))(
        primal_optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.5),
        num_samples=4, epsilon=0.25)
    state = tx.init(jnp.zeros(1))
    state.hyperparams["epsilon"] = jnp.asarray(1.0)  # losses 3 -> violation 2
    updates, state = jax.jit(lambda s: tx.update(jnp.ones(1), s, jnp.zeros(1),
                                                 losses=jnp.array([3.0]),
                                                 indices=jnp.array([2])))(state)
    np.testing.assert_allclose(fj.multipliers(state), [1.0, 1.0, 1.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(updates, [-0.5])


def test_around_multisteps_every_micro_batch_takes_its_dual_step():
    fl = fj.feasible(optax.MultiSteps(optax.sgd(1.0), every_k_schedule=2), num_samples=4,
                     epsilon=0.0)
    state = fl.init(jnp.zeros(1))
    u1, state = fl.update(jnp.ones(1), state, jnp.zeros(1), losses=jnp.array([1.0]),
                          indices=jnp.array([0]))
    u2, state = fl.update(3 * jnp.ones(1), state, jnp.zeros(1), losses=jnp.array([2.0]),
                          indices=jnp.array([3]))
    np.testing.assert_allclose(fj.multipliers(state), [1.1, 1.0, 1.0, 1.2], rtol=1e-6)
    np.testing.assert_allclose([u1[0], u2[0]], [0.0, -2.0])  # the mean of the two gradients


def test_inside_multisteps_it_runs_and_k1_equals_the_plain_transformation():
    tx, grads, params, idx, losses = _tiny()
    wrapped = optax.MultiSteps(tx, every_k_schedule=1)
    ua, sa = tx.update(grads, tx.init(params), params, losses=losses, indices=idx)
    ub, sb = wrapped.update(grads, wrapped.init(params), params, losses=losses, indices=idx)
    np.testing.assert_allclose(ua["w"], ub["w"])
    np.testing.assert_allclose(fj.multipliers(sa), fj.multipliers(sb))


# ---------------------------------------------------------------- skipping and errors
def test_nonfinite_losses_gradients_or_updates_skip_the_step():
    tx, grads, params, idx, losses = _tiny()
    state = tx.init(params)
    for g, l in (({"w": jnp.array([jnp.nan, 1.0, 1.0])}, losses),
                 (grads, jnp.array([jnp.inf, 0.0]))):
        updates, new = jax.jit(lambda g, s, l: tx.update(g, s, params, losses=l,
                                                         indices=idx))(g, state, l)
        assert float(jnp.abs(updates["w"]).max()) == 0.0
        np.testing.assert_array_equal(fj.multipliers(new), fj.multipliers(state))
        assert int(new.skipped) == 1 and int(new.inner_state[0].count) == 0
    bad_lr = fj.feasible(optax.sgd(float("nan")), num_samples=6, epsilon=EPS)
    updates, new = bad_lr.update(grads, bad_lr.init(params), params, losses=losses,
                                 indices=idx)
    assert int(new.skipped) == 1 and float(jnp.abs(updates["w"]).max()) == 0.0


def test_out_of_range_indices_inside_jit_write_nothing():
    tx, grads, params, _, losses = _tiny()
    state = tx.init(params)
    _, new = jax.jit(lambda s, i: tx.update(grads, s, params, losses=losses, indices=i))(
        state, jnp.array([-1, 6]))
    np.testing.assert_array_equal(fj.multipliers(new), fj.multipliers(state))
    assert int(new.skipped) == 1


@pytest.mark.parametrize("call, match", [
    (lambda tx, s: tx.update({"w": jnp.ones(3)}, s, None, indices=jnp.array([0])),
     "scheme 'simultaneous' takes its dual step in update: pass"),
    (lambda tx, s: tx.update({"w": jnp.ones(3)}, s, None, losses=jnp.ones(2),
                             indices=jnp.array([0])),
     r"losses must have shape \(1,\) \(one per index\), got \(2,\)"),
    (lambda tx, s: tx.update({"w": jnp.ones(3)}, s, None, losses=jnp.ones(1)),
     "indices are required for the indexed constraint group 'samples'"),
    (lambda tx, s: tx.update({"w": jnp.ones(3)}, s, None, losses=jnp.ones(1, jnp.int32),
                             indices=jnp.array([0])),
     "losses must be a 1-D float array"),
])
def test_bad_update_arguments_raise(call, match):
    tx = fj.feasible(optax.sgd(0.1), num_samples=6, epsilon=EPS)
    with pytest.raises((ValueError, TypeError), match=match):
        call(tx, tx.init({"w": jnp.zeros(3)}))


def test_alternating_schemes_refuse_losses_in_update_and_need_dual_update():
    tx = fj.feasible(optax.sgd(0.1), num_samples=6, epsilon=EPS, scheme="dual_then_primal")
    with pytest.raises(ValueError, match="fj.dual_update"):
        tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), None, losses=jnp.ones(1),
                  indices=jnp.array([0]))


def test_descent_dual_optimizers_are_refused():
    for make in (lambda: fj.feasible(optax.sgd(0.1), num_samples=3, epsilon=EPS,
                                     dual_optimizer=optax.sgd(0.1)),
                 lambda: fj.feasible_learning(lambda p, b: b, optax.sgd(0.1), num_samples=3,
                                              epsilon=EPS, dual_optimizer=optax.adam(0.1))):
        with pytest.raises(ValueError, match=r"must be an ascent optimizer.*fj\.ascent"):
            make()
    fj.feasible(optax.sgd(0.1), num_samples=3, epsilon=EPS, dual_optimizer=fj.nupi(0.1))


def test_penalty_formulations_are_for_the_solver():
    group = fj.ConstraintGroup(size=1, formulation=fj.augmented_lagrangian(1.0))
    with pytest.raises(ValueError, match="use fj.primal_dual for penalty formulations"):
        fj.constrained(optax.sgd(0.1), {"c": group})


# ---------------------------------------------------------------- (b) nnx.Optimizer
class _BNDropoutNet(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(64, 32, rngs=rngs)
        self.norm = nnx.BatchNorm(32, rngs=rngs)
        self.drop = nnx.Dropout(0.3, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(jax.nn.relu(self.norm(self.hidden(x)))))


def _nnx_run(seed, x, y, epochs=8, batch=64):
    model = _BNDropoutNet(nnx.Rngs(seed))
    fl = fj.feasible(optax.adam(3e-3), num_samples=x.shape[0], epsilon=EPS)
    optimizer = nnx.Optimizer(model, fl, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, idx):
        lam = fj.multipliers(optimizer, idx)

        def objective(model):
            losses = optax.softmax_cross_entropy_with_integer_labels(model(x[idx]), y[idx])
            return jnp.mean(lam * (losses - EPS)), losses

        (_, losses), grads = nnx.value_and_grad(objective, has_aux=True)(model)
        optimizer.update(model, grads, losses=losses, indices=idx)

    model.train()
    for epoch in range(epochs):
        for idx in fj.epoch_indices(jax.random.key(100 * seed + epoch), x.shape[0], batch):
            train_step(model, optimizer, idx)
    model.eval()
    return model, optimizer


def test_nnx_optimizer_trains_a_batchnorm_dropout_model_with_fl():
    ds = fj.load_dataset("digits")
    x, y = jnp.asarray(ds.x_train[:512]), jnp.asarray(ds.y_train[:512])
    model, optimizer = _nnx_run(0, x, y)
    logits = model(x)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    assert float(jnp.mean(jnp.argmax(logits, -1) == y)) > 0.9
    lam = fj.multipliers(optimizer)
    assert float(lam.max()) > 1.0 and int(fj.constrained_state(optimizer).skipped) == 0
    # Eval mode: running statistics (moved from their init) and no dropout, so a sample's
    # output does not depend on the batch around it and two calls agree.
    assert float(jnp.abs(model.norm.mean[...]).max()) > 0.0
    np.testing.assert_allclose(model(x[:1]), logits[:1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model(x), logits)
    del losses
    again, optimizer_again = _nnx_run(0, x, y)
    np.testing.assert_array_equal(again(x), logits)  # same seed: bit-identical
    np.testing.assert_array_equal(fj.multipliers(optimizer_again), lam)


def test_dual_update_updates_an_nnx_optimizer_in_place():
    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    fl = fj.feasible(optax.sgd(0.1), num_samples=3, epsilon=0.0, scheme="dual_then_primal")
    optimizer = nnx.Optimizer(model, fl, wrt=nnx.Param)
    assert fj.dual_update(fl, optimizer, losses=jnp.array([2.0]),
                          indices=jnp.array([2])) is optimizer
    np.testing.assert_allclose(fj.multipliers(optimizer), [1.0, 1.0, 1.2], rtol=1e-6)


def test_multipliers_read_nan_for_traced_out_of_range_indices_negative_ones_too():
    # gather_rows, as the dual step reads them: a negative index must not wrap to the last row
    tx = fj.feasible(optax.sgd(0.1), num_samples=3, epsilon=0.1)
    lam = jax.jit(lambda s, i: fj.multipliers(s, i))(tx.init(jnp.zeros(2)), jnp.array([0, -1, 3]))
    assert lam[0] == 1.0 and bool(jnp.all(jnp.isnan(lam[1:])))
