"""Preference optimization: per-pair DPO / IPO losses against hand computations, LoRA adapters
(only they train, the base stays bit-identical, the reference is never updated), the sorting
task, and ``feasjax paper dpo`` (its JSON; the acceptance run is slow-marked)."""
from __future__ import annotations

import json
import math
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import feasjax as fj
from feasjax.cli import main
from feasjax.experiments.preference import (_objective_step, _train_runs, pair_data,
                                            preference_optimizer)
from feasjax.experiments.presets import PRESETS, override
from feasjax.models.transformer import BASE
from tests._helpers import host_leaves

FAST = ["--no-progress", "--no-compile-cache"]

# Two-token vocabulary, three positions: chosen 0 1 1, rejected 0 0 1, the prompt is token 0.
PAIR = {"chosen": jnp.array([[0, 1, 1]]), "rejected": jnp.array([[0, 0, 1]]),
        "chosen_mask": jnp.array([[0.0, 1.0, 1.0]]),
        "rejected_mask": jnp.array([[0.0, 1.0, 1.0]]),
        "ref_chosen": jnp.array([math.log(0.3) + math.log(0.6)]),
        "ref_rejected": jnp.array([math.log(0.7) + math.log(0.6)])}
THETA = jnp.array([[0.2, 1.0], [0.5, -0.3], [3.0, 3.0]])  # logits at positions 0, 1, 2


def _policy(theta):
    return lambda tokens: jnp.broadcast_to(theta, (tokens.shape[0], *theta.shape))


def _hand_margin():
    # log π(chosen) − log π(rejected) = log p0(1) − log p0(0) = θ01 − θ00 (position 1 is
    # shared); the reference's difference is log 0.3 − log 0.7.
    return (1.0 - 0.2) - (math.log(0.3) - math.log(0.7))


def test_sequence_logprobs_skips_the_prompt_and_the_padding():
    theta = jnp.log(jnp.array([[0.25, 0.75], [0.5, 0.5], [0.9, 0.1], [0.5, 0.5]]))
    tokens = jnp.array([[0, 1, 0, 1]])
    got = fj.models.sequence_logprobs(_policy(theta)(tokens), tokens, jnp.array([[0, 1, 1, 0]]))
    np.testing.assert_allclose(got, [math.log(0.75) + math.log(0.5)], rtol=1e-6)


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_dpo_loss_and_gradient_match_the_hand_computation(beta):
    loss_fn = fj.models.preference_loss_fn("dpo", beta=beta)
    h = _hand_margin()
    loss, grad = jax.value_and_grad(lambda t: loss_fn(_policy(t), PAIR)[0])(THETA)
    np.testing.assert_allclose(loss, math.log1p(math.exp(-beta * h)), rtol=1e-6)
    # d/dh softplus(−βh) = −β σ(−βh); h = θ01 − θ00 + const; positions 1 and 2 cancel or are
    # not read (the last logits predict nothing).
    s = beta / (1.0 + math.exp(beta * h))
    np.testing.assert_allclose(grad, [[s, -s], [0.0, 0.0], [0.0, 0.0]], rtol=1e-5, atol=1e-7)


def test_ipo_loss_and_margins_match_the_hand_computation():
    beta, h = 0.5, _hand_margin()
    loss_fn = fj.models.preference_loss_fn("ipo", beta=beta, with_margins=True)
    loss, margin, more_likely = loss_fn(_policy(THETA), PAIR)
    np.testing.assert_allclose(loss, [(h - 1.0 / (2 * beta)) ** 2], rtol=1e-6)
    np.testing.assert_allclose(margin, [beta * h], rtol=1e-6)
    assert more_likely.tolist() == [True]  # log p0(1) = 1.0 > log p0(0) = 0.2 in logits


