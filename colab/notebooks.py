"""The cells of the colab/ notebooks: ``NOTEBOOKS[file] = {title, intro, cells, [preamble]}``.

``cells`` is a list of ``("md" | "code", source)``; ``colab/generate.py`` adds the title cell
(with the "Open in Colab" badge) and the setup cell (install feasjax when it is missing, read
``FEASJAX_NOTEBOOK_SMALL``), and writes the ``.ipynb`` files without outputs. Every notebook uses
only public names (``tests/test_notebooks.py`` checks it).
"""

TOUR = {
    "title": "Feasible Learning: a tour on digits",
    "intro": """
Empirical risk minimisation (ERM) makes the **average** training loss small. Feasible Learning
(FL; Ramirez et al., AISTATS 2025, [arXiv 2501.14912](https://arxiv.org/abs/2501.14912)) asks
instead that **every** sample's loss be at most ε, and solves the constrained problem
primal-dual: one Lagrange multiplier λᵢ per training sample, raised while sample *i* violates
its bound and lowered (down to 0) once it holds. Resilient FL (RFL) relaxes the bounds with a
slack that costs `1/(2α) · slack²`, for data where some samples cannot be fit.

This notebook trains ERM, FL and RFL on scikit-learn's bundled `digits` (no download), then
looks at what FL changes: the tail of the per-sample losses, the multipliers as sample
weights, and the samples FL found hardest.
""",
    "cells": [
        ("code", """
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import feasjax as fj

EPOCHS = 3 if SMALL else 30
EPSILON = 0.1  # every training sample's cross-entropy should end at or below this
data = fj.load_dataset("digits")  # 70/30 stratified split, standardised inputs
print(f"train {data.x_train.shape}, test {data.x_test.shape}, {data.num_classes} classes, "
      f"images {data.image_shape}")
"""),
        ("md", """
## ERM, FL and RFL with the same model, optimizer and data order

`fj.experiments.run_method` is what `feasjax demo` runs for each method: an MLP (one hidden
layer of 64), SGD with momentum, batches of 64, the same initialisation and shuffling for all
three. For FL it builds `fj.feasible_learning(per_sample_loss, optax.sgd(...),
num_samples=N, epsilon=ε)`; for RFL the same with `formulation=fj.resilient(alpha)`; ERM is
`fj.empirical_risk` on the same machinery.
"""),
        ("code", """
config = fj.experiments.RunConfig(epochs=EPOCHS, epsilon=EPSILON, devices=1)
results = {m: fj.experiments.run_method(data, m, config, progress=False)
           for m in ("erm", "fl", "rfl")}

columns = ["accuracy", "mean_loss", "q99_loss", "max_loss", "feasible_fraction"]
print(f"{'':11}" + "".join(f"{c:>18}" for c in columns))
for method, res in results.items():
    for split in ("train", "test"):
        row = res.metrics[split]
        print(f"{method + ' ' + split:11}" + "".join(f"{row[c]:18.4f}" for c in columns))
"""),
        ("code", """
erm, fl = results["erm"].metrics, results["fl"].metrics
print(f"FL cut the train max loss {erm['train']['max_loss'] / fl['train']['max_loss']:.1f}x "
      f"({erm['train']['max_loss']:.3f} -> {fl['train']['max_loss']:.3f}), at test accuracy "
      f"{fl['test']['accuracy']:.1%} vs ERM's {erm['test']['accuracy']:.1%}.")
print(f"On the test set the bound is not enforced: FL's test max loss is "
      f"{fl['test']['max_loss']:.3f} (ERM {erm['test']['max_loss']:.3f}).")
"""),
        ("md", """
With the full 30 epochs FL cuts the largest training loss more than threefold at the same test
accuracy (3.5x, and 97.4% for both, in the run above), and every training sample ends feasible
(loss ≤ ε; ERM leaves a few above): FL changes *which* samples the model fits, not how well it
fits on average. The constraint is
a statement about the training set: the test tail need not shrink (it often does not).

## The loss tail

A survival curve (the fraction of samples whose loss exceeds *t*, log axes) shows the tail
that the mean hides: where a curve meets the bottom of the plot is that method's largest loss.
Losses below 1e-6 are drawn at 1e-6.
"""),
        ("code", """
FLOOR = 1e-6

def survival(losses):
    t = np.sort(np.maximum(np.asarray(losses), FLOOR))
    return t, 1.0 - np.arange(len(t)) / len(t)  # fraction of samples with loss >= t

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, split in zip(axes, ("train", "test")):
    for method, res in results.items():
        losses = res.train_losses if split == "train" else res.test_losses
        ax.step(*survival(losses), where="post", label=method.upper())
    ax.axvline(EPSILON, color="k", ls="--", lw=1, label="ε")
    ax.set(xscale="log", yscale="log", xlabel="per-sample loss t", title=f"{split} set")
axes[0].set_ylabel("fraction of samples with loss ≥ t")
axes[1].legend()
fig.suptitle(f"digits, {EPOCHS} epochs, seed {config.seed} (losses below {FLOOR:g} drawn "
             f"at {FLOOR:g})")
plt.show()
"""),
        ("md", """
## Multipliers are sample weights

The primal step minimises `mean_{i∈B} λᵢ (lossᵢ − ε)`: a weighted ERM whose weights are the
multipliers. Each visit moves a multiplier by `η (lossᵢ − ε)` (η = 0.1, projected at 0): up
while its sample is infeasible, down by at most `η ε` = 0.01 once it is fit. All start at 1 (the
first step is an ERM step); after 30 epochs the easy samples have drifted below 1 and the large
weights sit on the samples that stayed above ε longest. `fj.metrics.multiplier_stats`
summarises them.
"""),
        ("code", """
fl_res = results["fl"]
lam = np.asarray(fl_res.state.multipliers["samples"])  # (N,), one per training sample
stats = fj.metrics.multiplier_stats(jnp.asarray(lam))
print({k: round(float(v), 3) for k, v in stats.items()})

fig, ax = plt.subplots(figsize=(5.5, 4))
ax.scatter(np.maximum(fl_res.train_losses, FLOOR), lam, s=6, alpha=0.5)
ax.axvline(EPSILON, color="k", ls="--", lw=1)
ax.set(xscale="log", xlabel="FL's final per-sample train loss", ylabel="multiplier λᵢ",
       title="the large multipliers sit on the hard samples")
plt.show()
"""),
        ("md", """
## The hardest samples

The samples with the largest multipliers are those FL had to push hardest. Below: their
images, labels, FL's final loss and ERM's loss on the same sample.
"""),
        ("code", """
hardest = np.argsort(lam)[::-1][:8]
fig, axes = plt.subplots(1, 8, figsize=(13, 2.4))
for ax, i in zip(axes, hardest):
    ax.imshow(data.x_train[i].reshape(data.image_shape[:2]), cmap="gray_r")
    ax.set_title(f"label {data.y_train[i]}\\nλ={lam[i]:.2f}\\n"
                 f"FL {fl_res.train_losses[i]:.2f} / ERM {results['erm'].train_losses[i]:.2f}",
                 fontsize=8)
    ax.axis("off")
plt.show()
"""),
        ("md", """
## Implicit multipliers: a model of the samples instead of a vector

`fj.implicit_multipliers(model, ...)` replaces the N stored multipliers by a model of
per-sample features, `λ(x) = max(0, 1 + ψ(x)·φ)` here over 4096 random Fourier features of the
inputs: its state does not grow with N, `update` takes `features=` instead of `indices`, and
`fj.multipliers(state, features=x_test)` predicts multipliers of samples it never trained on.
Below: both kinds with Adam, 2 × `EPOCHS` epochs; then how well the predicted test multipliers
rank the test losses (Spearman), beside the model's own predictive entropy (README, "Which
multipliers when": the entropy wins by far; the multipliers' gain is memory, not prediction).
How close the implicit run's max loss comes to the stored one's depends on the random features
drawn (the README reports seven draws).
"""),
        ("code", """
import optax
from flax import nnx

x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
proj = jax.random.normal(jax.random.key(1), (64, 4096)) / 1.5
phase = jax.random.uniform(jax.random.key(2), (4096,), maxval=2 * np.pi)
def lam_model(phi, z):  # 1 at the start, as the stored multipliers
    return 1.0 + jnp.sqrt(2 / 4096) * jnp.cos(z @ proj + phase) @ phi

def fl_run(tx, implicit):
    graphdef, params = nnx.split(fj.MLP(64, [64], 10, rngs=nnx.Rngs(0)))
    def step(carry, batch, idx):
        params, state = carry
        lam = (fj.multipliers(state, features=batch["x"]) if implicit
               else fj.multipliers(state, idx))
        def objective(p):
            logits = nnx.merge(graphdef, p)(batch["x"])
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
            return jnp.mean(lam * (losses - EPSILON)), losses
        grads, losses = jax.grad(objective, has_aux=True)(params)
        where = {"features": batch["x"]} if implicit else {"indices": idx}
        updates, state = tx.update(grads, state, params, losses=losses, **where)
        return (optax.apply_updates(params, updates), state), {"losses": losses}
    (params, state), _ = fj.train(step, (params, tx.init(params)), {"x": x, "y": y},
                                  epochs=2 * EPOCHS, batch_size=64, key=jax.random.key(0),
                                  progress=False)
    return nnx.merge(graphdef, params), state

rank = lambda v: np.argsort(np.argsort(np.asarray(v)))
spearman = lambda a, b: np.corrcoef(rank(a), rank(b))[0, 1]
im = fj.implicit_multipliers(lam_model, jnp.zeros(4096), link="projected",
                             optimizer=fj.ascent(optax.sgd(0.1)))
runs = {"stored": fj.feasible(optax.adam(1e-3), num_samples=len(y), epsilon=EPSILON),
        "implicit": fj.feasible(optax.adam(1e-3), multipliers=im, epsilon=EPSILON)}
xt, yt = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
for name, tx in runs.items():
    model, state = fl_run(tx, name == "implicit")
    train = optax.softmax_cross_entropy_with_integer_labels(model(x), y)
    cs = fj.constrained_state(state)
    size = sum(a.nbytes for a in jax.tree.leaves((cs.multipliers, cs.dual_states)))
    print(f"{name:8} train max loss {train.max():.3f}, test accuracy "
          f"{(model(xt).argmax(-1) == yt).mean():.1%}, multiplier state {size:,} bytes")
test_losses = optax.softmax_cross_entropy_with_integer_labels(model(xt), yt)
probs = jax.nn.softmax(model(xt))
entropy = -jnp.sum(probs * jnp.log(probs + 1e-12), axis=-1)
print(f"Spearman with the implicit run's test losses: predicted multipliers "
      f"{spearman(test_losses, fj.multipliers(state, features=xt)):.2f}, the model's own "
      f"predictive entropy {spearman(test_losses, entropy):.2f}")
"""),
        ("md", """
## Where to go next

- `02_optax_and_flax.ipynb`: FL as an optax transformation in your own train step, with
  `optax.chain` and `nnx.Optimizer` (BatchNorm and Dropout).
- `03_averaging.ipynb`: EMA, LAWA and SWA of the parameters and of the multipliers.
- `04_confidence_sets.ipynb`: confidence intervals from the multiplier bootstrap.
- `05_scale_out.ipynb`: a device mesh with sharded multipliers, and vmapped seed sweeps.
- The same comparison from the shell: `feasjax demo --plot tail.png`.
"""),
    ],
}

