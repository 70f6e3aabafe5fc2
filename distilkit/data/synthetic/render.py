"""Drawing: backgrounds, clutter, occluders and people, into the image and the owner map.

Every shape that can hide a keypoint is drawn twice with the same geometry: in colour into
the image and as an integer code into the owner map (0 background, 1..63 objects,
``64 * (person + 1) + part`` for people). Painting far to near leaves in the owner map the
front-most thing at each pixel, which is what keypoint visibility is read from. Pure
texture (a chest emblem, a mouth, stripes) goes into the image only.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np

from distilkit.data.synthetic.pose import (L_ANKLE, L_ELBOW, L_HIP, L_SHOULDER, L_WRIST,
                                           Body3D, project)

_SHIFT = 4                    # cv2 fixed-point bits: sub-pixel drawing
_ONE = 1 << _SHIFT

# Body parts (per person); owner code = 64 * (person + 1) + part.
(TORSO_L, TORSO_R, HEAD, FACE, NOSE_PART, EYE_L, EYE_R, EAR_L, EAR_R, NECK,
 UPPER_ARM_L, UPPER_ARM_R, FOREARM_L, FOREARM_R, HAND_L, HAND_R,
 THIGH_L, THIGH_R, CALF_L, CALF_R, FOOT_L, FOOT_R) = range(22)
PARTS_PER_PERSON = 64

# The parts on which each keypoint (COCO order) counts as seen. A keypoint whose pixel is
# owned by anything else -- an object, another person, or another part of the same person
# (the far shoulder behind the chest, an eye on the far side of the head) -- is occluded.
KEYPOINT_PARTS: tuple[frozenset[int], ...] = (
    frozenset({NOSE_PART}), frozenset({EYE_L}), frozenset({EYE_R}),
    frozenset({EAR_L}), frozenset({EAR_R}),
    frozenset({TORSO_L, UPPER_ARM_L}), frozenset({TORSO_R, UPPER_ARM_R}),
    frozenset({UPPER_ARM_L, FOREARM_L}), frozenset({UPPER_ARM_R, FOREARM_R}),
    frozenset({FOREARM_L, HAND_L}), frozenset({FOREARM_R, HAND_R}),
    frozenset({TORSO_L, THIGH_L}), frozenset({TORSO_R, THIGH_R}),
    frozenset({THIGH_L, CALF_L}), frozenset({THIGH_R, CALF_R}),
    frozenset({CALF_L, FOOT_L}), frozenset({CALF_R, FOOT_R}),
)


def owner_code(person: int, part: int) -> int:
    return PARTS_PER_PERSON * (person + 1) + part


def _fx(p) -> tuple[int, int]:
    return int(round(p[0] * _ONE)), int(round(p[1] * _ONE))


def _capsule(img, p0, p1, thick: int, color) -> None:
    cv2.line(img, _fx(p0), _fx(p1), color, max(1, thick), cv2.LINE_8, _SHIFT)


def _disc(img, c, r: float, color) -> None:
    cv2.circle(img, _fx(c), max(_ONE, int(round(r * _ONE))), color, -1, cv2.LINE_8, _SHIFT)


def _poly(img, pts: np.ndarray, border: int, color, closed: bool = True) -> None:
    fx = np.round(pts * _ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(img, [fx], color, cv2.LINE_8, _SHIFT)
    if border > 0:
        cv2.polylines(img, [fx], closed, color, border, cv2.LINE_8, _SHIFT)


# A drawing operation: (shape, geometry, colour, owner code or None for texture only).
@dataclass
class Op:
    shape: str            # "capsule" | "disc" | "poly"
    geom: tuple
    color: tuple
    code: int | None


def draw_ops(img: np.ndarray, owner: np.ndarray, ops: list[Op]) -> None:
    for op in ops:
        targets = ((img, op.color), (owner, op.code)) if op.code is not None else ((img, op.color),)
        for canvas, color in targets:
            if op.shape == "capsule":
                _capsule(canvas, op.geom[0], op.geom[1], op.geom[2], color)
            elif op.shape == "disc":
                _disc(canvas, op.geom[0], op.geom[1], color)
            else:
                closed = op.geom[2] if len(op.geom) > 2 else True
                _poly(canvas, op.geom[0], op.geom[1], color, closed)


# ---------------------------------------------------------------- colours
_SKIN = np.array([[200, 220, 255], [150, 185, 235], [110, 150, 205], [70, 105, 160],
                  [45, 70, 115], [95, 140, 190]], dtype=np.float64)   # BGR
_HAIR = np.array([[20, 20, 25], [30, 45, 70], [40, 80, 130], [110, 170, 215],
                  [150, 150, 150], [30, 50, 150]], dtype=np.float64)


def random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    h, sat, val = rng.random(), rng.uniform(0.12, 1.0), rng.uniform(0.16, 1.0)
    r, g, b = colorsys.hsv_to_rgb(h, sat, val)
    return int(b * 255), int(g * 255), int(r * 255)


def _jitter(rng, base: np.ndarray, amount: float = 18) -> tuple[int, int, int]:
    b, g, r = base + rng.normal(0, amount, 3)
    return (int(min(255.0, max(0.0, b))), int(min(255.0, max(0.0, g))),
            int(min(255.0, max(0.0, r))))


def skin_color(rng) -> tuple[int, int, int]:
    return _jitter(rng, _SKIN[rng.integers(len(_SKIN))])


@dataclass(frozen=True)
class Outfit:
    skin: tuple
    hair: tuple
    shirt: tuple
    pants: tuple
    shoes: tuple
    mark: tuple
    long_sleeves: bool
    long_pants: bool
    mark_kind: int        # chest emblem drawn on the front only: 0 disc, 1 band, 2 V-neck


def random_outfit(rng) -> Outfit:
    return Outfit(skin=skin_color(rng), hair=_jitter(rng, _HAIR[rng.integers(len(_HAIR))], 10),
                  shirt=random_color(rng), pants=random_color(rng),
                  shoes=_jitter(rng, np.array([40, 40, 45]), 25), mark=random_color(rng),
                  long_sleeves=bool(rng.random() < 0.5), long_pants=bool(rng.random() < 0.7),
                  mark_kind=int(rng.integers(3)))


def _shade(color, t: float) -> tuple:
    # Nearer parts a little brighter: separates overlapping same-colour limbs like light does.
    f = 0.78 + 0.35 * t
    return tuple(min(255, int(c * f)) for c in color)


# ---------------------------------------------------------------- people
def person_ops(body: Body3D, outfit: Outfit, scale: float, offset: tuple[float, float],
               person: int) -> tuple[list[Op], np.ndarray]:
    """Draw operations for one person, far to near, and the projected keypoints (17, 2)."""
    pr = body.props
    kp = project(body.joints, scale, offset)
    z = body.joints[:, 2]
    z_lo, z_span = float(z.min()), float(np.ptp(z)) + 1e-6
    t = lambda depth: (depth - z_lo) / z_span  # noqa: E731
    thick = lambda frac: max(1, int(round(frac * scale * pr.build)))  # noqa: E731
    code = lambda part: owner_code(person, part)  # noqa: E731
    groups: list[tuple[float, list[Op]]] = []

    # Torso: two halves so that, turned sideways, the near half hides the far shoulder/hip.
    sh_mid, hip_mid = (kp[L_SHOULDER] + kp[L_SHOULDER + 1]) / 2, (kp[L_HIP] + kp[L_HIP + 1]) / 2
    halves = []
    for side in range(2):
        # The rounded border (body depth) runs along the outer edges only: along the
        # midline it would reach over the other side's hip in a frontal view.
        pts = np.stack([sh_mid, kp[L_SHOULDER + side], kp[L_HIP + side], hip_mid])
        d = float((z[L_SHOULDER + side] + z[L_HIP + side]) / 2)
        halves.append((d, Op("poly", (pts, thick(0.07), False), _shade(outfit.shirt, t(d)),
                             code(TORSO_L + side))))
    halves.sort(key=lambda h: h[0])
    torso_ops = [h[1] for h in halves]
    fwd = body.torso_axes[:, 2]
    if fwd[2] > 0.2:   # chest emblem: front only, left/right symmetric
        c = hip_mid + 0.55 * (sh_mid - hip_mid)
        r = max(1.0, 0.035 * scale * fwd[2])
        if outfit.mark_kind == 0:
            torso_ops.append(Op("disc", (c, r), outfit.mark, None))
        elif outfit.mark_kind == 1:
            w = (kp[L_SHOULDER] - kp[L_SHOULDER + 1]) * 0.35
            torso_ops.append(Op("capsule", (c - w, c + w, max(1, int(r))), outfit.mark, None))
        else:
            tip = sh_mid + 0.25 * (hip_mid - sh_mid)
            w = (kp[L_SHOULDER] - kp[L_SHOULDER + 1]) * 0.22
            torso_ops.append(Op("poly", (np.stack([sh_mid + w, tip, sh_mid - w]), 0),
                                outfit.skin, None))
    groups.append((float(z[[L_SHOULDER, L_SHOULDER + 1, L_HIP, L_HIP + 1]].mean()), torso_ops))

    # Neck and head.
    hc = project(body.head_center[None], scale, offset)[0]
    groups.append((float((z[L_SHOULDER] + z[L_SHOULDER + 1]) / 2 + body.head_center[2]) / 2,
                   [Op("capsule", (sh_mid, sh_mid + 0.8 * (hc - sh_mid), thick(0.05)),
                       outfit.skin, code(NECK))]))
    groups.append((float(body.head_center[2]) + 0.5 * pr.head_r,
                   _head_ops(body, outfit, kp, hc, scale, person)))

    # Limbs, hands and feet.
    limb_colors = (outfit.shirt, outfit.skin if not outfit.long_sleeves else outfit.shirt,
                   outfit.pants, outfit.pants if outfit.long_pants else outfit.skin)
    for side in range(2):
        chains = ((L_SHOULDER, L_ELBOW, UPPER_ARM_L, limb_colors[0], 0.05),
                  (L_ELBOW, L_WRIST, FOREARM_L, limb_colors[1], 0.042),
                  (L_HIP, L_HIP + 2, THIGH_L, limb_colors[2], 0.075),
                  (L_HIP + 2, L_ANKLE, CALF_L, limb_colors[3], 0.058))
        for a, b, part, color, frac in chains:
            a, b, part = a + side, b + side, part + side
            d = float(z[a] + z[b]) / 2 + 0.01
            groups.append((d, [Op("capsule", (kp[a], kp[b], thick(frac)),
                                  _shade(color, t(d)), code(part))]))
        w, e = L_WRIST + side, L_ELBOW + side
        # The hand sits just past the wrist, close enough that the disc still covers the wrist.
        hand = kp[w] + (kp[w] - kp[e]) * (0.015 / max(pr.forearm, 1e-3))
        groups.append((float(z[w]) + 0.02, [Op("disc", (hand, 0.028 * scale * pr.build),
                                               _shade(outfit.skin, t(z[w])), code(HAND_L + side))]))
        a = L_ANKLE + side
        toe3 = body.joints[a] + 0.07 * body.foot_dirs[side]
        toe = project(toe3[None], scale, offset)[0]
        groups.append((float(z[a] + toe3[2]) / 2 + 0.015,
                       [Op("capsule", (kp[a], toe, thick(0.035)), outfit.shoes,
                           code(FOOT_L + side))]))

    groups.sort(key=lambda g: g[0])
    return [op for _, ops in groups for op in ops], kp


def _head_ops(body: Body3D, outfit: Outfit, kp: np.ndarray, hc: np.ndarray, scale: float,
              person: int) -> list[Op]:
    axes, r = body.head_axes, body.props.head_r * scale
    ops = [Op("disc", (hc, r), outfit.hair, owner_code(person, HEAD))]
    face_z = axes[2, 2]
    down = np.array([-axes[0, 1], axes[1, 1]])    # the head's down direction in the image
    if face_z > -0.25:
        # The face disc slides towards where the face points; hair stays at the top/back.
        toward = np.array([axes[0, 2], -axes[1, 2]])
        fr = r * (0.82 - 0.22 * min(1.0, float(np.hypot(*toward))))
        center = hc + (r - fr) * 0.95 * toward + 0.12 * r * down
        ops.append(Op("disc", (center, fr), outfit.skin, owner_code(person, FACE)))
    feature_r = max(1.0, 0.18 * r)
    for side in range(2):
        normal = axes @ np.array([1.0 if side == 0 else -1.0, 0.0, -0.1])
        if normal[2] > -0.55:   # an ear stays in sight until the head turns ~35 deg away
            ops.append(Op("disc", (kp[3 + side], max(1.0, 0.22 * r)), _shade(outfit.skin, 0.3),
                          owner_code(person, EAR_L + side)))
    if face_z > -0.05:
        ops.append(Op("disc", (kp[0], feature_r), _shade(outfit.skin, 0.1),
                      owner_code(person, NOSE_PART)))
        if face_z > 0.3:
            mouth = kp[0] + 0.45 * r * down
            half = 0.25 * r * np.array([axes[0, 0], -axes[1, 0]])
            ops.append(Op("capsule", (mouth - half, mouth + half, 1), (60, 60, 150), None))
    eyes = []
    for side in range(2):
        normal = axes @ np.array([0.38 if side == 0 else -0.38, 0.18, 0.9])
        if normal[2] > 0.1:
            eyes.append((normal[2], Op("disc", (kp[1 + side], feature_r), (30, 25, 25),
                                       owner_code(person, EYE_L + side))))
    ops += [op for _, op in sorted(eyes, key=lambda e: e[0])]
    return ops


# ---------------------------------------------------------------- background and objects
def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colour gradient plus low-frequency blotches."""
    # Built at 1/8 resolution and upsampled: it is smooth anyway, and 60x cheaper.
    sh, sw = max(2, h // 8), max(2, w // 8)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = (np.arange(sw, dtype=np.float32)[None, :] * math.cos(ang)
            + np.arange(sh, dtype=np.float32)[:, None] * math.sin(ang))
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    c0 = np.array(random_color(rng), np.float32)
    c1 = np.array(random_color(rng), np.float32)
    small = c0 + ramp[..., None] * (c1 - c0)
    blotch = rng.normal(0, rng.uniform(10, 45), (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3))
    small += cv2.resize(blotch.astype(np.float32), (sw, sh), interpolation=cv2.INTER_CUBIC)
    small = np.clip(small, 0, 255).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _person_like_color(rng) -> tuple:
    return skin_color(rng) if rng.random() < 0.4 else random_color(rng)


