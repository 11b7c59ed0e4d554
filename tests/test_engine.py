"""The engine runs any step: the README's nnx.Optimizer model (BatchNorm + Dropout) with its own
train step gets compiled epochs, a bit-exact resume after kill -9, the mesh and seed sweeps; a
plain fj.feasible step and a PrimalDual go through the same loop."""
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import feasjax as fj
from tests._helpers import kill_child

N, B, EPOCHS, EPSILON = 256, 32, 3, 0.1


def _digits():
    data = fj.load_dataset("digits")
    return {"x": jnp.asarray(data.x_train[:N]), "y": jnp.asarray(data.y_train[:N])}


class Net(nnx.Module):  # the README's model: batch statistics and dropout RNG
    def __init__(self, rngs):
        self.hidden, self.norm = nnx.Linear(64, 32, rngs=rngs), nnx.BatchNorm(32, rngs=rngs)
        self.drop, self.out = nnx.Dropout(0.1, rngs=rngs), nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(jax.nn.relu(self.norm(self.hidden(x)))))


def train_step(model, optimizer, batch, idx):  # the README's step, the batch passed in
    weights = fj.multipliers(optimizer, idx)

    def loss_fn(model):
        losses = optax.softmax_cross_entropy_with_integer_labels(model(batch["x"]), batch["y"])
        return jnp.mean(weights * (losses - EPSILON)), losses

    (_, losses), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads, losses=losses, indices=idx)
    return losses


def _model(seed=0):
    model = Net(nnx.Rngs(seed))
    # adam's eps larger than its 1e-8 default: BatchNorm cancels the hidden layer's bias and
    # the weights of near-constant pixels, whose gradients are then float noise that adam
    # turns into lr-sized steps of random sign; runs that differ only in rounding (a vmapped
    # sweep) would differ by far more than rounding.
    fl = fj.feasible(optax.adam(1e-2, eps=1e-4), num_samples=N, epsilon=EPSILON)
    return model, nnx.Optimizer(model, optax.chain(optax.clip_by_global_norm(1.0), fl),
                                wrt=nnx.Param)


def _train(seed=0, **kw):
    model, optimizer = _model(seed)
    step, carry = fj.nnx_step(train_step, model, optimizer)
    carry, hist = fj.train(step, carry, _digits(), epochs=EPOCHS, batch_size=B,
                           key=jax.random.key(seed), epsilon=EPSILON, progress=False, **kw)
    fj.nnx_update(model, optimizer, carry)
    return model, optimizer, hist


def _eval_losses(model):
    model.eval()
    data = _digits()
    return optax.softmax_cross_entropy_with_integer_labels(model(data["x"]), data["y"])


def _flat(tree):
    leaves = jax.tree_util.tree_flatten_with_path(nnx.state(tree))[0]
    return {jax.tree_util.keystr(p): np.asarray(jax.random.key_data(x) if jnp.issubdtype(
        x.dtype, jax.dtypes.prng_key) else x) for p, x in leaves}


@pytest.fixture(scope="module")
def reference():
    model, optimizer, hist = _train()
    return _flat((model, optimizer)), hist, np.asarray(_eval_losses(model))


def test_nnx_step_trains_in_compiled_epochs_with_its_multipliers(reference):
    _, hist, losses = reference
    assert len(hist.mean_loss) == EPOCHS and hist.mean_loss[-1] < hist.mean_loss[0]
    assert hist.multiplier_max[-1] > 1.0  # hard samples were up-weighted
    assert hist.skipped[-1] == 0 and np.isfinite(losses).all()
    # One trace of the user's step for every epoch and every later call with the same step.
    model, optimizer = _model()
    traces = []

    def counted(*args):
        traces.append(1)
        return train_step(*args)

    step, carry = fj.nnx_step(counted, model, optimizer)
    for _ in range(2):
        _, carry = fj.nnx_step(counted, *_model())
        fj.train(step, carry, _digits(), epochs=2, batch_size=B, key=jax.random.key(0),
                 progress=False)
    assert len(traces) == 1


def test_nnx_step_skips_a_step_with_a_nan_sample_and_leaves_batch_statistics():
    data = _digits()
    data["x"] = data["x"].at[7].set(jnp.nan)
    model, optimizer = _model()
    step, carry = fj.nnx_step(train_step, model, optimizer)
    # BatchNorm spreads the NaN over the whole batch: every loss of the step is NaN.
    with pytest.raises(FloatingPointError,
                       match=r"epoch 0, step \d+ \(global step \d+\): non-finite losses"):
        fj.train(step, carry, data, epochs=1, batch_size=B, key=jax.random.key(0),
                 on_nonfinite="raise", progress=False)
    model, optimizer = _model()
    step, carry = fj.nnx_step(train_step, model, optimizer)
    carry, hist = fj.train(step, carry, data, epochs=1, batch_size=B, key=jax.random.key(0),
                           progress=False)
    fj.nnx_update(model, optimizer, carry)
    assert hist.skipped == [1]
    assert all(np.isfinite(v).all() for v in _flat((model, optimizer)).values())


