"""FL with dropout: the multiplier-weighted loss is computed with dropout off (the remedy)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import feasjax as fj
from feasjax import cli
from feasjax.experiments import RunConfig, build_solver, model_fns
from feasjax.models.nets import CNN

N = 64


def _data():
    ds = fj.load_dataset("digits")
    return {"x": jnp.asarray(ds.x_train[:N]), "y": jnp.asarray(ds.y_train[:N])}


def _fns(dropout):
    return model_fns(CNN((8, 8, 1), 10, features=(4,), hidden=8, batch_norm=True,
                         dropout=dropout, rngs=nnx.Rngs(0)), "classification")


def test_undropped_loss_is_the_training_pass_of_the_model_without_dropout():
    data, fns, plain = _data(), _fns(0.5), _fns(0.0)
    losses, state = fns.undropped_loss(fns.params, data, fns.model_state)
    reference, _ = plain.train_loss(plain.params, data, plain.model_state)
    np.testing.assert_allclose(losses, reference, rtol=1e-6)  # BatchNorm on the batch
    assert not np.allclose(losses, fns.eval_loss(fns.params, data, fns.model_state))
    assert not np.allclose(losses, fns.train_loss(fns.params, data, fns.model_state)[0])
    assert int(state["dropout"]["rngs"]["count"][...]) == 0  # no mask drawn


def _train(dropout, method, fl_dropout):
    fns = _fns(dropout)  # fresh arrays: train donates the state it is given
    config = RunConfig(epsilon=0.02, learning_rate=0.1)
    solver = build_solver(method, fns.weighted_loss(method, fl_dropout), N, config,
                          measurement_fn=fns.dual_measurement)
    state, _ = fj.train(solver, solver.init(fns.params, model_state=fns.model_state), _data(),
                        epochs=3, batch_size=16, key=jax.random.key(0), progress=False)
    return state


@pytest.mark.parametrize("method", ["fl", "rfl"])
def test_fl_trains_as_without_dropout_and_erm_keeps_it(method):
    remedy, reference = _train(0.5, method, False), _train(0.0, method, False)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 remedy.params, reference.params)
    np.testing.assert_allclose(remedy.multipliers["samples"], reference.multipliers["samples"],
                               rtol=1e-5, atol=1e-6)
    noisy = _train(0.5, method, True)  # --fl-dropout: the masks reach the weighted loss
    assert not np.allclose(noisy.multipliers["samples"], reference.multipliers["samples"])
    erm, erm_plain = _train(0.5, "erm", False), _train(0.0, "erm", False)
    assert not np.allclose(erm.params["head"]["kernel"][...],
                           erm_plain.params["head"]["kernel"][...])


def test_cli_dropout_flags_reach_the_config_with_per_model_defaults():
    parse = cli.app.build_parser().parse_args
    config = cli.common.config_from_args(parse(["demo", "--model", "cnn", "--dropout", "0.1"]))
    assert (config.dropout, config.fl_dropout, config.fl_keeps_dropout) == (0.1, None, False)
    config = cli.common.config_from_args(parse(["demo", "--model", "resnet"]))
    assert (config.dropout, config.fl_keeps_dropout) == (0.0, True)
    config = cli.common.config_from_args(parse(["demo", "--model", "cnn", "--fl-dropout", "on"]))
    assert config.fl_keeps_dropout is True
    with pytest.raises(SystemExit, match="no dropout layer"):
        cli.common.config_from_args(parse(["demo", "--dropout", "0.1"]))