OPTAX_FLAX = {
    "title": "Feasible Learning in your own Optax and Flax code",
    "intro": """
`fj.feasible(optimizer, num_samples=N, epsilon=ε)` wraps any optax optimizer into one that
also keeps a multiplier per training sample. It is an ordinary
`optax.GradientTransformationExtraArgs`: its `update` takes the batch's per-sample `losses=`
and `indices=` as keyword extras (the dual step on those rows, O(batch) whatever N is), so it
goes inside `optax.chain` and `nnx.Optimizer` unchanged. Your objective weights each sample's
loss by `fj.multipliers(state, idx)`.

Two train steps on digits: a pure-function step (`nnx.split` outside, `optax.chain` with
gradient clipping), then an `nnx.Optimizer` step with a CNN that has BatchNorm and Dropout.
""",
    "cells": [
        ("code", """
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import feasjax as fj

EPOCHS = 2 if SMALL else 20
data = fj.load_dataset("digits")
x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
N = len(y)
"""),
        ("md", """
## 1. A pure-function step with `optax.chain`

The model is split once (`graphdef, params = nnx.split(model)`); `fj.per_sample_loss_fn`
merges it back inside the loss, so the step is a pure, jittable function of arrays.
"""),
        ("code", """
EPSILON = 0.1
graphdef, params = nnx.split(fj.MLP(64, [64], 10, rngs=nnx.Rngs(0)))
per_sample_loss = fj.per_sample_loss_fn(graphdef, "cross_entropy")  # (params, batch) -> (B,)
fl = fj.feasible(optax.adam(3e-3), num_samples=N, epsilon=EPSILON)
tx = optax.chain(optax.clip_by_global_norm(1.0), fl)  # extras reach fl through the chain
opt_state = tx.init(params)

@jax.jit
def step(params, opt_state, idx):
    weights = fj.multipliers(opt_state, idx)  # the batch's multipliers, no gradient
    def objective(p):
        losses = per_sample_loss(p, {"x": x[idx], "y": y[idx]})
        return jnp.mean(weights * (losses - EPSILON)), losses
    grads, losses = jax.grad(objective, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params, losses=losses, indices=idx)
    return optax.apply_updates(params, updates), opt_state

for epoch in range(EPOCHS):
    for idx in fj.epoch_indices(jax.random.key(epoch), N, 64):  # (steps, 64) shuffled
        params, opt_state = step(params, opt_state, idx)

losses = jax.jit(per_sample_loss)(params, {"x": x, "y": y})  # one program, not op by op
print(f"train max loss {float(losses.max()):.3f}, feasible {float((losses <= EPSILON).mean()):.1%}")
print("multipliers:", {k: round(float(v), 3) for k, v in
                       fj.metrics.multiplier_stats(fj.multipliers(opt_state)).items()})
"""),
        ("md", """
`fj.multipliers(opt_state)` finds the FL state wherever it sits in the chain. By default the
dual and primal steps are *simultaneous* (the gradient uses the multipliers from before the
dual step). The paper's alternating scheme is `fj.feasible(..., scheme="dual_then_primal")`
with `opt_state = fj.dual_update(fl, opt_state, losses=..., indices=...)` before computing the
gradient: see the README's "Schemes and defaults" table.

## 2. `nnx.Optimizer` with BatchNorm and Dropout

`nnx.Optimizer.update(model, grads, **extras)` forwards keyword extras to the transformation,
so FL needs nothing special. With BatchNorm the model fits digits so well that ERM's largest
loss is already below 0.1, hence a tighter ε = 0.02 (the CLI's default for `--model cnn`).
"""),
        ("code", """
EPSILON_CNN = 0.02
model = fj.CNN(data.image_shape, 10, batch_norm=True, dropout=0.1, rngs=nnx.Rngs(0))
fl = fj.feasible(optax.adam(3e-3), num_samples=N, epsilon=EPSILON_CNN)
optimizer = nnx.Optimizer(model, fl, wrt=nnx.Param)  # only the parameters are optimised

@nnx.jit
def train_step(model, optimizer, idx):
    weights = fj.multipliers(optimizer, idx)
    def loss_fn(model):  # training mode: batch statistics, a fresh dropout mask
        losses = optax.softmax_cross_entropy_with_integer_labels(model(x[idx]), y[idx])
        return jnp.mean(weights * (losses - EPSILON_CNN)), losses
    (_, losses), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads, losses=losses, indices=idx)  # dual step, then adam

model.train()
for epoch in range(EPOCHS):
    for idx in fj.epoch_indices(jax.random.key(epoch), N, 64):
        train_step(model, optimizer, idx)
"""),
        ("code", """
model.eval()  # running statistics, no dropout

@nnx.jit
def evaluate(model, xs, ys):
    logits = model(xs)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, ys)
    return losses, jnp.mean(logits.argmax(-1) == ys)

train_losses, _ = evaluate(model, x, y)
_, test_acc = evaluate(model, jnp.asarray(data.x_test), jnp.asarray(data.y_test))
print(f"train max loss {float(train_losses.max()):.4f}, "
      f"feasible {float((train_losses <= EPSILON_CNN).mean()):.1%}; "
      f"test accuracy {float(test_acc):.1%}")
print("BatchNorm running mean (first channels):", np.round(model.norms[0].mean[...][:4], 3))
"""),
        ("md", """
The multipliers follow the training-mode losses here (those of the forward pass with batch
statistics and dropout). `feasjax demo --model cnn` instead feeds the dual step the eval-mode
losses through `measurement_fn`, so that the constraint holds for the model as it is
evaluated; with the solver API that is `fj.feasible_learning(fj.models.per_sample_loss_fn(graphdef),
..., measurement_fn=fj.models.per_sample_loss_fn(graphdef, train=False))` with `init(params, model_state=...)`.

**Other optax wrappers.** Because the extras are keyword-only and unknown ones are ignored,
`fj.feasible` also works under `optax.inject_hyperparams`, `optax.MultiSteps` and
`optax.partition`.
"""),
    ],
}

