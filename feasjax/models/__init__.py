"""Models and per-sample losses: Flax NNX networks (``nets``: ``MLP``, ``CNN`` with optional
BatchNorm and Dropout, the ``ResNet`` family) and the per-sample loss, prediction and model
splitting helpers for plain and stateful models (``losses``), and example-tied dropout
(FairDropout, ``tied_dropout``).
"""
from feasjax._exports import by_name, module_attributes
from feasjax.models.nets import MLP, CNN, BasicBlock, ResNet
from feasjax.models.tied_dropout import TiedDropout, ExampleTiedDropout
from feasjax.models.losses import (LOSSES, cross_entropy, squared_error, per_sample_loss_fn,
                                   split_model, has_model_state, predict_fn)

__all__ = ["BasicBlock", "CNN", "cross_entropy", "ExampleTiedDropout", "has_model_state",
           "LOSSES", "MLP", "per_sample_loss_fn", "predict_fn", "ResNet", "split_model",
           "squared_error", "TiedDropout"]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = by_name({
    "feasjax.models.losses": ("check_batch", "stateful_loss_fn", "eval_loss_fn"),
})

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