def test_eight_devices_equal_one_device(reference):
    flat, hist, losses = reference
    model, optimizer, sharded = _train(mesh=fj.data_mesh())
    lam = fj.constrained_state(optimizer).multipliers["samples"]
    assert lam.sharding.spec == jax.sharding.PartitionSpec("data")
    assert len(lam.sharding.device_set) == 8
    np.testing.assert_allclose(_eval_losses(model), losses, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sharded.mean_loss, hist.mean_loss, rtol=1e-5)
    np.testing.assert_allclose(lam, flat["[1]['opt_state'][1]['multipliers']['samples'].value"],
                               rtol=1e-5, atol=1e-5)


def test_a_four_seed_sweep_equals_four_single_runs():
    seeds = range(4)
    singles = [_train(seed) for seed in seeds]
    pairs = [_model(seed) for seed in seeds]
    steps_and_carries = [fj.nnx_step(train_step, *pair) for pair in pairs]
    carries = fj.parallel.stack_runs([carry for _, carry in steps_and_carries])
    keys = jnp.stack([jax.random.key(seed) for seed in seeds])
    carries, hist = fj.train(steps_and_carries[0][0], carries, _digits(), epochs=EPOCHS,
                             batch_size=B, key=keys, epsilon=EPSILON, progress=False, runs=4)
    for seed, (model, optimizer) in zip(seeds, pairs):
        fj.nnx_update(model, optimizer, jax.tree.map(lambda x, s=seed: x[s], carries))
        single_model, _, single_hist = singles[seed]
        np.testing.assert_allclose(_eval_losses(model), _eval_losses(single_model),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(hist.mean_loss[-1][seed], single_hist.mean_loss[-1],
                                   rtol=1e-5)


def test_a_plain_feasible_step_and_a_solver_run_through_the_same_loop():
    x = jax.random.normal(jax.random.key(0), (32, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5])
    data = {"x": x, "y": y}

    def sample_loss(w, batch):
        return (batch["x"] @ w - batch["y"]) ** 2

    tx = fj.feasible(optax.sgd(0.05), num_samples=32, epsilon=0.01)

    def step(carry, batch, idx, *, unique_indices=False):
        w, state = carry
        weights = fj.multipliers(state, idx)

        def objective(w):
            losses = sample_loss(w, batch)
            return jnp.mean(weights * (losses - 0.01)), losses

        grads, losses = jax.grad(objective, has_aux=True)(w)
        updates, state = tx.update(grads, state, w, losses=losses, indices=idx,
                                   unique_indices=unique_indices)
        return (optax.apply_updates(w, updates), state), {"losses": losses}

    w0 = jnp.zeros(3)
    (w, state), hist = fj.train(step, (w0, tx.init(w0)), data, epochs=4, batch_size=8,
                                key=jax.random.key(1), epsilon=0.01, progress=False)
    solver = fj.feasible_learning(sample_loss, optax.sgd(0.05), num_samples=32, epsilon=0.01)
    solved, solver_hist = fj.train(solver, solver.init(jnp.zeros(3)), data, epochs=4,
                                   batch_size=8, key=jax.random.key(1), epsilon=0.01,
                                   progress=False)
    # The same algorithm (simultaneous scheme, mean reduction), so the same numbers.
    np.testing.assert_allclose(w, solved.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fj.multipliers(state), solved.multipliers["samples"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hist.mean_loss, solver_hist.mean_loss, rtol=1e-5)
    np.testing.assert_allclose(hist.multiplier_max, solver_hist.multiplier_max, rtol=1e-5)


def test_bad_arguments_are_named():
    model, optimizer = _model()
    step, carry = fj.nnx_step(train_step, model, optimizer)
    with pytest.raises(ValueError, match="runs must be a positive int"):
        fj.train(step, carry, _digits(), epochs=1, batch_size=B, key=jax.random.key(0), runs=0)
    with pytest.raises(ValueError, match="every leaf of the carry must have a leading run axis"):
        fj.train(step, carry, _digits(), epochs=1, batch_size=B, key=jax.random.key(0), runs=4)
    with pytest.raises(TypeError, match="step must be a function"):
        fj.train(3, carry, _digits(), epochs=1, batch_size=B, key=jax.random.key(0))
    with pytest.raises(ValueError, match="checkpoint_every must be a positive int"):
        fj.train(step, carry, _digits(), epochs=1, batch_size=B, key=jax.random.key(0),
                 checkpoint_every=0)


CHILD = """
model, optimizer, hist = t._train(checkpoint_dir=directory, checkpoint_every=5,
                                  after_save=after_save)
np.savez(out, **t._flat((model, optimizer)))
print("done", flush=True)
"""


def _child(tmp_path, die_after):
    return kill_child(tmp_path, "test_engine", CHILD, die_after=die_after)


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_ends_bit_identical(tmp_path, reference):
    proc, _ = _child(tmp_path, die_after=13)  # mid-epoch 1 (8 steps an epoch, chunks of 5 and 3)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "saved 13" in proc.stdout and "done" not in proc.stdout
    proc, out = _child(tmp_path, die_after=-1)
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-2000:]
    assert "saved 5" not in proc.stdout  # it resumed, it did not start again
    uninterrupted = _train(checkpoint_dir=tmp_path / "uninterrupted", checkpoint_every=5)
    expected, final = _flat(uninterrupted[:2]), np.load(out)
    assert sorted(final.files) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(final[name], expected[name], err_msg=name, strict=True)
    # Chunks of 5 steps are the same computation as whole epochs.
    for name, value in reference[0].items():
        np.testing.assert_array_equal(expected[name], value, err_msg=name, strict=True)