AVERAGING = {
    "title": "Averaging parameters and multipliers: EMA, LAWA, SWA",
    "intro": """
`fj.averaged(optimizer, averager)` wraps any optax optimizer so that its state also keeps an
average of the parameters it produced; `fj.averaged_params(opt_state, params)` reads it. The
averagers: `fj.ema` (exponential moving average), `fj.polyak` / `fj.tail_polyak`
(uniform 1/k weights), `fj.lawa` (the mean of the latest k snapshots; Kaddour 2022) and
`fj.swa` (the cycle ends of `fj.swa_schedule`; Izmailov et al. 2018).

This notebook shows first *when* averaging helps (a noisy constant-step SGD on a least-squares
problem whose solution we know), then averaging in FL on digits, for the parameters and for
the per-sample multipliers.
""",
    "cells": [
        ("code", """
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import feasjax as fj

STEPS = 600 if SMALL else 3000
"""),
        ("md", """
## When averaging helps

SGD with a **constant** step does not converge: its iterate keeps bouncing in a noise ball
around the minimiser, of radius growing with the step size. Averaging the iterates cancels
most of that noise (Polyak and Juditsky 1992). With a step that **decays** the raw iterate
settles by itself, and the gain shrinks. Least squares with a known solution, minibatches of 4;
the printed ratio is the raw iterate's error over the average's:
"""),
        ("code", """
d, n = 5, 512
kx, kw, ke = jax.random.split(jax.random.key(0), 3)
X = jax.random.normal(kx, (n, d))
Y = X @ jax.random.normal(kw, (d,)) + 0.5 * jax.random.normal(ke, (n,))
w_star = jnp.linalg.lstsq(X, Y)[0]  # the minimiser of the mean squared error
batches = jax.random.randint(jax.random.key(1), (STEPS, 4), 0, n)

def run(decay, averager):  # step 0.05 / (1 + decay * t / 50): decay 0 is a constant step
    tx = fj.averaged(optax.sgd(lambda t: 0.05 / (1 + decay * t / 50)), averager)
    def body(carry, idx):
        w, state = carry
        grads = jax.grad(lambda w: jnp.mean((X[idx] @ w - Y[idx]) ** 2))(w)
        updates, state = tx.update(grads, state, w)
        w = optax.apply_updates(w, updates)
        avg = fj.averaged_params(state, w)
        return (w, state), (jnp.linalg.norm(w - w_star), jnp.linalg.norm(avg - w_star))
    w0 = jnp.zeros(d)
    return jax.lax.scan(body, (w0, tx.init(w0)), batches)[1]

averagers = {"EMA 0.99": fj.ema(0.99), "Polyak (2nd half)": fj.polyak(STEPS // 2),
             "LAWA k=10": fj.lawa(10, STEPS // 50)}
runs = {name: jax.jit(lambda decay, a=averager: run(decay, a))  # one compilation each
        for name, averager in averagers.items()}
schedules = {"constant 0.05": 0.0, "decaying 0.05/(1+t/50)": 1.0}
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, (sched_name, decay) in zip(axes, schedules.items()):
    for i, (avg_name, averaged_run) in enumerate(runs.items()):
        raw, avg = averaged_run(decay)
        if i == 0:
            ax.plot(raw, color="0.6", lw=0.8, label="raw iterate")
        ax.plot(avg, label=avg_name)
        print(f"{sched_name:24} {avg_name:18} final error: raw {float(raw[-1]):.4f}, "
              f"averaged {float(avg[-1]):.4f} ({float(raw[-1] / avg[-1]):.1f}x smaller)")
    ax.set(yscale="log", xlabel="step", title=f"step size {sched_name}")
axes[0].set_ylabel("‖w − w*‖")
axes[1].legend()
plt.show()
"""),
        ("md", """
At full size the Polyak average of the second half is about 9x closer to the solution than
the raw iterate with the constant step, and about 2x with the decaying one. Rules of thumb:
average when the step stays large (constant or cyclic schedules, small batches); start the
average after the transient (`polyak(start_step)`, `lawa(k, every, burn_in)`,
`ema(..., warmup="linear")`); with a well-decayed schedule expect less.

## Averaged parameters in Feasible Learning

`RunConfig(average=...)` (the CLI's `--average`) wraps FL's primal optimizer and evaluates the
averaged model beside the raw one. The averages live in the optimizer state, so checkpoints
carry them with their counters.
"""),
        ("code", """
EPOCHS = 4 if SMALL else 30
data = fj.load_dataset("digits")
print(f"{'average':8} {'raw test acc':>13} {'avg test acc':>13} {'raw train max':>14} "
      f"{'avg train max':>14}")
for average in ("ema", "lawa", "swa"):
    config = fj.experiments.RunConfig(epochs=EPOCHS, average=average, devices=1)
    res = fj.experiments.run_method(data, "fl", config, progress=False).metrics
    raw, avg = res, res["averaged"]
    print(f"{average:8} {raw['test']['accuracy']:13.4f} {avg['test']['accuracy']:13.4f} "
          f"{raw['train']['max_loss']:14.4f} {avg['train']['max_loss']:14.4f}")
"""),
        ("md", """
On digits the 30-epoch run has converged: at full size the averaged models match the raw
model's test accuracy (97.4% here; SWA's 97.6%) and their train max loss is a little larger
than the raw one's (the multipliers steer the *current* iterate below ε; an average of past iterates
inherits their larger losses). Averaging pays off with noisier training: larger steps,
smaller batches, or a cyclic schedule for SWA.

## Averaged multipliers

The multipliers are iterates too: each λᵢ moves only when sample *i* is in the batch, so its
raw value is noisy from visit to visit. The dual optimizer of `fj.feasible_learning` is applied
row by row, so wrapping it in `fj.averaged` keeps a per-row average with per-row counters,
each counting only that sample's own visits (O(batch) per step). Read it with
`fj.averaged_params` on the dual state.
"""),
        ("code", """
from flax import nnx

EPOCHS_DUAL = 3 if SMALL else 20
x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
N = len(y)
graphdef, params = nnx.split(fj.MLP(64, [64], 10, rngs=nnx.Rngs(0)))
dual = fj.ascent(fj.averaged(optax.sgd(0.1), fj.polyak(start_step=EPOCHS_DUAL // 2)))
solver = fj.feasible_learning(fj.per_sample_loss_fn(graphdef), optax.sgd(0.05, momentum=0.9),
                              num_samples=N, epsilon=0.1, dual_optimizer=dual)
state, history = fj.train(solver, solver.init(params), {"x": x, "y": y}, epochs=EPOCHS_DUAL,
                          batch_size=64, key=jax.random.key(0), epsilon=0.1, progress=False)
raw = np.asarray(state.multipliers["samples"])
avg = np.asarray(fj.averaged_params(state.dual_states["samples"], state.multipliers["samples"]))
print(f"raw λ: mean {raw.mean():.3f}, max {raw.max():.3f}; "
      f"averaged λ (visits {EPOCHS_DUAL // 2}+ of each sample): mean {avg.mean():.3f}, "
      f"max {avg.max():.3f}")
top = 20
shared = len(set(np.argsort(raw)[-top:]) & set(np.argsort(avg)[-top:]))
print(f"of the {top} largest raw multipliers, {shared} are among the {top} largest averaged")
"""),
        ("md", """
The averaged multipliers are the dual analogue of Polyak averaging (ergodic averages are what
primal-dual convergence guarantees are stated for), and a steadier ranking of the hard
samples than the last iterate. Model mixing (`fj.mix`, `fj.averaging.optimal_mixing_alpha`;
Grimberg et al. 2021) averages a local and a global model with a per-leaf weight.
"""),
    ],
}

