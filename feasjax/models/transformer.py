"""A small decoder-only transformer in Flax NNX, with optional LoRA adapters (flax's own): pre-norm
blocks (LayerNorm, causal multi-head self-attention, LayerNorm, a GELU MLP), learned token and
position embeddings and an untied output layer. With ``lora_rank=r`` every linear layer of the
blocks (fused query/key/value, attention output, both MLP layers) is a
:class:`flax.nnx.LoRALinear`: the base kernel plus ``x @ lora_a @ lora_b``, ``r·(d_in + d_out)``
:class:`flax.nnx.LoRAParam` s per layer; ``lora_b`` starts at zero, so the model computes what
its base does until the adapters are trained (LoRA, Hu et al. 2022). Train only the adapters
with ``nnx.Optimizer(model, tx, wrt=nnx.LoRAParam)`` (differentiate with
``nnx.DiffState(0, nnx.LoRAParam)``), only the base with :data:`BASE`. Sequences are
right-padded: a causal position never sees the padding after it, so no attention mask is needed.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from feasjax.models.nets import _check_positive_int

__all__ = ["Transformer"]

# The base model's parameters without the adapters (nnx.LoRAParam is a subclass of nnx.Param).
BASE = nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))


class _Block(nnx.Module):
    def __init__(self, dim: int, heads: int, mlp: int, lora_rank: int, rngs: nnx.Rngs) -> None:
        linear = (functools.partial(nnx.LoRALinear, lora_rank=lora_rank, rngs=rngs) if lora_rank
                  else functools.partial(nnx.Linear, rngs=rngs))
        self.heads = heads
        self.norm1, self.norm2 = nnx.LayerNorm(dim, rngs=rngs), nnx.LayerNorm(dim, rngs=rngs)
        self.qkv, self.out = linear(dim, 3 * dim), linear(dim, dim)
        self.up, self.down = linear(dim, mlp), linear(mlp, dim)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, d = x.shape
        q, k, v = jnp.split(self.qkv(self.norm1(x)).reshape(b, t, 3 * self.heads, -1), 3, -2)
        attended = nnx.dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(attended.reshape(b, t, d))
        return x + self.down(jax.nn.gelu(self.up(self.norm2(x))))


class Transformer(nnx.Module):
    """Decoder-only transformer: ``(B, T)`` int tokens to ``(B, T, vocab_size)`` next-token logits.

    Args:
      vocab_size: number of token ids.
      max_length: longest sequence (the learned position embeddings).
      dim: model width (divisible by ``heads``).
      heads: attention heads.
      layers: number of blocks.
      mlp: hidden width of each block's MLP (default ``4 * dim``).
      lora_rank: ``0`` for plain linear layers, else the rank of the LoRA adapters of every
        linear layer in the blocks (see the module docstring).
      rngs: the ``nnx.Rngs`` to initialise from.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> import feasjax as fj
      >>> model = fj.models.Transformer(vocab_size=8, max_length=6, dim=16, heads=2,
      ...                               layers=1, lora_rank=2, rngs=nnx.Rngs(0))
      >>> model(jnp.zeros((3, 6), jnp.int32)).shape
      (3, 6, 8)
      >>> # r·(d_in + d_out) for each of the 4 adapted layers
      >>> sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.LoRAParam)))
      512
    """

    def __init__(self, vocab_size: int, max_length: int, *, dim: int = 32, heads: int = 2,
                 layers: int = 2, mlp: int | None = None, lora_rank: int = 0,
                 rngs: nnx.Rngs) -> None:
        for name, value in (("vocab_size", vocab_size), ("max_length", max_length), ("dim", dim),
                            ("heads", heads), ("layers", layers)):
            _check_positive_int(value, name)
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got {dim=} and {heads=}")
        if isinstance(lora_rank, bool) or not isinstance(lora_rank, int) or lora_rank < 0:
            raise ValueError(f"lora_rank must be an int >= 0 (0: no adapters), got {lora_rank=}")
        mlp = _check_positive_int(4 * dim if mlp is None else mlp, "mlp")
        self.max_length = max_length
        self.embed = nnx.Embed(vocab_size, dim, rngs=rngs)
        self.position = nnx.Embed(max_length, dim, rngs=rngs)
        self.blocks = nnx.List([_Block(dim, heads, mlp, lora_rank, rngs) for _ in range(layers)])
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.head = nnx.Linear(dim, vocab_size, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        if tokens.ndim != 2 or tokens.shape[1] > self.max_length:
            raise ValueError(f"tokens must have shape (B, T) with T <= {self.max_length}, got "
                             f"{tokens.shape}")
        if not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise ValueError(f"tokens must be integer token ids, got dtype {tokens.dtype}")
        x = self.embed(tokens) + self.position(jnp.arange(tokens.shape[1]))[None]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))
