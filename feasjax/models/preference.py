"""Per-pair preference losses for language models: DPO and IPO, one loss per preference pair.

A pair is a prompt with a chosen and a rejected continuation, each a right-padded ``(T,)`` token
sequence (prompt then continuation) with a ``(T,)`` mask of the tokens that count (the
continuation's). With ``h`` the policy's log-ratio margin over the frozen reference model,

.. math::
  h = (\\log\\pi(y_w|x) - \\log\\pi_{ref}(y_w|x)) - (\\log\\pi(y_l|x) - \\log\\pi_{ref}(y_l|x)),

DPO's loss is ``-log σ(β h)`` (Rafailov et al., NeurIPS 2023, eq. 7) and IPO's ``(h - 1/(2β))²``
(Azar et al., AISTATS 2024, eq. 17); ``β h`` is the implicit reward margin. Per pair, ``(B,)``,
so Feasible Learning bounds each (``fj.feasible``). The reference's log-probabilities
(:func:`reference_logprobs`, once, under ``stop_gradient``) travel with the data (``ref_chosen``,
``ref_rejected``): the loss never calls the reference model, so nothing can update it.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from feasjax.core.checks import is_concrete

__all__ = ["sequence_logprobs", "dpo_loss", "ipo_loss", "preference_loss_fn",
           "reference_logprobs"]

PAIR_KEYS = ("chosen", "rejected", "chosen_mask", "rejected_mask")


def sequence_logprobs(logits: jax.Array, tokens: jax.Array, mask: jax.Array) -> jax.Array:
    """Log-probability of each sequence's masked tokens under next-token ``logits``.

    ``logits[b, t]`` predicts ``tokens[b, t + 1]``, so the sum runs over ``t >= 1``:
    ``Σ_t mask[b, t] · log softmax(logits[b, t - 1])[tokens[b, t]]`` (``mask[:, 0]`` is unused).

    Args:
      logits: ``(B, T, V)`` next-token logits (a causal model's output on ``tokens``).
      tokens: ``(B, T)`` int token ids.
      mask: ``(B, T)``, 1 (or True) where a token counts, 0 at the prompt and the padding.

    Returns:
      ``(B,)`` float log-probabilities.

    Example:
      >>> import jax.numpy as jnp
      >>> import feasjax as fj
      >>> logits = jnp.log(jnp.array([[[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]]]))
      >>> tokens, mask = jnp.array([[0, 1, 0]]), jnp.array([[0, 1, 1]])
      >>> lp = fj.models.sequence_logprobs(logits, tokens, mask)
      >>> round(float(jnp.exp(lp[0])), 4)  # 0.75 * 0.5
      0.375
    """
    if logits.ndim != 3 or tokens.shape != logits.shape[:2] or mask.shape != tokens.shape:
        raise ValueError(f"expected logits (B, T, V) with tokens and mask (B, T), got "
                         f"{logits.shape=}, {tokens.shape=}, {mask.shape=}")
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(f"tokens must be integer token ids, got dtype {tokens.dtype}")
    if is_concrete(tokens) and tokens.size and not 0 <= int(tokens.min()) <= int(
            tokens.max()) < logits.shape[-1]:  # JAX would read out of range silently
        raise ValueError(f"tokens must be in [0, {logits.shape[-1]}) (the logits' vocabulary), "
                         f"got values in [{int(tokens.min())}, {int(tokens.max())}]")
    logp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]
    return jnp.sum(picked * mask[:, 1:].astype(picked.dtype), axis=-1)


def _margin(chosen: jax.Array, rejected: jax.Array, ref_chosen: jax.Array,
            ref_rejected: jax.Array) -> jax.Array:
    shapes = {"chosen": jnp.shape(chosen), "rejected": jnp.shape(rejected),
              "ref_chosen": jnp.shape(ref_chosen), "ref_rejected": jnp.shape(ref_rejected)}
    if len(set(shapes.values())) != 1 or len(shapes["chosen"]) != 1:
        raise ValueError(f"chosen, rejected, ref_chosen and ref_rejected must be (B,) sequence "
                         f"log-probabilities of one shape, got shapes {shapes}")
    return (chosen - ref_chosen) - (rejected - ref_rejected)


def _check_beta(beta: Any) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a float > 0, got {beta=}")
    return float(beta)


def dpo_loss(chosen: jax.Array, rejected: jax.Array, ref_chosen: jax.Array,
             ref_rejected: jax.Array, *, beta: float = 0.1) -> jax.Array:
    """DPO's per-pair loss ``-log σ(β h)`` from the four ``(B,)`` sequence log-probabilities.

    Args:
      chosen, rejected: the policy's log-probabilities of the chosen and rejected continuations.
      ref_chosen, ref_rejected: the frozen reference's.
      beta: the KL strength ``β > 0``.

    Returns:
      ``(B,)`` losses (``log 2`` where the policy equals the reference).

    Example:
      >>> import jax.numpy as jnp
      >>> import feasjax as fj
      >>> z = jnp.zeros(1)
      >>> round(float(fj.models.dpo_loss(z, z, z, z)[0]), 4)  # log 2
      0.6931
    """
    return jax.nn.softplus(-_check_beta(beta) * _margin(chosen, rejected, ref_chosen,
                                                        ref_rejected))


def ipo_loss(chosen: jax.Array, rejected: jax.Array, ref_chosen: jax.Array,
             ref_rejected: jax.Array, *, beta: float = 0.1) -> jax.Array:
    """IPO's per-pair loss ``(h - 1/(2β))²`` (arguments as :func:`dpo_loss`).

    Returns:
      ``(B,)`` losses, 0 where the margin ``h`` is ``1/(2β)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import feasjax as fj
      >>> z = jnp.zeros(1)
      >>> fj.models.ipo_loss(jnp.array([5.0]), z, z, z, beta=0.1).tolist()
      [0.0]
    """
    half = 1.0 / (2.0 * _check_beta(beta))
    return jnp.square(_margin(chosen, rejected, ref_chosen, ref_rejected) - half)


PREFERENCE_LOSSES = {"dpo": dpo_loss, "ipo": ipo_loss}


def _policy_logprobs(model: Callable, batch: Mapping[str, jax.Array]) -> tuple:
    missing = [k for k in PAIR_KEYS if k not in batch]
    if missing:
        raise ValueError(f"batch must hold {', '.join(PAIR_KEYS)}; missing {', '.join(missing)}")
    # One forward pass over chosen and rejected together.
    tokens = jnp.concatenate([batch["chosen"], batch["rejected"]])
    masks = jnp.concatenate([batch["chosen_mask"], batch["rejected_mask"]])
    return tuple(jnp.split(sequence_logprobs(model(tokens), tokens, masks), 2))


def reference_logprobs(model: Callable, batch: Mapping[str, jax.Array]) -> dict:
    """The frozen reference's log-probabilities of a batch of pairs, to store with the data.

    Args:
      model: the reference, ``(B, T) tokens -> (B, T, V)`` logits (an ``nnx.Module``).
      batch: ``chosen``, ``rejected`` ``(B, T)`` tokens and ``chosen_mask``, ``rejected_mask``.

    Returns:
      ``{"ref_chosen": (B,), "ref_rejected": (B,)}``, under ``stop_gradient``.

    Example:
      >>> import jax.numpy as jnp
      >>> import feasjax as fj
      >>> uniform = lambda tokens: jnp.zeros((*tokens.shape, 2))
      >>> mask = jnp.array([[0, 1, 1]])
      >>> pair = {"chosen": jnp.array([[0, 1, 1]]),
      ...         "rejected": jnp.array([[0, 0, 1]]),
      ...         "chosen_mask": mask, "rejected_mask": mask}
      >>> ref = fj.models.reference_logprobs(uniform, pair)
      >>> round(float(ref["ref_chosen"][0]), 4)  # 2 log(1/2)
      -1.3863
    """
    chosen, rejected = jax.lax.stop_gradient(_policy_logprobs(model, batch))
    return {"ref_chosen": chosen, "ref_rejected": rejected}


def preference_loss_fn(kind: str = "dpo", *, beta: float = 0.1,
                       with_margins: bool = False) -> Callable:
    """``loss(model, batch) -> (B,)`` per-pair losses of a policy, FL's per-sample losses.

    Args:
      kind: ``"dpo"`` (:func:`dpo_loss`) or ``"ipo"`` (:func:`ipo_loss`).
      beta: the KL strength ``β > 0``.
      with_margins: also return the implicit reward margins ``β h`` and whether the policy
        finds each chosen continuation more likely than its rejected one:
        ``(losses, margins, chosen_more_likely)``.

    Returns:
      ``loss(model, batch)``; ``batch`` holds the pairs' tokens and masks
      (:func:`reference_logprobs`' arguments) and the reference's ``ref_chosen``,
      ``ref_rejected``.

    Example:
      >>> import jax.numpy as jnp
      >>> import feasjax as fj
      >>> policy = lambda tokens: jnp.zeros((*tokens.shape, 2)).at[..., 1].set(1.0)
      >>> mask, ref = jnp.array([[0, 1, 1]]), jnp.log(jnp.array([0.25]))
      >>> pair = {"chosen": jnp.array([[0, 1, 1]]),
      ...         "rejected": jnp.array([[0, 0, 1]]),
      ...         "chosen_mask": mask, "rejected_mask": mask,
      ...         "ref_chosen": ref, "ref_rejected": ref}
      >>> loss = fj.models.preference_loss_fn("dpo", beta=1.0)(policy, pair)
      >>> # softplus(-1): the chosen gains a nat over the rejected
      >>> round(float(loss[0]), 4)
      0.3133
    """
    if kind not in PREFERENCE_LOSSES:
        raise ValueError(f"kind must be one of {', '.join(PREFERENCE_LOSSES)}, got {kind=}")
    pair_loss, beta = PREFERENCE_LOSSES[kind], _check_beta(beta)

    def loss(model: Callable, batch: Mapping[str, jax.Array]) -> Any:
        chosen, rejected = _policy_logprobs(model, batch)
        ref = (batch["ref_chosen"], batch["ref_rejected"])
        losses = pair_loss(chosen, rejected, *ref, beta=beta)
        if not with_margins:
            return losses
        return losses, beta * _margin(chosen, rejected, *ref), chosen > rejected

    return loss