def clutter(rng: np.random.Generator, img: np.ndarray, n_shapes: int, n_limbs: int,
            scale: float) -> None:
    """Background shapes in person-like colours (texture only: owner stays background)."""
    h, w = img.shape[:2]
    for _ in range(n_shapes):
        kind = rng.integers(5)
        color = _person_like_color(rng) if rng.random() < 0.5 else random_color(rng)
        c = (rng.uniform(0, w), rng.uniform(0, h))
        s = scale * rng.uniform(0.05, 0.4)
        if kind == 0:
            _disc(img, c, s / 2, color)
        elif kind == 1:
            p1 = (c[0] + rng.normal(0, s), c[1] + rng.normal(0, s))
            _capsule(img, c, p1, int(rng.integers(1, 4)), color)
        elif kind == 2:
            pts = np.array(c) + rng.normal(0, s / 2, (int(rng.integers(3, 6)), 2))
            _poly(img, cv2.convexHull(pts.astype(np.float32))[:, 0].astype(np.float64), 0, color)
        elif kind == 3:
            box = cv2.boxPoints((c, (s, s * rng.uniform(0.2, 1.5)), rng.uniform(0, 180)))
            _poly(img, box.astype(np.float64), 0, color)
        else:   # stripes: a patch of parallel lines
            d = np.array([math.cos(a := rng.uniform(0, math.pi)), math.sin(a)])
            n = np.array([-d[1], d[0]])
            for k in range(int(rng.integers(3, 8))):
                o = np.array(c) + n * k * rng.uniform(3, 7)
                _capsule(img, o - d * s, o + d * s, 1, color)
    for _ in range(n_limbs):   # detached limb-like capsules: the hard negatives
        p0 = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        length = scale * rng.uniform(0.12, 0.25)
        a = rng.uniform(0, 2 * math.pi)
        p1 = p0 + length * np.array([math.cos(a), math.sin(a)])
        _capsule(img, p0, p1, max(1, int(scale * rng.uniform(0.03, 0.07))), _person_like_color(rng))
        if rng.random() < 0.5:
            b = a + rng.uniform(-2.5, 2.5)
            _capsule(img, p1, p1 + length * np.array([math.cos(b), math.sin(b)]),
                     max(1, int(scale * rng.uniform(0.03, 0.06))), _person_like_color(rng))


