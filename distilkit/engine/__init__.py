"""Training and evaluation engine."""
from distilkit.engine.config import TrainConfig
from distilkit.engine.trainer import NonFiniteLossError, fit

__all__ = ["TrainConfig", "fit", "NonFiniteLossError", "evaluate_checkpoint"]


def evaluate_checkpoint(*args, **kwargs):
    from distilkit.engine.eval_checkpoint import evaluate_checkpoint as _impl
    return _impl(*args, **kwargs)
