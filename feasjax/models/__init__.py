"""Models and per-sample losses: Flax NNX networks (``nets``), per-sample losses and prediction
for plain and stateful models (``losses``), example-tied dropout (``tied_dropout``), a small
``Transformer`` with LoRA adapters (``transformer``) and DPO / IPO losses (``preference``).
"""
from feasjax._exports import by_name, module_attributes
from feasjax.models.nets import MLP, CNN, BasicBlock, ResNet
from feasjax.models.tied_dropout import TiedDropout, ExampleTiedDropout
from feasjax.models.losses import (LOSSES, cross_entropy, squared_error, per_sample_loss_fn,
                                   split_model, has_model_state, predict_fn)
from feasjax.models.transformer import Transformer
from feasjax.models.preference import (sequence_logprobs, dpo_loss, ipo_loss,
                                       preference_loss_fn, reference_logprobs)

__all__ = ["BasicBlock", "CNN", "cross_entropy", "dpo_loss", "ExampleTiedDropout",
           "has_model_state", "ipo_loss", "LOSSES", "MLP", "per_sample_loss_fn", "predict_fn",
           "preference_loss_fn", "reference_logprobs", "ResNet", "sequence_logprobs",
           "split_model", "squared_error", "TiedDropout", "Transformer"]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = by_name({"feasjax.models.losses": ("check_batch", "stateful_loss_fn",
                                                  "eval_loss_fn")})

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
