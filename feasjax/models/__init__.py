"""Models and per-sample losses: Flax NNX networks (``nets``: ``MLP``, ``CNN`` with optional
BatchNorm and Dropout, the ``ResNet`` family) and the per-sample loss, prediction and model
splitting helpers for plain and stateful models (``losses``), and example-tied dropout
(FairDropout, ``tied_dropout``).
"""
from feasjax._exports import module_attributes
from feasjax.models.nets import MLP
from feasjax.models.nets import CNN
from feasjax.models.nets import BasicBlock
from feasjax.models.nets import ResNet
from feasjax.models.tied_dropout import TiedDropout
from feasjax.models.tied_dropout import ExampleTiedDropout
from feasjax.models.losses import LOSSES
from feasjax.models.losses import cross_entropy
from feasjax.models.losses import squared_error
from feasjax.models.losses import per_sample_loss_fn
from feasjax.models.losses import split_model
from feasjax.models.losses import has_model_state
from feasjax.models.losses import stateful_loss_fn
from feasjax.models.losses import eval_loss_fn
from feasjax.models.losses import predict_fn

__all__ = [
    "BasicBlock",
    "CNN",
    "cross_entropy",
    "eval_loss_fn",
    "ExampleTiedDropout",
    "has_model_state",
    "LOSSES",
    "MLP",
    "per_sample_loss_fn",
    "predict_fn",
    "ResNet",
    "split_model",
    "squared_error",
    "stateful_loss_fn",
    "TiedDropout",
]

# No longer exported here (helpers, or records only the library builds); until 0.3 they still
# resolve, with a DeprecationWarning naming the module that defines them.
_DEPRECATED = {
    "check_batch": "feasjax.models.losses",
}

__getattr__, __dir__ = module_attributes(__name__, __all__, deprecated=_DEPRECATED)