CONFIDENCE = {
    "title": "Confidence sets with the multiplier bootstrap",
    "intro": """
Averaged SGD gives a point estimate; the **multiplier bootstrap** (Fang, Xu and Yang 2018)
gives its uncertainty without refitting: beside the main SGD chain it runs *B* chains whose
per-sample gradients are reweighted by random multipliers W ~ Exp(1) (mean 1, variance 1),
all on the same minibatches. The spread of the B averaged replicas around the main average
estimates the sampling distribution of the estimator. `fj.multiplier_bootstrap` runs the
main chain and the B replicas as one `vmap` inside one `lax.scan`, through the same
`fj.core.weighted_sum` that applies FL's multipliers.
""",
    "cells": [
        ("code", """
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import feasjax as fj

STEPS = 2000 if SMALL else 20000   # one sample per step: the stream is the data set
REPLICAS = 100 if SMALL else 200
TRIALS = 4 if SMALL else 40        # data sets drawn for the coverage check
"""),
        ("md", """
## Linear regression

Each step sees one fresh example `(x, y)`; the loss of one example is the squared error. The
step size is `η_k = 0.3 k^(−0.55)` (`learning_rate`, `gamma`), and the first 10% of the iterates
are left out of the average (`burn_in`).
"""),
        ("code", """
d = 3
theta_star = jnp.array([1.0, -2.0, 0.5])

def stream(key):
    kx, ke = jax.random.split(key)
    x = jax.random.normal(kx, (STEPS, 1, d))             # (steps, batch of 1, d)
    y = x @ theta_star + 0.5 * jax.random.normal(ke, (STEPS, 1))
    return {"x": x, "y": y}

def loss(theta, example):
    return 0.5 * (example["x"] @ theta - example["y"]) ** 2

boot = fj.multiplier_bootstrap(loss, num_replicas=REPLICAS, learning_rate=0.3, gamma=0.55,
                               burn_in=STEPS // 10)
run = jax.jit(boot.run)
state = run(boot.init(jnp.zeros(d), jax.random.key(1)), stream(jax.random.key(0)))
center, replicas = fj.uncertainty.bootstrap_estimates(state)  # (d,), (B, d)
intervals = fj.coordinate_intervals(center, replicas, level=0.95)
for j in range(d):
    print(f"θ[{j}] = {float(center[j]):+.3f}   95% interval [{float(intervals.lower[j]):+.3f}, "
          f"{float(intervals.upper[j]):+.3f}]   true {float(theta_star[j]):+.1f}")
ball = fj.confidence_ball(center, replicas, level=0.95)
print(f"95% ball radius {float(ball.radius):.3f}; contains θ*: {bool(ball.contains(theta_star))}")
"""),
        ("md", """
`fj.uncertainty.linear_functional_interval` gives an interval for any `vᵀθ`, e.g. the
prediction at a new input `x₀`:
"""),
        ("code", """
x0 = jnp.array([1.0, 1.0, 1.0])
lo, hi = fj.uncertainty.linear_functional_interval(center, replicas, x0, level=0.95)
print(f"prediction at x0: {float(x0 @ center):.3f}, "
      f"95% interval [{float(lo):.3f}, {float(hi):.3f}], true {float(x0 @ theta_star):.3f}")
"""),
        ("md", """
## Do the intervals cover?

Repeat on fresh data sets: a nominal 95% interval should contain the true coordinate in about
95% of them (the repository's coverage study finds ±4 points over 500 data sets; a few trials
here only show the idea). The same compiled `run` serves every trial.
"""),
        ("code", """
hits, balls = [], []
for trial in range(TRIALS):
    st = run(boot.init(jnp.zeros(d), jax.random.key(1000 + trial)),
             stream(jax.random.key(trial + 1)))
    c, r = fj.uncertainty.bootstrap_estimates(st)
    iv = fj.coordinate_intervals(c, r, level=0.95)
    hits.append(np.asarray((iv.lower <= theta_star) & (theta_star <= iv.upper)))
    balls.append(bool(fj.confidence_ball(c, r, level=0.95).contains(theta_star)))
print(f"coordinate coverage over {TRIALS} data sets: {np.mean(hits):.0%} (nominal 95%); "
      f"ball coverage {np.mean(balls):.0%}")
"""),
        ("md", """
## Logistic regression

Any per-example loss works; here the logistic loss with labels in {0, 1}. The replicas'
spread is plotted against the main estimate for the first two coordinates.
"""),
        ("code", """
kx, ku = jax.random.split(jax.random.key(7))
xs = jax.random.normal(kx, (STEPS, 1, d))
labels = (jax.random.uniform(ku, (STEPS, 1)) < jax.nn.sigmoid(xs @ theta_star)).astype(jnp.float32)

def logistic(theta, example):
    z = example["x"] @ theta
    return jnp.logaddexp(0.0, z) - example["y"] * z

logit_boot = fj.multiplier_bootstrap(logistic, num_replicas=REPLICAS, learning_rate=0.5,
                                     gamma=0.55, burn_in=STEPS // 10)
st = jax.jit(logit_boot.run)(logit_boot.init(jnp.zeros(d), jax.random.key(2)),
                             {"x": xs, "y": labels})
c, r = fj.uncertainty.bootstrap_estimates(st)
iv = fj.coordinate_intervals(c, r, level=0.95)
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(r[:, 0], r[:, 1], s=8, alpha=0.5, label="bootstrap replicas")
ax.scatter(*c[:2], color="C1", marker="x", s=80, label="averaged SGD")
ax.scatter(*theta_star[:2], color="k", marker="*", s=120, label="θ*")
ax.set(xlabel="θ[0]", ylabel="θ[1]", title="logistic regression, 95% intervals: "
       + ", ".join(f"[{float(a):.2f}, {float(b):.2f}]" for a, b in zip(iv.lower[:2], iv.upper[:2])))
ax.legend()
plt.show()
"""),
        ("md", """
Memory is (B + 1) × (parameters + optimizer state); with `sharding=` the replica axis is
spread over devices (B must divide evenly). The coverage study and the speed benchmark (the
vmapped driver against a Python step loop) are in the repository's `benchmarks/README.md`.
"""),
    ],
}

