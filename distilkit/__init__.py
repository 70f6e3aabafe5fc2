"""distilkit: a reproducibility and ablation kit for DistilPose (CVPR 2023)."""
from distilkit.outputs import PoseOutput

__version__ = "0.1.0"
__all__ = ["PoseOutput", "load_model", "__version__"]


def load_model(path, map_location="cpu"):
    """The model of any kit checkpoint (trained, or converted by ``distilkit convert``), in
    eval mode; loaded weights-only, so the file cannot run code."""
    from distilkit.models.checkpoint import load_model_from_checkpoint

    return load_model_from_checkpoint(path, map_location)[0]