def occluder_ops(rng: np.random.Generator, center: np.ndarray, size: float, code: int) -> list[Op]:
    """An object in front of something: box, pole, blob or slab, optionally striped."""
    color = _person_like_color(rng) if rng.random() < 0.3 else random_color(rng)
    kind = rng.integers(4)
    if kind == 0 or kind == 3:
        dims = (size, size * rng.uniform(0.4, 1.0)) if kind == 0 else (size * 1.6, size * 0.35)
        pts = cv2.boxPoints((tuple(center), dims, rng.uniform(0, 180))).astype(np.float64)
    elif kind == 1:   # a pole
        a = rng.uniform(-0.4, 0.4) + (0 if rng.random() < 0.7 else math.pi / 2)
        d = np.array([math.sin(a), math.cos(a)]) * size * 2.0
        return [Op("capsule", (center - d, center + d, max(2, int(size * rng.uniform(0.12, 0.3)))),
                   color, code)]
    else:
        pts = center + rng.normal(0, size / 2.5, (int(rng.integers(4, 8)), 2))
        pts = cv2.convexHull(pts.astype(np.float32))[:, 0].astype(np.float64)
    ops = [Op("poly", (pts, 0), color, code)]
    if len(pts) == 4 and rng.random() < 0.5:   # stripes between two opposite edges: stays inside
        dark = tuple(int(c * 0.6) for c in color)
        for f in np.linspace(0.15, 0.85, int(rng.integers(2, 6))):
            ops.append(Op("capsule", (pts[0] + f * (pts[1] - pts[0]), pts[3] + f * (pts[2] - pts[3]), 1),
                          dark, None))
    return ops