def test_preference_losses_reject_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of dpo, ipo"):
        fj.models.preference_loss_fn("kto")
    with pytest.raises(ValueError, match="beta must be a float > 0"):
        fj.models.dpo_loss(*[jnp.zeros(1)] * 4, beta=0.0)
    with pytest.raises(ValueError, match="missing rejected_mask"):
        fj.models.preference_loss_fn()(_policy(THETA), {k: v for k, v in PAIR.items()
                                                        if k != "rejected_mask"})
    with pytest.raises(ValueError, match=r"must be \(B,\) sequence log-probabilities of one "
                                         r"shape.*'rejected': \(2,\)"):
        fj.models.dpo_loss(jnp.zeros(3), jnp.zeros(2), jnp.zeros(3), jnp.zeros(3))
    logits, mask = jnp.zeros((1, 3, 2)), jnp.ones((1, 3))
    with pytest.raises(ValueError, match=r"tokens must be in \[0, 2\).*got values in \[0, 5\]"):
        fj.models.sequence_logprobs(logits, jnp.array([[0, 5, 1]]), mask)  # not read silently
    with pytest.raises(ValueError, match="tokens must be integer token ids, got dtype float32"):
        fj.models.sequence_logprobs(logits, jnp.array([[0.0, 1.0, 1.0]]), mask)
    model = fj.models.Transformer(vocab_size=4, max_length=3, dim=8, heads=2, layers=1,
                                  rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="tokens must be integer token ids"):
        model(jnp.zeros((1, 3)))


def _leaves(model, filt):
    return host_leaves(nnx.state(model, filt))


def test_lora_adapter_sizes_follow_flax():
    r, dim, mlp = 3, 16, 24
    model = fj.models.Transformer(12, 8, dim=dim, heads=2, layers=2, mlp=mlp, lora_rank=r,
                                  rngs=nnx.Rngs(0))
    adapted = {"qkv": (dim, 3 * dim), "out": (dim, dim), "up": (dim, mlp), "down": (mlp, dim)}
    for block in model.blocks:
        for name, (d_in, d_out) in adapted.items():
            lora = getattr(block, name).lora
            assert lora.lora_a.shape == (d_in, r) and lora.lora_b.shape == (r, d_out)
            # flax's LoRA holds A (d_in, r) and B (r, d_out): r·(d_in + d_out) parameters per
            # layer (issue 27 wrote 2·r·(d_in + d_out), twice what a rank-r adapter holds).
            assert lora.lora_a.size + lora.lora_b.size == r * (d_in + d_out)
    total = sum(v.size for v in _leaves(model, nnx.LoRAParam).values())
    assert total == 2 * sum(r * (a + b) for a, b in adapted.values())
    assert not np.any(np.concatenate([v.ravel() for k, v in _leaves(model, nnx.LoRAParam).items()
                                      if "lora_b" in k]))  # B = 0: the adapters start as no-ops


def _tiny():
    preset = override(PRESETS["dpo"], ["epochs=2", "batch_size=16", "dim=16", "layers=1",
                                       "lora_rank=2", "num_train=32", "num_test=16"])
    task = fj.data.sorting_preferences(0, num_sft=8, num_train=32, num_test=16,
                                       hard_fraction=0.25, label_noise=0.1)
    model = fj.models.Transformer(task.vocab_size, task.max_length, dim=16, heads=2, layers=1,
                                  lora_rank=2, rngs=nnx.Rngs(0))
    return preset, task, model


