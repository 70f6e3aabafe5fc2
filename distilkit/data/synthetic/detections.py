"""A simulated person detector for the val split: jittered GT boxes, misses, false positives.

The val pipeline is the real top-down one (crops from detector boxes, box scores in the
instance rescoring, OKS-NMS), so the boxes must be imperfect in the ways a detector is.
"""
from __future__ import annotations

import math

import numpy as np

from distilkit.data.synthetic.config import SynthConfig
from distilkit.data.synthetic.scene import PersonLabel


def _clipped(x: float, y: float, bw: float, bh: float, w: int, h: int) -> list[float] | None:
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]


def simulate_detections(rng: np.random.Generator, image_id: int, people: list[PersonLabel],
                        object_boxes: list[list[float]], w: int, h: int,
                        cfg: SynthConfig) -> list[dict]:
    dets: list[dict] = []
    for person in people:
        if not person.annotated or rng.random() < cfg.det_miss_rate:
            continue
        x, y, bw, bh = person.bbox
        cx = x + bw / 2 + rng.normal(0, cfg.det_center_jitter) * bw
        cy = y + bh / 2 + rng.normal(0, cfg.det_center_jitter) * bh
        s = math.exp(rng.normal(0, cfg.det_size_jitter))
        sw, sh = bw * s * math.exp(rng.normal(0, cfg.det_size_jitter / 2)), bh * s
        box = _clipped(cx - sw / 2, cy - sh / 2, sw, sh, w, h)
        if box is None:
            continue
        labelled = max(1, person.num_keypoints)
        seen = float((person.keypoints[:, 2] == 2).sum()) / labelled
        # Well-seen people get confident boxes; heavily occluded ones less so.
        score = 0.5 + 0.5 * rng.uniform(0.55, 1.0) * (0.45 + 0.55 * seen)
        dets.append({"image_id": image_id, "category_id": 1, "bbox": box,
                     "score": round(float(score), 4)})

    heights = [p.bbox[3] for p in people if p.annotated] or [0.4 * h]
    for _ in range(int(rng.poisson(cfg.det_false_positives))):
        if object_boxes and rng.random() < 0.6:   # fires on an object that looks person-ish
            x, y, bw, bh = object_boxes[int(rng.integers(len(object_boxes)))]
            bh = max(bh, bw * rng.uniform(1.2, 2.5))
            x, y = x + rng.normal(0, 0.1) * bw, y - rng.uniform(0, 0.3) * bh
        else:                                        # fires on background clutter
            bh = float(np.median(heights)) * rng.uniform(0.3, 1.0)
            bw = bh * rng.uniform(0.3, 0.9)
            x, y = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        box = _clipped(float(x), float(y), float(bw), float(bh), w, h)
        if box is not None:
            dets.append({"image_id": image_id, "category_id": 1, "bbox": box,
                         "score": round(float(rng.uniform(0.05, 0.55)), 4)})
    return dets