SCALE_OUT = {
    "title": "Scale-out: a device mesh, sharded multipliers and vmapped seed sweeps",
    "preamble": '''# Without accelerators, simulate 8 CPU devices. This must happen before JAX is imported, and
# does not change anything on a GPU or TPU runtime (it only splits the host CPU platform).
import os
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8").strip()
''',
    "intro": """
Feasible Learning has one multiplier per training sample, so its dual state grows with the data
set. feasjax shards it with the data: each device owns a contiguous block of the samples *and
their multipliers*, draws its share of every minibatch from its own block and updates those
multipliers without communication; only the primal gradients are averaged (one all-reduce per
step). Many seeds (or hyper-parameters) train as one vmapped program.

**On a Colab TPU runtime.** *Runtime → Change runtime type → TPU*. A TPU v2-8 runtime shows 8
devices, a v5e-1 or v6e-1 runtime one chip. Colab's preinstalled JAX may be older than
feasjax needs (jax ≥ 0.8.1): run `%pip install -U "jax[tpu]"` first, restart the session
(*Runtime → Restart session*), then run this notebook from the top; `jax.devices()` below
should list `TpuDevice`s. On a GPU runtime use `%pip install -U "jax[cuda12]"` instead. The
code is the same on every backend: the mesh takes whatever devices exist (here 8 simulated
CPU devices when there is no accelerator).
""",
    "cells": [
        ("code", """
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import feasjax as fj

EPOCHS = 2 if SMALL else 20
print(jax.devices())
"""),
        ("md", """
## A mesh over all devices, and the data sharded over it

`fj.shard_data` pads the data set to a multiple of the device count (padded samples are
never drawn and never counted) and places block *k* on device *k*. The solver is built for
one device's block (`num_samples=layout.local_size`) and names the mesh axis.
"""),
        ("code", """
data = fj.load_dataset("digits")
mesh = fj.data_mesh()  # a 1-D mesh over every device (of every process)
sharded, layout = fj.shard_data({"x": data.x_train, "y": data.y_train}, mesh)
print(f"{len(data.y_train)} samples on {mesh.size} devices: {layout.local_size} per device, "
      f"{layout.padded_size - len(data.y_train)} padding")

graphdef, params = nnx.split(fj.MLP(64, [64], 10, rngs=nnx.Rngs(0)))
loss = fj.per_sample_loss_fn(graphdef)
BATCH = 64 if 64 % mesh.size == 0 else 8 * mesh.size  # the global batch is split over devices
solver = fj.feasible_learning(loss, optax.sgd(0.05, momentum=0.9),
                              num_samples=layout.local_size, epsilon=0.1,
                              axis_name=fj.DATA_AXIS)
state = fj.init_sharded(solver, params, mesh, layout)
state, history = fj.train(solver, state, sharded, epochs=EPOCHS, batch_size=BATCH,
                          key=jax.random.key(0), epsilon=0.1, progress=False,
                          epoch_runner=fj.data_parallel_epoch(solver, BATCH, mesh, layout))
print("mean loss per epoch:", np.round(history.mean_loss, 4))
"""),
        ("md", """
## Where the multipliers live

The multiplier vector is one global array whose rows are split over the devices: each device
holds exactly its samples' multipliers.
"""),
        ("code", """
lam = state.multipliers["samples"]
print("shape", lam.shape, "sharding", lam.sharding.spec)
for shard in lam.addressable_shards[:4]:
    print(f"  {shard.device}: rows {shard.index[0].start}-{shard.index[0].stop - 1}, "
          f"mean λ {float(shard.data.mean()):.3f}")
"""),
        ("md", """
Metrics over the per-sample losses are global and exact (the padding is masked out), not
averages of per-device quantiles:
"""),
        ("code", """
summary = fj.parallel.global_loss_summary(jax.jit(loss)(state.params, sharded), 0.1, layout)
print({k: round(v, 4) for k, v in summary.items()})
"""),
        ("md", """
## A seed sweep as one vmapped program

`fj.experiments.run_method_sweep` stacks the runs along a leading axis and trains them
together (one compilation, one program); run *s* equals `run_method` with `seed=s`. The CLI
does the same with `feasjax demo --seeds 0-7`. Lower level: `fj.parallel.stack_runs`,
`fj.parallel.sweep_epoch` and `fj.parallel.train_sweep`, also over a mesh.
"""),
        ("code", """
seeds = [0, 1] if SMALL else list(range(8))
config = fj.experiments.RunConfig(epochs=EPOCHS, devices=1)
sweep = fj.experiments.run_method_sweep(data, "fl", config, seeds, progress=False)
for key in ("accuracy", "max_loss", "feasible_fraction"):
    s = sweep.summary["train"][key]
    print(f"train {key:18} {s['mean']:.4f} ± {s['std']:.4f} over {len(seeds)} seeds")
"""),
        ("md", """
## More than one host

Every host runs the same script, which calls `fj.parallel.initialize()` before any other JAX
call; on TPU pods, SLURM, Open MPI or Kubernetes JAX finds the cluster itself, elsewhere set
`FEASJAX_COORDINATOR_ADDRESS`, `FEASJAX_NUM_PROCESSES` and `FEASJAX_PROCESS_ID`. Each host then
loads only its rows (`fj.parallel.process_sample_range`) and passes `num_samples=N` to
`fj.shard_data`. To try several processes on one machine:
`python -m feasjax.parallel.launch --processes 2 --devices-per-process 2 -- my_train.py`.
"""),
    ],
}