def test_only_the_adapters_train_and_the_reference_is_never_updated():
    preset, task, model = _tiny()
    data = pair_data(model, task.train)
    stored = {k: np.asarray(data[k]) for k in ("ref_chosen", "ref_rejected")}
    base_before, lora_before = _leaves(model, BASE), _leaves(model, nnx.LoRAParam)
    policy = nnx.clone(model)
    step = _objective_step("rfl-dpo", fj.models.preference_loss_fn(beta=preset.beta),
                           preset.epsilon)
    _train_runs(step, [policy], lambda: preference_optimizer("rfl-dpo", preset, 4),
                nnx.LoRAParam, jax.tree.map(lambda a: a[None], data), 2, 16, [0], False, "t")
    base_after, lora_after = _leaves(policy, BASE), _leaves(policy, nnx.LoRAParam)
    assert base_after.keys() == base_before.keys()
    for key in base_before:  # the base is bit-identical
        np.testing.assert_array_equal(base_after[key], base_before[key], err_msg=key)
    assert all(not np.array_equal(lora_after[k], lora_before[k]) for k in lora_after
               if "lora_b" in k)  # every adapter moved
    # The reference: its log-probs in the data are untouched, and the trained policy's frozen
    # base with its adapters switched off computes them again bit for bit.
    np.testing.assert_array_equal(np.asarray(data["ref_chosen"]), stored["ref_chosen"])
    switched_off = nnx.clone(policy)
    for block in switched_off.blocks:
        for name in ("qkv", "out", "up", "down"):
            lora = getattr(block, name).lora
            lora.lora_b.set_value(jnp.zeros_like(lora.lora_b[...]))
    again = pair_data(switched_off, task.train)
    for key, value in stored.items():
        np.testing.assert_array_equal(np.asarray(again[key]), value)
    # ... and the policy moved away from it
    assert not np.array_equal(np.asarray(pair_data(policy, task.train)["ref_chosen"]),
                              stored["ref_chosen"])


def test_fl_dpo_keeps_one_multiplier_per_pair_from_one():
    preset, _, model = _tiny()
    tx = preference_optimizer("fl-dpo", preset, 4)
    opt = nnx.Optimizer(model, tx, wrt=nnx.LoRAParam)
    np.testing.assert_array_equal(fj.multipliers(opt.opt_state), np.ones(32))
    with pytest.raises(ValueError, match="method must be one of dpo, fl-dpo, rfl-dpo"):
        preference_optimizer("fl", preset, 4)


def test_sorting_preferences_pairs_a_sorted_continuation_with_a_corrupted_one():
    task = fj.data.sorting_preferences(3, num_sft=64, num_train=200, num_test=100,
                                       label_noise=0.1, hard_fraction=0.2)
    for split, noise in (("train", 20), ("test", 0)):
        pairs = task.__getattribute__(split)
        assert int(pairs["noisy"].sum()) == noise and int(pairs["hard"].sum()) == 0.2 * len(
            pairs["hard"])
        for i in range(len(pairs["chosen"])):
            good, bad = pairs["chosen"][i], pairs["rejected"][i]
            if pairs["noisy"][i]:
                good, bad = bad, good
            mask = pairs["chosen_mask"][i].astype(bool)
            assert np.array_equal(mask, pairs["rejected_mask"][i].astype(bool))
            k = int(mask.sum()) - 1  # continuation and EOS
            prompt, cont = good[1:k + 1], good[k + 2:2 * k + 2]
            assert np.array_equal(np.sort(prompt), cont) and good[2 * k + 2] == 3
            assert np.array_equal(good[:k + 2], bad[:k + 2]) and not np.array_equal(good, bad)
            assert (k >= 7) == bool(pairs["hard"][i])
    tokens, mask = task.sft["tokens"], task.sft["mask"]
    assert tokens.shape == mask.shape == (64, task.max_length)
    with pytest.raises(ValueError, match="label_noise must be a number in"):
        fj.data.sorting_preferences(0, label_noise=1.5)
    with pytest.raises(ValueError, match="long must be"):
        fj.data.sorting_preferences(0, long=(8, 7))


def test_paper_dpo_writes_the_json_the_issue_names(tmp_path, capsys):
    path = tmp_path / "dpo.json"
    sets = ["epochs=2", "sft_epochs=2", "num_sft=64", "num_train=32", "num_test=16",
            "batch_size=16", "sft_batch_size=32", "dim=16", "layers=1"]
    main(["paper", "dpo", "--seeds", "0-1", "--methods", "dpo,fl-dpo", "--json", str(path),
          *[a for s in sets for a in ("--set", s)], *FAST])
    report = json.loads(path.read_text())
    assert report["preset"] == "dpo" and report["epsilon"] == 0.3
    assert set(report["methods"]) == {"dpo", "fl-dpo"}
    for res in report["methods"].values():
        for key in ("pair_loss_max", "pair_loss_q99", "preference_accuracy",
                    "fraction_above_epsilon", "reward_margin_q50"):
            assert len(res["train"][key]) == 2 and all(np.isfinite(res["train"][key]))
        assert len(res["test"]["preference_accuracy"]) == 2 and res["seconds"] > 0
    # before preference training the policy is the reference: every loss is log 2
    np.testing.assert_allclose(report["reference"]["train"]["pair_loss_max"], math.log(2),
                               rtol=1e-5)
    assert "test pref acc" in capsys.readouterr().out


