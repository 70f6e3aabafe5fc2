"""COCO keypoint evaluation: crop -> image geometry, rescoring, OKS-NMS, COCOeval."""
from distilkit.evaluation.affine import (affine_from_points, apply_affine, crop_affine,
                                         get_affine_points, keypoints_to_image)
from distilkit.evaluation.coco import (STAT_NAMES, evaluate_coco, load_coco, to_coco_results,
                                       write_coco_results)
from distilkit.evaluation.oks import oks_iou, oks_nms
from distilkit.evaluation.postprocess import postprocess_predictions, rescore

__all__ = [
    "keypoints_to_image", "get_affine_points", "affine_from_points", "crop_affine",
    "apply_affine", "rescore", "oks_iou", "oks_nms", "to_coco_results",
    "write_coco_results", "evaluate_coco", "load_coco", "postprocess_predictions",
    "STAT_NAMES",
]
