"""Models and per-sample losses: shapes, hand-computed values, jit equality, finite gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from feasjax.models.losses import (check_batch, cross_entropy, per_sample_loss_fn, predict_fn,
                                   squared_error)
from feasjax.models.nets import CNN, MLP


def test_mlp_shapes_and_flattening():
    model = MLP(4, [6, 5], 3, rngs=nnx.Rngs(0))
    assert model(jnp.ones((7, 4))).shape == (7, 3)
    x = jax.random.normal(jax.random.key(0), (7, 2, 2))
    np.testing.assert_allclose(model(x), model(x.reshape(7, 4)), rtol=1e-6)
    linear = MLP(4, [], 1, rngs=nnx.Rngs(0))
    assert len(linear.layers) == 1 and linear(jnp.ones((2, 4))).shape == (2, 1)


def test_mlp_is_relu_network():
    """A 1-hidden-layer MLP equals W2 relu(W1 x + b1) + b2 written by hand."""
    model = MLP(3, [4], 2, rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(1), (5, 3))
    l1, l2 = model.layers
    hidden = jax.nn.relu(x @ l1.kernel[...] + l1.bias[...][None])
    expected = hidden @ l2.kernel[...] + l2.bias[...][None]
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def digits_cnn():
    # Eager initialisation compiles each random init op: build the CNN once for the module.
    return CNN((8, 8, 1), 10, rngs=nnx.Rngs(0))


def test_cnn_accepts_flat_hwc_and_hw_inputs(digits_cnn):
    model = digits_cnn
    x = jax.random.normal(jax.random.key(2), (3, 8, 8, 1))
    out = model(x)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(model(x.reshape(3, 64)), out, rtol=1e-6)
    np.testing.assert_allclose(model(x.reshape(3, 8, 8)), out, rtol=1e-6)
    odd = CNN((7, 5, 3), 2, features=(2, 2), hidden=4, rngs=nnx.Rngs(0))  # 7x5 -> 4x3 -> 2x2
    assert odd(jnp.ones((2, 7, 5, 3))).shape == (2, 2)
    assert odd.dense.in_features == 2 * 2 * 2


def test_model_input_errors(digits_cnn):
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        MLP(0, [4], 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="hidden must be a sequence of positive ints"):
        MLP(3, 4, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W, C\)"):
        CNN((8, 8), 10, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="x must have shape"):
        MLP(4, [6], 3, rngs=nnx.Rngs(0))(jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="x must have shape"):
        digits_cnn(jnp.ones((2, 63)))


def test_cross_entropy_hand_computed():
    logits = jnp.array([1.0, 2.0, 0.5])
    by_hand = -np.log(np.exp(2.0) / np.exp([1.0, 2.0, 0.5]).sum())
    assert float(cross_entropy(logits, jnp.array(1))) == pytest.approx(by_hand, rel=1e-6)
    # Stable for large logits (a naive softmax overflows to inf/nan).
    assert float(cross_entropy(jnp.array([1000.0, 0.0]), jnp.array(1))) == pytest.approx(1000.0)
    with pytest.raises(TypeError, match="label must have an integer dtype"):
        cross_entropy(logits, jnp.array(1.0))
    with pytest.raises(ValueError, match="logits must have shape"):
        cross_entropy(logits[None], jnp.array(1))


def test_squared_error_hand_computed():
    assert float(squared_error(jnp.array([1.5]), jnp.array(-0.5))) == 4.0
    assert float(squared_error(jnp.array(2.0), jnp.array(0.0))) == 4.0
    assert float(squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))) == 5.0
    with pytest.raises(ValueError, match="prediction and target must have the same shape"):
        squared_error(jnp.array([1.0, 2.0]), jnp.array(1.0))


def _classifier():
    graphdef, params = nnx.split(MLP(4, [6], 3, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(3), (5, 4))
    y = jnp.array([0, 2, 1, 1, 0], jnp.int32)
    return graphdef, params, {"x": x, "y": y}


def test_per_sample_cross_entropy_matches_hand_computation():
    graphdef, params, batch = _classifier()
    losses = per_sample_loss_fn(graphdef, "cross_entropy")(params, batch)
    logits = np.asarray(predict_fn(graphdef)(params, batch["x"]), np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -log_probs[np.arange(5), np.asarray(batch["y"])]
    assert losses.shape == (5,)
    np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_per_sample_squared_error_regression():
    graphdef, params = nnx.split(MLP(4, [6], 1, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(4), (5, 4))
    y = jnp.linspace(-1.0, 1.0, 5)
    losses = per_sample_loss_fn(graphdef, "squared_error")(params, {"x": x, "y": y})
    preds = predict_fn(graphdef)(params, x)[:, 0]
    np.testing.assert_allclose(losses, (preds - y) ** 2, rtol=1e-6)


def test_per_sample_loss_is_per_sample():
    """Loss i depends only on sample i: a batch of one gives the same value."""
    graphdef, params, batch = _classifier()
    f = per_sample_loss_fn(graphdef)
    full = f(params, batch)
    for i in range(5):
        single = f(params, {"x": batch["x"][i : i + 1], "y": batch["y"][i : i + 1]})
        np.testing.assert_allclose(single, full[i : i + 1], rtol=1e-6)


def test_jit_equals_no_jit_and_gradient_is_finite():
    graphdef, params, batch = _classifier()
    f = per_sample_loss_fn(graphdef, "cross_entropy")
    np.testing.assert_allclose(jax.jit(f)(params, batch), f(params, batch), rtol=1e-6)
    weights = jnp.array([1.0, 0.0, 2.0, 0.5, 1.0])
    grads = jax.jit(jax.grad(lambda p: jnp.mean(weights * f(p, batch))))(params)
    leaves = jax.tree.leaves(grads)
    assert len(leaves) == 4
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.abs(g).sum()) > 0 for g in leaves)
    # The gradient is right: the directional derivative along a random direction d matches a
    # central finite difference (float64 on the host side is not needed at this step size).
    keys = iter(jax.random.split(jax.random.key(5), len(leaves)))
    direction = jax.tree.map(lambda p: jax.random.normal(next(keys), p.shape), params)
    step = 1e-2

    def objective(scale):
        shifted = jax.tree.map(lambda p, d: p + scale * d, params, direction)
        return float(jnp.mean(weights * f(shifted, batch)))

    finite_diff = (objective(step) - objective(-step)) / (2 * step)
    directional = sum(float(jnp.vdot(g, d)) for g, d in zip(leaves, jax.tree.leaves(direction)))
    assert directional == pytest.approx(finite_diff, rel=2e-2)


def test_loss_fn_input_errors():
    graphdef, params, batch = _classifier()
    with pytest.raises(ValueError, match="loss must be one of"):
        per_sample_loss_fn(graphdef, "hinge")
    with pytest.raises(TypeError, match="graphdef must be the nnx.GraphDef"):
        per_sample_loss_fn(params)
    f = per_sample_loss_fn(graphdef)
    with pytest.raises(ValueError, match="batch must be a mapping with keys 'x' and 'y'"):
        f(params, {"x": batch["x"]})
    with pytest.raises(ValueError, match="same leading"):
        f(params, {"x": batch["x"], "y": batch["y"][:3]})
    check_batch({"x": batch["x"], "y": batch["y"], "indices": jnp.arange(5)})  # extras ok


def test_custom_single_example_loss():
    graphdef, params, batch = _classifier()
    f = per_sample_loss_fn(graphdef, lambda logits, label: logits[label])
    logits = predict_fn(graphdef)(params, batch["x"])
    np.testing.assert_allclose(f(params, batch), logits[jnp.arange(5), batch["y"]], rtol=1e-6)