def _error(argv) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return str(e.value.code)


def test_paper_dpo_rejects_the_other_presets_methods_and_options(tmp_path):
    assert _error(["paper", "dpo", "--methods", "fl"]) == (
        "feasjax paper: error: --methods of dpo must be a subset of dpo,fl-dpo,rfl-dpo, got fl")
    assert "drop --logdir" in _error(["paper", "dpo", "--logdir", str(tmp_path)])
    assert "must be a subset of erm,cserm,fl,rfl" in _error(
        ["paper", "two_moons", "--methods", "rfl-dpo"])
    assert _error(["paper", "dpo", "--set", "loss=kto"]) == (
        "feasjax paper: error: --set loss= takes dpo or ipo, got 'kto'")
    assert _error(["paper", "dpo", "--set", "lora_rank=x"]).startswith(
        "feasjax paper: error: --set lora_rank=x")


@pytest.mark.slow
def test_paper_dpo_acceptance(tmp_path):
    """Issue 27: FL-DPO or RFL-DPO keeps the train pair-loss q99 and max below DPO's on every
    seed, with held-out preference accuracy within 2 points (default settings, seeds 0-2)."""
    path = tmp_path / "dpo.json"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device, as a user
    subprocess.run([sys.executable, "-m", "feasjax.cli", "paper", "dpo", "--seeds", "0-2",
                    "--json", str(path), "--no-progress"], check=True, env=env)
    methods = json.loads(path.read_text())["methods"]
    dpo = methods["dpo"]
    for name in ("fl-dpo", "rfl-dpo"):
        res = methods[name]
        for s in range(3):
            assert res["train"]["pair_loss_q99"][s] < dpo["train"]["pair_loss_q99"][s], name
            assert res["train"]["pair_loss_max"][s] < dpo["train"]["pair_loss_max"][s], name
            assert abs(res["test"]["preference_accuracy"][s]
                       - dpo["test"]["preference_accuracy"][s]) <= 0.02, name
    # ...and the README's table is what the command reports (means over the seeds): q99 to
    # 0.01, accuracies to 0.004 (two held-out pairs of 512) and the largest loss, a single
    # noisy pair's and the most sensitive to float reassociation (the 8-device XLA flag alone
    # moves DPO's from 1.017 to 0.969), to 0.05. Runs on one machine are identical.
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("feasjax paper dpo --seeds 0-2 --json", 1)[1]
    for label, name in (("DPO", "dpo"), ("FL-DPO", "fl-dpo"), ("RFL-DPO", "rfl-dpo")):
        row = re.search(rf"^\| {label} \| ([\d.]+) ± [\d.]+ \| ([\d.]+) ± [\d.]+ \| "
                        rf"([\d.]+) ± [\d.]+ \| ([\d.]+) ± [\d.]+ \|", section, re.M)
        train, test = methods[name]["train"], methods[name]["test"]
        np.testing.assert_allclose(np.mean(train["pair_loss_max"]), float(row.group(1)),
                                   atol=0.05, err_msg=label)
        np.testing.assert_allclose(np.mean(train["pair_loss_q99"]), float(row.group(2)),
                                   atol=0.01, err_msg=label)
        np.testing.assert_allclose(
            [np.mean(train["preference_accuracy"]), np.mean(test["preference_accuracy"])],
            [float(row.group(3)), float(row.group(4))], atol=0.004, err_msg=label)
