"""Models: backbones, the Token-distilling Encoder, heads, named presets and timm specs.

    from distilkit.models import build_model
    student = build_model("distilpose-s-cpu")
    other = build_model("deeppose-flatten:timm/resnet18-cpu")   # HEAD:timm/BACKBONE (models.specs)
    out = student(images)            # distilkit.PoseOutput
"""
from distilkit.models.cnn_pose import DeepPose, SimpleBaseline
from distilkit.models.deploy import fold_batchnorm, prepare_for_inference
from distilkit.models.distilpose import TokenPoseModel
from distilkit.models.heads import (DeconvHeatmapHead, GlobalRegressionHead, RegressionHead,
                                    TokenHeatmapHead, decode_heatmaps)
from distilkit.models.hrnet import HRNet
from distilkit.models.position import sine_position_embedding
from distilkit.models.configs import EncoderConfig, HRNetConfig, ModelConfig, ResNetConfig, StemNetConfig
from distilkit.models.presets import build_from_config, build_model, get_config, list_models
from distilkit.models.resnet import ResNet
from distilkit.models.specs import HEADS, SpecConfig, is_spec, parse_spec
from distilkit.models.stemnet import StemNet
from distilkit.models.timm_pose import FlattenRegressionHead, TimmCNNPose, TimmTokenPose
from distilkit.models.token_encoder import TokenEncoder

__all__ = [
    "build_model", "build_from_config", "get_config", "list_models",
    "ModelConfig", "EncoderConfig", "StemNetConfig", "HRNetConfig", "ResNetConfig",
    "SpecConfig", "HEADS", "is_spec", "parse_spec", "TimmCNNPose", "TimmTokenPose",
    "FlattenRegressionHead",
    "TokenPoseModel", "DeepPose", "SimpleBaseline",
    "StemNet", "HRNet", "ResNet", "TokenEncoder",
    "RegressionHead", "TokenHeatmapHead", "GlobalRegressionHead", "DeconvHeatmapHead",
    "decode_heatmaps", "sine_position_embedding", "fold_batchnorm", "prepare_for_inference",
]
