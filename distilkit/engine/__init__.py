"""Training and evaluation engine: one ``fit`` for every model, checkpoints, evaluation."""
from distilkit.engine.config import TrainConfig, read_config, write_config
from distilkit.engine.eval_checkpoint import checkpoint_error_metrics, evaluate_checkpoint
from distilkit.engine.trainer import NonFiniteLossError, fit

__all__ = ["TrainConfig", "read_config", "write_config", "fit", "NonFiniteLossError", "evaluate_checkpoint", "checkpoint_error_metrics"]
