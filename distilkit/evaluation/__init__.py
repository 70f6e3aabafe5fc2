"""COCO keypoint evaluation: crop -> image geometry, rescoring, OKS-NMS, COCOeval.

The crop geometry itself lives in ``distilkit.geometry`` (shared with the data pipeline);
``keypoints_to_image`` is re-exported here as the first step of the post-processing.
"""
from distilkit.evaluation.coco import (STAT_NAMES, evaluate_coco, load_coco, to_coco_results,
                                       write_coco_results)
from distilkit.evaluation.correctness import is_correct_oks, is_correct_pck10
from distilkit.evaluation.oks import oks_iou, oks_nms, oks_terms
from distilkit.evaluation.postprocess import postprocess_predictions, rescore
from distilkit.geometry import keypoints_to_image

__all__ = [
    "keypoints_to_image", "rescore", "oks_terms", "oks_iou", "oks_nms", "to_coco_results",
    "write_coco_results", "evaluate_coco", "load_coco", "postprocess_predictions",
    "is_correct_pck10", "is_correct_oks", "STAT_NAMES",
]
