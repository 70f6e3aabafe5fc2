"""One synthetic scene: people and objects placed, painted in depth order, and labelled.

Visibility is read back from the owner map after painting, never guessed: a keypoint is
v=2 when the front-most thing at its pixel is one of the parts it sits on (its person's),
v=1 when something else is there (an object, another person, a nearer part of the same
body, the back of the head for a face point), and v=0 with x=y=0 outside the image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from distilkit.data.synthetic.config import SynthConfig
from distilkit.data.synthetic.pose import Body3D, project, sample_body
from distilkit.data.synthetic.render import (KEYPOINT_PARTS, PARTS_PER_PERSON, Op, background,
                                             clutter, draw_ops, occluder_ops, person_ops,
                                             random_outfit)

_PART_MASKS = np.array([sum(1 << p for p in parts) for parts in KEYPOINT_PARTS], dtype=np.int64)


@dataclass
class PersonLabel:
    keypoints: np.ndarray        # (17, 3) x, y, v; x = y = 0 where v = 0
    bbox: list[float]            # [x, y, w, h], clipped to the image
    area: int                    # visible pixels
    annotated: bool              # False: (almost) out of frame or hidden, left unlabelled
    facing: str                  # front / back / profile
    family: str                  # pose family it was sampled from

    @property
    def num_keypoints(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())


@dataclass
class Scene:
    image: np.ndarray            # (H, W, 3) uint8, BGR
    owner: np.ndarray            # (H, W) uint16: 0 background, 1..63 object, 64*(p+1)+part person p
    people: list[PersonLabel]    # index p is owner person p
    object_boxes: list[list[float]] = field(default_factory=list)   # [x, y, w, h] per occluder

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]


def _rint(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
    return int(rng.integers(lo_hi[0], lo_hi[1] + 1))


def _extent(body: Body3D) -> tuple[np.ndarray, np.ndarray]:
    """Unit-scale image-space box (min xy, max xy) of the keypoints plus a body margin."""
    pts = project(np.vstack([body.joints, body.head_center[None]]), 1.0, (0.0, 0.0))
    m = body.props.head_r * 1.2
    return pts.min(0) - m, pts.max(0) + m


def _place(rng, cfg: SynthConfig, lo: np.ndarray, hi: np.ndarray, height: float, w: int, h: int,
           previous: list[np.ndarray]) -> tuple[float, float]:
    size = (hi - lo) * height
    img = np.array([w, h], dtype=np.float64)
    if previous and rng.random() < cfg.overlap_prob:
        anchor = previous[int(rng.integers(len(previous)))]
        center = anchor[:2] + rng.uniform(-0.7, 0.7, 2) * np.array([anchor[2], 0.5 * anchor[3]])
        center = np.clip(center, 0, img)
    elif rng.random() < cfg.truncation_prob:
        center = rng.uniform(0, 1, 2) * img
        axis = int(rng.integers(2))
        center[axis] = (0 if rng.random() < 0.5 else img[axis]) + rng.uniform(-0.3, 0.3) * size[axis]
    else:
        slack = img - size   # negative when the person is larger than the image
        center = size / 2 + rng.uniform(0, 1, 2) * slack
    previous.append(np.array([center[0], center[1], size[0], size[1]]))
    box_center = (lo + hi) / 2 * height
    return float(center[0] - box_center[0]), float(center[1] - box_center[1])


def render_scene(rng: np.random.Generator, cfg: SynthConfig) -> Scene:
    w, h = _rint(rng, cfg.image_size), _rint(rng, cfg.image_size)
    n_people = _rint(rng, cfg.people_per_image)
    lo_h, hi_h = math.log(cfg.person_height[0]), math.log(
        max(cfg.person_height[0], min(cfg.person_height[1], 1.1 * max(w, h))))
    heights = [math.exp(rng.uniform(lo_h, hi_h)) for _ in range(n_people)]

    img = background(rng, h, w)
    clutter(rng, img, _rint(rng, cfg.clutter_shapes), _rint(rng, cfg.distractor_limbs),
            float(np.median(heights)))
    owner = np.zeros((h, w), np.uint16)

    # (depth, ops): people at integer ranks, objects in front of the person they cover.
    layers: list[tuple[float, list[Op]]] = []
    bodies, keypoints, placed = [], [], []
    ranks = rng.permutation(n_people)
    for p in range(n_people):
        body = sample_body(rng, cfg.tilt_prob)
        lo, hi = _extent(body)
        offset = _place(rng, cfg, lo, hi, heights[p], w, h, placed)
        ops, kp = person_ops(body, random_outfit(rng), heights[p], offset, p)
        layers.append((float(ranks[p]), ops))
        bodies.append(body)
        keypoints.append(kp)

    object_boxes = []
    for o in range(_rint(rng, cfg.occluders)):
        target = int(rng.integers(n_people))
        size = heights[target] * rng.uniform(0.15, 0.45)
        center = keypoints[target][int(rng.integers(17))] + rng.normal(0, 0.1 * heights[target], 2)
        ops = occluder_ops(rng, center, size, code=1 + o % 63)
        depth = n_people + 1.0 if rng.random() < 0.5 else float(ranks[target]) + rng.uniform(0.1, 0.9)
        layers.append((depth, ops))
        pts = np.vstack([op.geom[0] if op.shape == "poly" else np.stack(op.geom[:2])
                         for op in ops[:1]])
        object_boxes.append(_clip_box(pts.min(0), pts.max(0), w, h))

    for _, ops in sorted(layers, key=lambda layer: layer[0]):
        draw_ops(img, owner, ops)

    people = [_label(p, keypoints[p], bodies[p], owner, cfg) for p in range(n_people)]
    return Scene(image=_finish(rng, img), owner=owner, people=people,
                 object_boxes=[b for b in object_boxes if b[2] > 1 and b[3] > 1])


def _clip_box(lo, hi, w: int, h: int) -> list[float]:
    x0, y0 = max(0.0, float(lo[0])), max(0.0, float(lo[1]))
    x1, y1 = min(float(w), float(hi[0]) + 1), min(float(h), float(hi[1]) + 1)
    return [x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)]


def _label(p: int, kp: np.ndarray, body: Body3D, owner: np.ndarray, cfg: SynthConfig) -> PersonLabel:
    h, w = owner.shape
    xy = np.round(kp, 2)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
    ix = np.clip(np.rint(xy[:, 0]), 0, w - 1).astype(np.intp)
    iy = np.clip(np.rint(xy[:, 1]), 0, h - 1).astype(np.intp)
    code = owner[iy, ix].astype(np.int64)
    mine = (code // PARTS_PER_PERSON) == p + 1
    on_part = ((_PART_MASKS >> (code % PARTS_PER_PERSON)) & 1).astype(bool)
    v = np.where(inside, np.where(mine & on_part, 2, 1), 0)
    keypoints = np.zeros((17, 3))
    keypoints[inside, :2] = xy[inside]
    keypoints[:, 2] = v

    ys, xs = np.nonzero((owner // PARTS_PER_PERSON) == p + 1)
    area = int(len(xs))
    if area:
        lo = np.array([xs.min(), ys.min()], dtype=np.float64)
        hi = np.array([xs.max(), ys.max()], dtype=np.float64)
        if inside.any():
            lo = np.minimum(lo, np.floor(xy[inside].min(0)))
            hi = np.maximum(hi, np.floor(xy[inside].max(0)))
        bbox = _clip_box(lo, hi, w, h)
    else:
        bbox = [0.0, 0.0, 0.0, 0.0]
    return PersonLabel(keypoints=keypoints, bbox=bbox, area=area,
                       annotated=area >= cfg.min_area, facing=body.facing, family=body.family)


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Camera-ish degradations: slight blur, brightness/contrast, sensor noise."""
    if rng.random() < 0.4:
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.4, 0.9))
    gain, bias = rng.uniform(0.8, 1.15), rng.uniform(-20, 20)
    amp = int(rng.integers(2, 9))
    noise = rng.integers(0, 2 * amp + 1, img.shape, dtype=np.uint8)
    # Saturating uint8 arithmetic: gain and bias (minus the noise mean), then the noise.
    return cv2.add(cv2.addWeighted(img, gain, img, 0.0, bias - amp), noise)
