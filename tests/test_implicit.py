"""Implicit multipliers (fj.implicit_multipliers): a model of per-sample features in place of one
stored multiplier per sample.

- one-hot features and a linear model reproduce explicit FL's multipliers and parameters;
- fj.constrained mixes an implicit group with a stored (dense) one;
- the state's size does not depend on N;
- the transformation works under optax.chain, nnx.Optimizer (with fj.nnx_step), the mesh and a
  bit-exact resume, skips and counts non-finite steps, and refuses bad input by name.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import feasjax as fj
from feasjax.core.implicit import state_bytes

N, D, B, EPS = 16, 3, 4, 0.3


def _data(n=N, one_hot=True):
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (n, D))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3 * jax.random.normal(kw, (n,))
    return {"x": x, "y": y, "z": jnp.eye(n) if one_hot else x}


def _step(tx, implicit, **kw):
    def step(carry, batch, idx):
        w, state = carry
        lam = (fj.multipliers(state, features=batch["z"]) if implicit
               else fj.multipliers(state, idx))

        def objective(w):
            losses = (batch["x"] @ w - batch["y"]) ** 2
            return jnp.mean(lam * (losses - EPS)), losses

        grads, losses = jax.grad(objective, has_aux=True)(w)
        where = {"features": batch["z"]} if implicit else {"indices": idx}
        updates, state = tx.update(grads, state, w, losses=losses, **where, **kw)
        return (optax.apply_updates(w, updates), state), {"losses": losses}
    return step


def _linear(n=N):
    return fj.implicit_multipliers(lambda w, z: z @ w, jnp.full(n, 0.1),
                                   optimizer=fj.ascent(optax.sgd(0.2)), link="projected",
                                   project="nonnegative")


def _run(tx, implicit, data, epochs=15, step=None, **options):
    w0 = jnp.zeros(D)
    step = step or _step(tx, implicit)
    return fj.train(step, (w0, tx.init(w0)), data, epochs=epochs, batch_size=B,
                    key=jax.random.key(1), epsilon=EPS, progress=False, **options)


@pytest.mark.parametrize("formulation", [None, fj.resilient(2.0)], ids=["fl", "rfl"])
def test_one_hot_linear_model_reproduces_explicit_fl(formulation):
    data = _data()
    explicit = fj.feasible(optax.sgd(0.01), num_samples=N, epsilon=EPS, init_multiplier=0.1,
                           dual_optimizer=fj.ascent(optax.sgd(0.2)), formulation=formulation)
    implicit = fj.feasible(optax.sgd(0.01), multipliers=_linear(), epsilon=EPS,
                           formulation=formulation)
    (w_e, s_e), _ = _run(explicit, False, data)
    (w_i, s_i), hist = _run(implicit, True, data)
    lam_e = fj.multipliers(s_e)
    lam_i = fj.multipliers(s_i, features=data["z"])
    assert float(jnp.min(lam_e)) == 0.0 and float(jnp.max(lam_e)) > 1  # 0 is hit
    np.testing.assert_allclose(lam_i, lam_e, atol=1e-5)
    np.testing.assert_allclose(w_i, w_e, atol=1e-5)
    # the state holds φ (here N weights, as the one-hot model needs), no multiplier vector
    assert fj.constrained_state(s_i).multipliers == {}
    assert np.isnan(hist.multiplier_max[-1])  # the engine finds no stored multipliers


def test_dual_then_primal_matches_explicit_with_dual_update():
    data = _data()
    x, y, z = data["x"][:B], data["y"][:B], data["z"][:B]
    idx = jnp.arange(B)
    explicit = fj.feasible(optax.sgd(0.05), num_samples=N, epsilon=EPS, init_multiplier=0.1,
                           dual_optimizer=fj.ascent(optax.sgd(0.2)), scheme="dual_then_primal")
    implicit = fj.feasible(optax.sgd(0.05), multipliers=_linear(), epsilon=EPS,
                           scheme="dual_then_primal")
    losses = (x @ jnp.ones(D) - y) ** 2
    s_e = fj.dual_update(explicit, explicit.init(jnp.ones(D)), losses=losses, indices=idx)
    s_i = fj.dual_update(implicit, implicit.init(jnp.ones(D)), losses=losses, features=z)
    np.testing.assert_allclose(fj.multipliers(s_i, features=data["z"]), fj.multipliers(s_e),
                               atol=1e-6)
    with pytest.raises(ValueError, match="fj.dual_update"):
        implicit.update(jnp.zeros(D), s_i, jnp.zeros(D), losses=losses, features=z)


def test_constrained_mixes_an_implicit_group_with_a_dense_one():
    # FL's per-sample constraints (implicit) and ||w||^2 <= R (dense, stored): with R large the
    # norm constraint stays inactive, its multiplier at 0, and the run is implicit FL's.
    data, radius = _data(), 100.0
    groups = {"samples": fj.ConstraintGroup(multipliers=_linear()),
              "norm": fj.ConstraintGroup(size=1, init_multiplier=0.0)}
    tx = fj.constrained(optax.sgd(0.01), groups)

    def step(carry, batch, idx):
        w, state = carry
        lam = fj.multipliers(state, features=batch["z"])  # the only implicit group
        mu = fj.multipliers(state, group="norm")

        def objective(w):
            losses = (batch["x"] @ w - batch["y"]) ** 2
            norm = jnp.sum(w**2, keepdims=True) - radius
            return jnp.mean(lam * (losses - EPS)) + jnp.mean(mu * norm), (losses, norm)

        grads, (losses, norm) = jax.grad(objective, has_aux=True)(w)
        violations = {"samples": losses - EPS, "norm": norm}
        updates, state = tx.update(grads, state, w, violations=violations,
                                   features={"samples": batch["z"]})
        return (optax.apply_updates(w, updates), state), {"losses": losses}

    (w_m, s_m), _ = _run(tx, True, data, step=step)
    (w_i, s_i), _ = _run(fj.feasible(optax.sgd(0.01), multipliers=_linear(), epsilon=EPS),
                         True, data)
    state = fj.constrained_state(s_m)
    assert set(state.multipliers) == {"norm"} and float(state.multipliers["norm"][0]) == 0.0
    assert float(jnp.sum(w_m**2)) < radius
    # equal up to rounding: the objective's extra 0 * (||w||^2 - R) term is fused differently
    np.testing.assert_allclose(w_m, w_i, atol=1e-6)
    np.testing.assert_allclose(fj.multipliers(s_m, features=data["z"], group="samples"),
                               fj.multipliers(s_i, features=data["z"]), atol=1e-6)
    with pytest.raises(ValueError, match="group is required"):
        fj.multipliers(s_m)
    with pytest.raises(ValueError, match="pass indices= instead"):
        fj.multipliers(s_m, group="norm", features=data["z"])
    with pytest.raises(ValueError, match="implicit multipliers, size do not apply"):
        fj.constrained(optax.sgd(0.1), {"s": fj.ConstraintGroup(size=N, multipliers=_linear())})
    with pytest.raises(ValueError, match="not fj.primal_dual"):
        fj.primal_dual(lambda w, b: None, optax.sgd(0.1), {"s": groups["samples"]})


def test_state_size_does_not_depend_on_n():
    def sizes(n):
        model = nnx.Sequential(nnx.Linear(D, 8, rngs=nnx.Rngs(0)), jax.nn.relu,
                               nnx.Linear(8, 1, rngs=nnx.Rngs(1)))
        im = fj.implicit_multipliers(model, optimizer=fj.ascent(optax.adam(1e-2)))
        tx = fj.feasible(optax.adam(1e-2), multipliers=im, epsilon=EPS)
        (_, state), _ = _run(tx, True, _data(n, one_hot=False), epochs=1)
        shapes = {x.shape for x in jax.tree.leaves(state)}
        return state_bytes(state), shapes

    small, large = sizes(32), sizes(512)
    assert small == large
    assert all(n not in {32, 512} for shape in small[1] for n in shape)


def test_works_inside_optax_chain():
    data = _data()
    alone = fj.feasible(optax.sgd(0.01), multipliers=_linear(), epsilon=EPS)
    chained = optax.chain(optax.clip_by_global_norm(1e6),
                          fj.feasible(optax.sgd(0.01), multipliers=_linear(), epsilon=EPS))
    (w_a, s_a), _ = _run(alone, True, data, epochs=3)
    (w_c, s_c), _ = _run(chained, True, data, epochs=3)
    np.testing.assert_array_equal(w_c, w_a)
    np.testing.assert_array_equal(fj.multipliers(s_c, features=data["z"]),
                                  fj.multipliers(s_a, features=data["z"]))


def test_nnx_optimizer_and_nnx_step_count_skipped_steps():
    data = _data(one_hot=False)
    model = nnx.Linear(D, 1, rngs=nnx.Rngs(0))
    im = fj.implicit_multipliers(nnx.Linear(D, 1, rngs=nnx.Rngs(1)),
                                 optimizer=fj.ascent(optax.sgd(0.1)))
    optimizer = nnx.Optimizer(model, fj.feasible(optax.sgd(0.05), multipliers=im, epsilon=EPS),
                              wrt=nnx.Param)

    def train_step(model, optimizer, batch, idx):
        weights = fj.multipliers(optimizer, features=batch["x"])

        def loss_fn(model):
            losses = (model(batch["x"])[:, 0] - batch["y"]) ** 2
            losses = jnp.where(idx == 5, jnp.nan, losses)  # one poisoned sample
            return jnp.mean(weights * (losses - EPS)), losses

        (_, losses), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads, losses=losses, features=batch["x"])
        return losses

    step, carry = fj.nnx_step(train_step, model, optimizer)
    before = fj.multipliers(optimizer, features=data["x"])
    carry, hist = fj.train(step, carry, data, epochs=2, batch_size=B, key=jax.random.key(0),
                           epsilon=EPS, progress=False)
    fj.nnx_update(model, optimizer, carry)
    state = fj.constrained_state(optimizer)
    assert int(state.skipped) == 2 and hist.skipped == [1, 2]  # the poisoned batch, once an epoch
    assert int(state.count) == 2 * (N // B)
    after = fj.multipliers(optimizer, features=data["x"])
    assert bool(jnp.all(jnp.isfinite(after))) and not np.allclose(after, before)


def test_mesh_equals_one_device():
    assert len(jax.devices()) == 8  # tests/conftest.py simulates eight CPU devices
    data = _data(30)  # padded to 32 rows on the mesh: φ (30 weights) stays replicated
    make = lambda: fj.feasible(optax.sgd(0.01), multipliers=_linear(30), epsilon=EPS)
    (w1, s1), _ = _run(make(), True, data, epochs=3)
    (w8, s8), _ = _run(make(), True, data, epochs=3, mesh=fj.data_mesh())
    np.testing.assert_allclose(w8, w1, atol=1e-5)
    np.testing.assert_allclose(fj.multipliers(s8, features=data["z"]),
                               fj.multipliers(s1, features=data["z"]), atol=1e-5)


def test_resume_is_bit_exact(tmp_path):
    data = _data()
    make = lambda: fj.feasible(optax.adam(1e-2), multipliers=fj.implicit_multipliers(
        lambda p, z: z @ p["w"] + p["b"], {"w": jnp.zeros(N), "b": jnp.zeros(())},
        optimizer=fj.ascent(optax.adam(1e-2))), epsilon=EPS)
    (w_full, s_full), _ = _run(make(), True, data, epochs=4)
    options = {"checkpoint_dir": tmp_path / "ck", "checkpoint_every": 3, "async_save": False}

    class Stop(Exception):
        pass

    def stop(step):
        if step == 7:  # mid-epoch (4 steps an epoch; saves at 3, 7, 11, 12, 15, 16)
            raise Stop

    with pytest.raises(Stop):
        _run(make(), True, data, epochs=4, after_save=stop, **options)
    saves = []
    (w_res, s_res), _ = _run(make(), True, data, epochs=4, after_save=saves.append, **options)
    assert saves and min(saves) > 7, saves  # resumed at step 7, not trained again from 0
    np.testing.assert_array_equal(w_res, w_full)
    for a, b in zip(jax.tree.leaves(s_res), jax.tree.leaves(s_full)):
        np.testing.assert_array_equal(a, b)


def test_bad_input_is_refused_by_name():
    im = _linear()
    tx = fj.feasible(optax.sgd(0.1), multipliers=im, epsilon=EPS)
    state, z, losses = tx.init(jnp.zeros(D)), jnp.eye(N)[:B], jnp.ones(B)
    explicit = fj.feasible(optax.sgd(0.1), num_samples=N, epsilon=EPS)
    cases = [
        (lambda: tx.update(jnp.zeros(D), state, jnp.zeros(D), losses=losses), "features="),
        (lambda: tx.update(jnp.zeros(D), state, jnp.zeros(D), losses=losses, features=z[:2]),
         "features must have a leading axis of 4"),
        (lambda: tx.update(jnp.zeros(D), state, jnp.zeros(D), losses=jnp.ones((B, 1)),
                           features=z), "losses must be a 1-D float array"),
        (lambda: tx.update(jnp.zeros(D), state, jnp.zeros(D), features=z), "losses="),
        (lambda: fj.multipliers(state, jnp.arange(B)), "read with features="),
        (lambda: fj.multipliers(explicit.init(jnp.zeros(D)), features=z), "pass indices="),
        (lambda: explicit.update(jnp.zeros(D), explicit.init(jnp.zeros(D)), jnp.zeros(D),
                                 losses=losses, indices=jnp.arange(B), features=z),
         "no constraint group here has them: pass indices="),
        (lambda: fj.feasible(optax.sgd(0.1), epsilon=EPS), "num_samples is required"),
        (lambda: fj.feasible(optax.sgd(0.1), multipliers=im, num_samples=N, epsilon=EPS),
         "num_samples, dual_optimizer and init_multiplier do not apply"),
        (lambda: fj.implicit_multipliers(lambda p, z: z @ p, jnp.ones(N),
                                         optimizer=optax.sgd(0.1)), "optimizer must be an ascent"),
        (lambda: fj.implicit_multipliers(lambda p, z: z @ p, jnp.ones(N), link="relu"),
         "link must be one of"),
        (lambda: fj.implicit_multipliers(lambda p, z: z @ p, jnp.ones(N), project="abs"),
         "project must be one of"),
        (lambda: fj.implicit_multipliers(lambda p, z: z @ p, jnp.ones(N), reduction="max"),
         "reduction must be one of"),
        (lambda: fj.implicit_multipliers(lambda p, z: z @ p, jnp.array([jnp.nan])),
         "params"),
        (lambda: fj.multipliers(fj.feasible(optax.sgd(0.1), epsilon=EPS, multipliers=(
            fj.implicit_multipliers(lambda p, z: z * p, jnp.ones(()))
        )).init(jnp.zeros(D)), features=z), r"shape \(4,\) or \(4, 1\)"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="nnx.Module, or a function"):
        fj.implicit_multipliers(lambda p, z: z)
    with pytest.raises(TypeError, match="built by fj.implicit_multipliers"):
        fj.feasible(optax.sgd(0.1), multipliers=jnp.ones(N), epsilon=EPS)
    with pytest.raises(ValueError, match="nnx.Param"):
        fj.implicit_multipliers(nnx.BatchNorm(D, rngs=nnx.Rngs(0)))


def test_nonfinite_losses_skip_the_step_and_leave_the_state():
    tx = fj.feasible(optax.sgd(0.1), multipliers=_linear(), epsilon=EPS)
    state, z = tx.init(jnp.zeros(D)), jnp.eye(N)[:B]
    updates, new = jax.jit(lambda s, l: tx.update(jnp.ones(D), s, jnp.zeros(D), losses=l,
                                                  features=z))(state, jnp.array([1.0, jnp.nan,
                                                                                 1.0, 1.0]))
    assert updates.tolist() == [0.0] * D and int(fj.constrained_state(new).skipped) == 1
    np.testing.assert_array_equal(fj.multipliers(new, features=z),
                                  fj.multipliers(state, features=z))


def test_readme_example_runs_and_prints_what_the_readme_says():
    import contextlib
    import io
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Which multipliers when: stored or implicit", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().strip() == re.search(r"It prints `(.*?)`", section).group(1)
