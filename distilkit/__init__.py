"""distilkit: a reproducibility and ablation kit for DistilPose (CVPR 2023)."""
from distilkit.outputs import PoseOutput

__version__ = "0.1.0"
__all__ = ["PoseOutput", "__version__"]
