"""Models with state (BatchNorm statistics, dropout RNG streams) and the stateful loss contract.

``loss(params, batch, model_state) -> (losses, new_model_state)`` in training mode, checked
against hand computations, under jit, grad, scan, vmap over seeds and shard_map over devices.
Models are built under ``nnx.jit`` (one compilation instead of one per initialiser shape).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from feasjax.models.losses import (cross_entropy, eval_loss_fn, has_model_state, per_sample_loss_fn,
                                   predict_fn, split_model, stateful_loss_fn)
from feasjax.models.nets import CNN, MLP, BasicBlock, ResNet
from tests._helpers import assert_bit_identical

EPS = 1e-5  # BatchNorm epsilon of feasjax.models.nets
MOMENTUM = 0.9  # BatchNorm momentum of feasjax.models.nets

make_cnn = nnx.jit(
    lambda key: CNN((8, 8, 1), 3, features=(4, 4), hidden=8, batch_norm=True, dropout=0.5,
                    rngs=nnx.Rngs(key))
)


def _host(tree):
    """The tree with numpy leaves (PRNG keys as their key data), for exact comparisons."""
    def leaf(a):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(a)

    return jax.tree.map(leaf, tree)


def _batch(n, shape=(64,), seed=0, classes=3):
    kx, ky = jax.random.split(jax.random.key(seed))
    return {"x": jax.random.normal(kx, (n, *shape)),
            "y": jax.random.randint(ky, (n,), 0, classes)}


def _count(state):
    return int(np.asarray(state["dropout"]["rngs"]["count"][...]))


@pytest.fixture(scope="module")
def cnn():
    model = make_cnn(jax.random.key(0))
    graphdef, params, model_state = split_model(model)
    return model, graphdef, params, model_state, jax.jit(stateful_loss_fn(graphdef))


class _OldCNN(nnx.Module):
    """feasjax.models.CNN before batch_norm/dropout existed, verbatim in what it computes."""

    def __init__(self, image_shape, out_features, *, features=(16, 32), hidden=64, rngs):
        self.image_shape = tuple(image_shape)
        channels = (image_shape[2], *features)
        self.convs = nnx.List(
            [nnx.Conv(a, b, (3, 3), rngs=rngs) for a, b in zip(channels[:-1], channels[1:])]
        )
        height, width = image_shape[:2]
        for _ in features:
            height, width = -(-height // 2), -(-width // 2)
        self.dense = nnx.Linear(height * width * features[-1], hidden, rngs=rngs)
        self.head = nnx.Linear(hidden, out_features, rngs=rngs)

    def __call__(self, x):
        x = x.reshape(x.shape[0], *self.image_shape)
        for conv in self.convs:
            x = jax.nn.relu(conv(x))
            x = nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2), padding="SAME")
        x = jax.nn.relu(self.dense(x.reshape(x.shape[0], -1)))
        return self.head(x)


def test_default_cnn_is_the_old_cnn():
    old = _OldCNN((8, 8, 1), 10, rngs=nnx.Rngs(0))
    new = CNN((8, 8, 1), 10, batch_norm=False, dropout=0.0, rngs=nnx.Rngs(0))
    old_params, new_params = nnx.state(old, nnx.Param), nnx.state(new, nnx.Param)
    old_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(old_params)[0]]
    assert [p for p, _ in jax.tree_util.tree_flatten_with_path(new_params)[0]] == old_paths
    assert_bit_identical(new_params, old_params)
    assert not has_model_state(split_model(new)[2])  # nothing but parameters
    x = _batch(5)["x"]
    np.testing.assert_array_equal(new(x), old(x))
    # The stateful variant starts from the same convolution and dense weights.
    stateful = CNN((8, 8, 1), 10, batch_norm=True, dropout=0.5, rngs=nnx.Rngs(0))
    for name in ("convs", "dense", "head"):
        assert_bit_identical(nnx.state(getattr(stateful, name)), new_params[name])


@pytest.mark.parametrize("image_shape", [(8, 8, 1)])  # 32x32x3: abstract shapes, below
def test_resnet_runs_and_holds_state(image_shape):
    model = nnx.jit(lambda: ResNet(image_shape, 5, widths=(4, 8), blocks=(1, 1), dropout=0.3,
                                   rngs=nnx.Rngs(0)))()
    graphdef, params, model_state = split_model(model)
    batch = _batch(4, image_shape)
    assert jax.jit(predict_fn(graphdef))(params, batch["x"], model_state).shape == (4, 5)
    # stem BN + 2 per block + the projection BN of the stride-2 block: 6 BNs, mean and var each.
    assert len(jax.tree.leaves(nnx.state(model, nnx.BatchStat))) == 2 * 6
    assert len(jax.tree.leaves(nnx.state(model, nnx.RngState))) == 2  # dropout key and count
    assert model.layers[0].project is None and model.layers[1].project is not None
    flat = {"x": batch["x"].reshape(4, -1), "y": batch["y"]}  # flat images are accepted too
    losses, new_state = jax.jit(stateful_loss_fn(graphdef))(params, flat, model_state)
    assert losses.shape == (4,) and bool(jnp.all(jnp.isfinite(losses)))
    # The stem's running statistics follow its pre-BN activations (the stem conv is stateless).
    h = np.asarray(model.stem(batch["x"]), np.float64)
    np.testing.assert_allclose(new_state["stem_bn"]["mean"][...],
                               (1 - MOMENTUM) * h.mean((0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new_state["stem_bn"]["var"][...],
                               MOMENTUM + (1 - MOMENTUM) * h.var((0, 1, 2)), rtol=1e-4)


def test_default_resnets_shapes_and_resnet18_size():
    """Abstract shapes only (no compilation): the defaults and ResNet-18 proper."""
    for image_shape in [(8, 8, 1), (32, 32, 3)]:
        graphdef, params, state = split_model(
            nnx.eval_shape(lambda s=image_shape: ResNet(s, 10, rngs=nnx.Rngs(0))))
        x = jax.ShapeDtypeStruct((2, math.prod(image_shape)), jnp.float32)
        assert jax.eval_shape(predict_fn(graphdef), params, x, state).shape == (2, 10)
    resnet18 = nnx.eval_shape(lambda: ResNet((32, 32, 3), 10, widths=(64, 128, 256, 512),
                                             blocks=(2, 2, 2, 2), rngs=nnx.Rngs(0)))
    # The CIFAR-10 ResNet-18 (3x3 stem, bias-free convolutions, BN, 512 -> 10 head).
    assert sum(p.size for p in jax.tree.leaves(nnx.state(resnet18, nnx.Param))) == 11_173_962
    graphdef, state = nnx.split(nnx.eval_shape(lambda: BasicBlock(8, 16, stride=2,
                                                                  rngs=nnx.Rngs(0))))
    out = jax.eval_shape(lambda s: nnx.merge(graphdef, s)(jnp.ones((2, 8, 8, 8))), state)
    assert out.shape == (2, 4, 4, 16)


def test_cnn_train_step_running_statistics_by_hand(cnn):
    model, graphdef, params, model_state, f = cnn
    assert len(jax.tree.leaves(nnx.state(model, nnx.BatchStat))) == 4
    batch = _batch(6, (8, 8, 1))
    losses, new_state = f(params, batch, model_state)
    assert losses.shape == (6,)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), new_state) == jax.tree.map(
        lambda a: (a.shape, a.dtype), model_state)
    # Forward by hand: conv -> BN with the batch's statistics -> relu -> pool.
    x = batch["x"]
    for conv, norm, got in zip(model.convs, model.norms, new_state["norms"].values()):
        h = np.asarray(conv(x), np.float64)
        mean, var = h.mean((0, 1, 2)), h.var((0, 1, 2))
        np.testing.assert_allclose(got["mean"][...], (1 - MOMENTUM) * mean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got["var"][...], MOMENTUM + (1 - MOMENTUM) * var, rtol=1e-4)
        normed = (h - mean) / np.sqrt(var + EPS) * np.asarray(norm.scale[...]) + np.asarray(
            norm.bias[...])
        x = nnx.avg_pool(jax.nn.relu(jnp.asarray(normed, jnp.float32)), (2, 2), (2, 2), "SAME")
    # A second step from the returned state: the running mean moves on by the same batch mean.
    _, second = f(params, batch, new_state)
    np.testing.assert_allclose(second["norms"][0]["mean"][...],
                               (1 + MOMENTUM) * new_state["norms"][0]["mean"][...], rtol=1e-5)
    assert_bit_identical(model_state, split_model(model)[2])  # the caller's state is untouched


class _BatchNormOnly(nnx.Module):
    def __init__(self, rngs):
        self.bn = nnx.BatchNorm(2, momentum=0.5, use_scale=False, use_bias=False, rngs=rngs)

    def __call__(self, x):
        return self.bn(x)


def test_batchnorm_only_train_and_eval_exactly():
    graphdef, params, model_state = split_model(_BatchNormOnly(nnx.Rngs(0)))
    x = jnp.array([[1.0, -2.0], [3.0, 0.0], [5.0, 2.0], [7.0, 4.0]])
    batch = {"x": x, "y": jnp.zeros((4, 2))}
    losses, state = stateful_loss_fn(graphdef, "squared_error")(params, batch, model_state)
    mean, var = np.array([4.0, 1.0]), np.array([5.0, 5.0])
    np.testing.assert_allclose(state["bn"]["mean"][...], 0.5 * mean, rtol=1e-6)
    np.testing.assert_allclose(state["bn"]["var"][...], 0.5 + 0.5 * var, rtol=1e-6)
    normed = (np.asarray(x) - mean) / np.sqrt(var + EPS)  # train mode: the batch's statistics
    np.testing.assert_allclose(losses, (normed**2).sum(1), rtol=1e-5)
    # Eval mode: the running statistics, whatever the batch.
    expected = (np.asarray(x) - 0.5 * mean) / np.sqrt(0.5 + 0.5 * var + EPS)
    np.testing.assert_allclose(predict_fn(graphdef)(params, x, state), expected, rtol=1e-6)
    np.testing.assert_allclose(eval_loss_fn(graphdef, "squared_error")(params, batch, state),
                               (expected**2).sum(1), rtol=1e-5)


def test_eval_mode_is_per_sample_and_deterministic(cnn):
    _, graphdef, params, model_state, f = cnn
    batch = _batch(6, (8, 8, 1))
    _, trained = f(params, batch, model_state)
    evaluate = jax.jit(eval_loss_fn(graphdef))
    full = evaluate(params, batch, trained)
    alone = evaluate(params, {"x": batch["x"][:1], "y": batch["y"][:1]}, trained)
    np.testing.assert_allclose(alone, full[:1], rtol=1e-5)
    np.testing.assert_array_equal(evaluate(params, batch, trained), full)
    # No dropout: another RNG count gives the same outputs.
    advanced = jax.tree.map(lambda a: a, trained)
    advanced["dropout"]["rngs"]["count"][...] = jnp.uint32(7)
    np.testing.assert_array_equal(evaluate(params, batch, advanced), full)
    logits = predict_fn(graphdef)(params, batch["x"], trained)
    np.testing.assert_allclose(jax.vmap(cross_entropy)(logits, batch["y"]), full, rtol=1e-5)


def test_dropout_advances_and_is_reproducible(cnn):
    _, graphdef, params, model_state, _ = cnn
    batch = _batch(8, (8, 8, 1))
    loss = stateful_loss_fn(graphdef)

    def run(params, state):
        return jax.lax.scan(lambda s, _: loss(params, batch, s)[::-1], state, length=3)

    state, losses = jax.jit(run)(params, model_state)
    assert _count(state) == 3 and _count(model_state) == 0
    assert not np.array_equal(losses[0], losses[1]) and not np.array_equal(losses[1], losses[2])
    # The scan carries the state exactly as three separate jitted calls do.
    f, s = jax.jit(loss), model_state
    for step in range(3):
        step_losses, s = f(params, batch, s)
        np.testing.assert_array_equal(step_losses, losses[step])
    assert_bit_identical(s, state)
    # A second model from the same seed reproduces the run bit for bit.
    _, params2, state2 = split_model(make_cnn(jax.random.key(0)))
    again, losses_again = jax.jit(run)(params2, state2)
    np.testing.assert_array_equal(losses_again, losses)
    assert_bit_identical(again, state)


def test_cnn_gradient_is_finite(cnn):
    _, _, params, model_state, f = cnn
    batch = _batch(6, (8, 8, 1))

    def objective(p):
        losses, new_state = f(p, batch, model_state)
        return jnp.mean(losses), new_state

    grads, aux = jax.jit(jax.grad(objective, has_aux=True))(params)
    assert_bit_identical(aux, f(params, batch, model_state)[1])
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads["head"]))


class _LinearBatchNorm(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(3, 2, rngs=rngs)
        self.bn = nnx.BatchNorm(2, momentum=0.5, rngs=rngs)

    def __call__(self, x):
        return self.bn(self.linear(x))


def test_gradient_flows_through_batch_statistics():
    """A smooth model (no ReLU), so a central finite difference checks the gradient."""
    graphdef, params, model_state = split_model(_LinearBatchNorm(nnx.Rngs(0)))
    batch = {"x": jax.random.normal(jax.random.key(1), (6, 3)),
             "y": jax.random.normal(jax.random.key(2), (6, 2))}
    f = jax.jit(stateful_loss_fn(graphdef, "squared_error"))

    def objective(p):
        return jnp.mean(f(p, batch, model_state)[0])

    grads = jax.grad(objective)(params)
    # BN subtracts the batch mean, so the linear bias has no effect, and no gradient, only
    # because the gradient flows through the batch statistics.
    np.testing.assert_allclose(grads["linear"]["bias"][...], 0.0, atol=1e-6)
    leaves = jax.tree.leaves(grads)
    keys = iter(jax.random.split(jax.random.key(3), len(leaves)))
    direction = jax.tree.map(lambda p: jax.random.normal(next(keys), p.shape), params)

    def along(t):
        return float(objective(jax.tree.map(lambda p, d: p + t * d, params, direction)))

    finite_diff = (along(1e-2) - along(-1e-2)) / 2e-2
    directional = sum(float(jnp.vdot(g, d)) for g, d in zip(leaves, jax.tree.leaves(direction)))
    assert directional == pytest.approx(finite_diff, rel=1e-2)


def test_vmap_over_seeds_equals_single_runs(cnn):
    _, graphdef, params0, state0, f = cnn
    _, params1, state1 = split_model(make_cnn(jax.random.key(1)))
    stack = lambda *trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees)  # noqa: E731
    batch = _batch(6, (8, 8, 1))
    losses, states = jax.jit(jax.vmap(stateful_loss_fn(graphdef), in_axes=(0, None, 0)))(
        stack(params0, params1), batch, stack(state0, state1))
    for run, (p, s) in enumerate([(params0, state0), (params1, state1)]):
        single_losses, single_state = f(p, batch, s)
        np.testing.assert_array_equal(losses[run], single_losses)
        assert_bit_identical(jax.tree.map(lambda a: a[run], states), single_state)


def test_shard_map_syncs_statistics_and_splits_dropout(cnn):
    _, graphdef, params, model_state, f = cnn
    mesh = jax.make_mesh((2,), ("data",), devices=jax.devices()[:2])
    loss = stateful_loss_fn(graphdef, axis_name="data")

    def per_device(p, b, s):  # return each device's state, stacked, to compare them
        losses, new_state = loss(p, b, s)
        return losses, jax.tree.map(lambda a: a[None], new_state)

    sharded = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P("data"), P()),
                                    out_specs=(P("data"), P("data")), check_vma=False))
    batch = _batch(8, (8, 8, 1))
    losses, states = sharded(params, jax.device_put(batch, NamedSharding(mesh, P("data"))),
                             model_state)
    losses, states = np.asarray(losses), _host(states)
    first, second = (jax.tree.map(lambda a, i=i: a[i], states) for i in range(2))
    assert_bit_identical(first, second)
    assert _count(first) == 1  # the stored stream advances once, its key stays the same
    assert_bit_identical(first["dropout"]["rngs"]["key"],
                         _host(model_state)["dropout"]["rngs"]["key"])
    # Each device ran the plain loss on its half with its index folded into the dropout key.
    keys, rest = nnx.split_state(model_state, nnx.RngKey, ...)
    halves = []
    for device in range(2):
        folded = jax.tree.map(lambda k, d=device: jax.random.fold_in(k, d), keys)
        half = jax.tree.map(lambda a, d=device: a[4 * d: 4 * d + 4], batch)
        local_losses, local_state = f(params, half, nnx.merge_state(folded, rest))
        np.testing.assert_allclose(losses[4 * device: 4 * device + 4], local_losses, rtol=1e-5)
        halves.append(local_state["norms"])
    expected = jax.tree.map(lambda a, b: (a + b) / 2, *halves)
    for got, want in zip(jax.tree.leaves(first["norms"]), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # The same samples on both devices: equal statistics, but different dropout masks.
    twice = jax.tree.map(lambda a: jnp.concatenate([a[:4], a[:4]]), batch)
    losses, _ = sharded(params, jax.device_put(twice, NamedSharding(mesh, P("data"))),
                        model_state)
    losses = np.asarray(losses)
    assert not np.array_equal(losses[:4], losses[4:])


def test_stateless_model_through_the_stateful_contract():
    model = MLP(4, [6], 3, rngs=nnx.Rngs(0))
    graphdef, params, model_state = split_model(model)
    assert not has_model_state(model_state) and not has_model_state(None)
    batch = {"x": _batch(5, (4,))["x"], "y": jnp.array([0, 2, 1, 1, 0])}
    losses, new_state = jax.jit(stateful_loss_fn(graphdef))(params, batch, model_state)
    np.testing.assert_allclose(losses, per_sample_loss_fn(graphdef)(params, batch), rtol=1e-6)
    assert not has_model_state(new_state)
    np.testing.assert_allclose(eval_loss_fn(graphdef)(params, batch, model_state), losses,
                               rtol=1e-6)
    # None stands for "no state" too, and comes back as None.
    none_losses, none_state = stateful_loss_fn(graphdef)(params, batch, None)
    assert none_state is None
    np.testing.assert_allclose(none_losses, losses, rtol=1e-6)
    np.testing.assert_allclose(eval_loss_fn(graphdef)(params, batch, None), losses, rtol=1e-6)
    np.testing.assert_array_equal(predict_fn(graphdef)(params, batch["x"], None),
                                  predict_fn(graphdef)(params, batch["x"]))


def test_stateful_argument_errors():
    rngs = nnx.Rngs(0)
    for bad in (1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\)"):
            CNN((8, 8, 1), 3, dropout=bad, rngs=rngs)
        with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\)"):
            ResNet((8, 8, 1), 3, dropout=bad, rngs=rngs)
    with pytest.raises(ValueError, match="batch_norm must be a bool"):
        CNN((8, 8, 1), 3, batch_norm=1, rngs=rngs)
    with pytest.raises(ValueError, match="widths and blocks must be non-empty and of equal"):
        ResNet((8, 8, 1), 3, widths=(4, 8), blocks=(1,), rngs=rngs)
    with pytest.raises(ValueError, match="widths and blocks must be non-empty"):
        ResNet((8, 8, 1), 3, widths=(), blocks=(), rngs=rngs)
    with pytest.raises(ValueError, match="blocks must be a sequence of positive ints"):
        ResNet((8, 8, 1), 3, blocks=(2, 0, 2), rngs=rngs)
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W, C\)"):
        ResNet((8, 8), 3, rngs=rngs)
    with pytest.raises(TypeError, match="model must be an nnx.Module"):
        split_model({"w": jnp.ones(2)})
    graphdef = split_model(MLP(2, [], 1, rngs=rngs))[0]
    with pytest.raises(ValueError, match="loss must be one of"):
        stateful_loss_fn(graphdef, "hinge")
    with pytest.raises(TypeError, match="graphdef must be the nnx.GraphDef"):
        eval_loss_fn({"not": "a graphdef"})