PREFERENCE = {
    "title": "Preference alignment: DPO with one multiplier per pair, on a small transformer with LoRA",
    "intro": """
The Feasible Learning paper's third experiment applies FL to preference alignment: DPO where
**every** preference pair's loss must stay below ε, with one multiplier per pair. This notebook
does it end to end on a CPU in a few minutes (seconds at small size), with the public API only:

1. a generated task (`fj.data.sorting_preferences`, no download): sort a few digits; a pair is
   the sorted continuation (chosen) against a corrupted one (rejected); a minority of pairs are
   harder (long prompts, subtle swaps) and 5% of the training labels are flipped;
2. a small decoder-only `fj.models.Transformer` whose linear layers carry flax's own LoRA
   adapters (`nnx.LoRALinear`), fine-tuned on correct sequences (the base only);
3. the fine-tuned model becomes the frozen reference: its log-probabilities of every pair are
   computed once (`fj.models.reference_logprobs`) and stored with the data;
4. DPO, FL-DPO and RFL-DPO train only the adapters (`nnx.Optimizer(..., wrt=nnx.LoRAParam)`)
   with the paper's settings: ε = 0.3, dual learning rate 1, resilient α = 1, multipliers
   from 1, β = 0.1; every phase runs in the engine, `fj.train`, through `fj.nnx_step`.

`feasjax paper dpo --seeds 0-2` runs the same comparison over seeds.
""",
    "cells": [
        ("code", """
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx

import feasjax as fj

SFT_EPOCHS = 2 if SMALL else 30
EPOCHS = 2 if SMALL else 30
EPSILON, BETA = 0.3, 0.1
task = fj.data.sorting_preferences(0, num_sft=256 if SMALL else 2048)
N = len(task.train["chosen"])
digits = lambda seq: " ".join(str(t - 4) if t >= 4 else "|" for t in seq if t not in (0, 1, 3))
i = int(np.flatnonzero(task.train["hard"])[0])
print(f"{len(task.sft['tokens'])} sequences to fine-tune on, {N} training pairs, "
      f"{len(task.test['chosen'])} held-out pairs, vocabulary {task.vocab_size}")
print("a hard pair:  chosen  ", digits(task.train["chosen"][i]))
print("              rejected", digits(task.train["rejected"][i]))
"""),
        ("md", """
## A base model, fine-tuned with its adapters frozen

`lora_rank=4` makes every linear layer of the blocks an `nnx.LoRALinear`: its base kernel plus
`x @ lora_a @ lora_b`, with `lora_b` starting at zero, so the adapters change nothing until
they are trained. Fine-tuning differentiates and updates the base only, the filter
`nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))`; `fj.nnx_step` turns the usual NNX train step
into a step of the engine, which compiles each epoch as one `lax.scan`.
"""),
        ("code", """
BASE = nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))
model = fj.models.Transformer(task.vocab_size, task.max_length, dim=32, heads=2, layers=2,
                              lora_rank=4, rngs=nnx.Rngs(0))

def sft_step(model, optimizer, batch, idx):
    def loss_fn(model):  # per-sequence mean negative log-likelihood of the continuation
        tokens, mask = batch["tokens"], batch["mask"]
        nll = -fj.models.sequence_logprobs(model(tokens), tokens, mask) / mask[:, 1:].sum(-1)
        return nll.mean(), nll
    (_, losses), grads = nnx.value_and_grad(loss_fn, has_aux=True,
                                            argnums=nnx.DiffState(0, BASE))(model)
    optimizer.update(model, grads)
    return losses

optimizer = nnx.Optimizer(model, optax.adamw(3e-3), wrt=BASE)
step, carry = fj.nnx_step(sft_step, model, optimizer)
carry, history = fj.train(step, carry, jax.tree.map(jnp.asarray, task.sft), epochs=SFT_EPOCHS,
                          batch_size=64, key=jax.random.key(0), progress=False)
fj.nnx_update(model, optimizer, carry)
print("fine-tuning loss per epoch:", np.round(history.mean_loss[::max(1, SFT_EPOCHS // 6)], 3))
"""),
        ("md", """
## The frozen reference: its log-probabilities, once

DPO compares the policy with a reference. Here the reference is the fine-tuned model as it is
now; its log-probabilities of every chosen and rejected continuation are computed once, under
`stop_gradient`, and travel with the data. The loss never calls a reference model, so nothing
can update it.
"""),
        ("code", """
KEYS = ("chosen", "rejected", "chosen_mask", "rejected_mask")

def with_reference(pairs):
    data = {k: jnp.asarray(pairs[k]) for k in KEYS}
    return {**data, **nnx.jit(fj.models.reference_logprobs)(model, data)}

train_pairs, test_pairs = with_reference(task.train), with_reference(task.test)
pair_loss = fj.models.preference_loss_fn("dpo", beta=BETA)  # (model, batch) -> (B,) losses
"""),
        ("md", """
## DPO, FL-DPO and RFL-DPO on the adapters only

DPO minimises the mean of the per-pair losses. FL-DPO wraps the same AdamW in
`fj.feasible(..., num_samples=N, epsilon=ε)` and minimises the Lagrangian
`mean(λᵢ (ℓᵢ − ε))`; the dual step on the batch's pairs is
λᵢ ← max(0, λᵢ + η (ℓᵢ − ε)), and for RFL-DPO (`formulation=fj.resilient(1.0)`)
λᵢ ← max(0, λᵢ + η (ℓᵢ − ε − λᵢ/α)). `wrt=nnx.LoRAParam` and `nnx.DiffState(0, nnx.LoRAParam)`
train the adapters and leave the base as it is.
"""),
        ("code", """
def preference_step(fl):
    def train_step(policy, optimizer, batch, idx):
        weights = fj.multipliers(optimizer, idx) if fl else None
        def objective(policy):
            losses = pair_loss(policy, batch)
            return (losses.mean() if weights is None
                    else jnp.mean(weights * (losses - EPSILON))), losses
        (_, losses), grads = nnx.value_and_grad(objective, has_aux=True,
                                                argnums=nnx.DiffState(0, nnx.LoRAParam))(policy)
        if fl:
            optimizer.update(policy, grads, losses=losses, indices=idx)
        else:
            optimizer.update(policy, grads)
        return losses
    return train_step

def train_method(method):
    # fj.train donates the carry; nnx.clone would share the reference's buffers: copy them.
    graphdef, state = nnx.split(model)
    policy = nnx.merge(graphdef, jax.tree.map(jnp.copy, state))
    adamw = optax.adamw(optax.cosine_decay_schedule(1e-2, EPOCHS * (N // 32)), weight_decay=0.0)
    tx = adamw if method == "dpo" else fj.feasible(
        adamw, num_samples=N, epsilon=EPSILON, dual_optimizer=fj.ascent(optax.sgd(1.0)),
        formulation=fj.resilient(1.0) if method == "rfl-dpo" else None, init_multiplier=1.0)
    optimizer = nnx.Optimizer(policy, tx, wrt=nnx.LoRAParam)
    step, carry = fj.nnx_step(preference_step(method != "dpo"), policy, optimizer)
    carry, _ = fj.train(step, carry, train_pairs, epochs=EPOCHS, batch_size=32,
                        key=jax.random.key(1), epsilon=EPSILON, progress=False)
    fj.nnx_update(policy, optimizer, carry)
    return policy

policies = {m: train_method(m) for m in ("dpo", "fl-dpo", "rfl-dpo")}
"""),
        ("md", """
## The per-pair loss tail, preference accuracy and reward margins

Preference accuracy is the fraction of pairs whose chosen continuation the model finds more
likely than the rejected one (on the training pairs: against their labels, flipped ones
included); the reward margin is DPO's implicit β·h.
"""),
        ("code", """
measure = nnx.jit(fj.models.preference_loss_fn("dpo", beta=BETA, with_margins=True))
results = {}
print(f"{'':8}{'train acc':>10}{'test acc':>10}{'mean':>8}{'q99':>8}{'max':>8}{'> ε':>8}")
for name, policy in {"reference": model, **policies}.items():
    (losses, margins, right), (_, test_margins, test_right) = (
        measure(policy, train_pairs), measure(policy, test_pairs))
    results[name] = (np.asarray(losses), np.asarray(margins))
    print(f"{name:8}{float(right.mean()):10.3f}{float(test_right.mean()):10.3f}"
          f"{float(losses.mean()):8.3f}{float(jnp.quantile(losses, 0.99)):8.3f}"
          f"{float(losses.max()):8.3f}{float((losses > EPSILON).mean()):8.3f}")
"""),
        ("code", """
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for name, (losses, margins) in results.items():
    if name == "reference":
        continue
    ordered = np.sort(losses)[::-1]
    ax1.semilogy(ordered, np.arange(1, len(ordered) + 1) / len(ordered), label=name)
    ax2.hist(margins, bins=40, histtype="step", label=name)
ax1.axvline(EPSILON, color="k", ls=":", label="ε")
ax1.set(xlabel="per-pair training loss ℓ", ylabel="fraction of pairs with loss ≥ ℓ",
        title="the loss tail")
ax2.set(xlabel="reward margin β·h", ylabel="pairs", title="reward margins (training pairs)")
ax1.legend(); ax2.legend()
plt.tight_layout(); plt.show()
"""),
        ("md", """
FL-DPO and RFL-DPO cut the top of the per-pair loss distribution (the pairs DPO leaves behind:
flipped labels and hard pairs) while DPO keeps widening the margins of pairs that are already
satisfied. FL-DPO does so by fitting the flipped labels too (its training accuracy exceeds
95%, the share of correct labels); RFL-DPO's slack lets it give up on pairs that cost too much.
Over seeds, with the per-pair tails in a JSON:

```bash
feasjax paper dpo --seeds 0-2 --json dpo.json --plot dpo.png
```
"""),
    ],
}

NOTEBOOKS = {
    "01_feasible_learning_tour.ipynb": TOUR,
    "02_optax_and_flax.ipynb": OPTAX_FLAX,
    "03_averaging.ipynb": AVERAGING,
    "04_confidence_sets.ipynb": CONFIDENCE,
    "05_scale_out.ipynb": SCALE_OUT,
    "06_preference_alignment.ipynb": PREFERENCE,
}
