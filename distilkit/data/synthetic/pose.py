"""Articulated COCO-17 people: a 3-D skeleton with joint limits, posed, turned and projected.

Body frame: x = the person's left, y = up, z = forward. Camera frame: x = image right,
y = image up, z = towards the viewer (orthographic projection). Both frames are
right-handed and a person is placed by a rotation only, so every sample is a rigid pose of
a real body: a front-facing person's left side lands on the image right, a back-facing
one's on the image left. Together with the face and chest drawn on the front only, that
geometry is the left/right cue; a mirrored image with swapped labels is again a valid
(mirror-built) person, so flip augmentation stays consistent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Keypoint indices (COCO order, see distilkit.keypoints.KEYPOINT_NAMES).
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16

# Face points on the head sphere, in head frame, units of the head radius.
_NOSE_LOCAL = np.array([0.0, -0.15, 1.05])
_EYE_LOCAL = np.array([0.38, 0.18, 0.90])
_EAR_LOCAL = np.array([0.98, 0.02, -0.08])


def rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def flex(deg: float) -> np.ndarray:
    """Swing a hanging segment forward (towards +z) by ``deg``."""
    return rot_x(-deg)


@dataclass(frozen=True)
class Proportions:
    """Segment lengths and widths in units of standing height."""

    head_r: float
    neck: float
    shoulder_half: float
    hip_half: float
    torso: float
    upper_arm: float
    forearm: float
    thigh: float
    calf: float
    build: float          # multiplies every limb thickness


def sample_proportions(rng: np.random.Generator) -> Proportions:
    j = rng.uniform(0.92, 1.08, size=9)
    return Proportions(head_r=0.062 * j[0], neck=0.10 * j[1], shoulder_half=0.105 * j[2],
                       hip_half=0.06 * j[3], torso=0.29 * j[4], upper_arm=0.165 * j[5],
                       forearm=0.145 * j[6], thigh=0.235 * j[7], calf=0.235 * j[8],
                       build=float(rng.uniform(0.8, 1.25)))


@dataclass(frozen=True)
class PoseFamily:
    """Joint-angle ranges in degrees (each side drawn independently unless mirrored)."""

    name: str
    weight: float
    lean_fwd: tuple[float, float] = (-8, 12)
    lean_side: tuple[float, float] = (-8, 8)
    twist: tuple[float, float] = (-15, 15)
    shoulder_flex: tuple[float, float] = (-25, 45)
    shoulder_abd: tuple[float, float] = (0, 35)
    humeral_rot: tuple[float, float] = (-30, 60)
    elbow: tuple[float, float] = (0, 70)
    hip_flex: tuple[float, float] = (-10, 20)
    hip_abd: tuple[float, float] = (-5, 15)
    knee: tuple[float, float] = (0, 25)
    stride: tuple[float, float] = (0, 0)   # opposite hip/shoulder swing (walking, running)
    mirror_prob: float = 0.3               # both sides share one draw (plus noise)
    one_leg_prob: float = 0.0              # swap one leg for a raised/kicking one


POSE_FAMILIES: tuple[PoseFamily, ...] = (
    PoseFamily("stand", 0.20),
    PoseFamily("walk", 0.14, lean_fwd=(-5, 20), shoulder_flex=(-10, 10), elbow=(10, 100),
               hip_flex=(-5, 5), knee=(5, 70), hip_abd=(0, 8), stride=(15, 45), mirror_prob=0),
    PoseFamily("arms_up", 0.10, shoulder_flex=(60, 175), shoulder_abd=(20, 170),
               humeral_rot=(-45, 90), elbow=(0, 110), mirror_prob=0.5),
    PoseFamily("gesture", 0.18, lean_fwd=(-20, 40), lean_side=(-25, 25), twist=(-35, 35),
               shoulder_flex=(-40, 175), shoulder_abd=(-30, 175), humeral_rot=(-60, 90),
               elbow=(0, 150), hip_flex=(-25, 100), hip_abd=(-15, 45), knee=(0, 140),
               mirror_prob=0.1, one_leg_prob=0.2),
    PoseFamily("sit", 0.11, lean_fwd=(-15, 25), elbow=(20, 120), hip_flex=(70, 110),
               hip_abd=(0, 25), knee=(60, 120), mirror_prob=0.6),
    PoseFamily("crouch", 0.09, lean_fwd=(20, 55), shoulder_flex=(0, 80), elbow=(20, 130),
               hip_flex=(95, 135), hip_abd=(5, 35), knee=(100, 150), mirror_prob=0.5),
    PoseFamily("bend", 0.07, lean_fwd=(40, 90), shoulder_flex=(30, 110), elbow=(0, 90),
               hip_flex=(-5, 15)),
    PoseFamily("cross_arms", 0.06, shoulder_flex=(15, 60), shoulder_abd=(-30, -5),
               humeral_rot=(40, 90), elbow=(70, 140), mirror_prob=0.7),
    PoseFamily("kick", 0.05, lean_fwd=(-25, 20), shoulder_flex=(-30, 120),
               shoulder_abd=(0, 120), elbow=(0, 120), one_leg_prob=1.0),
)
_FAMILY_P = np.array([f.weight for f in POSE_FAMILIES]) / sum(f.weight for f in POSE_FAMILIES)


@dataclass(frozen=True)
class Body3D:
    """A posed person in the camera frame, units of standing height, pelvis at the origin."""

    joints: np.ndarray          # (17, 3)
    head_center: np.ndarray     # (3,)
    head_axes: np.ndarray       # (3, 3), columns: head left, up, forward
    torso_axes: np.ndarray      # (3, 3), columns: chest left, up, forward
    foot_dirs: np.ndarray       # (2, 3) unit toe directions, left then right
    props: Proportions
    family: str

    @property
    def facing(self) -> str:
        """front / back / profile, from where the chest points."""
        z = self.torso_axes[2, 2]
        return "front" if z > 0.5 else "back" if z < -0.5 else "profile"


def _draw(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _limb_angles(rng: np.random.Generator, fam: PoseFamily) -> dict[str, list[float]]:
    keys = ("shoulder_flex", "shoulder_abd", "humeral_rot", "elbow",
            "hip_flex", "hip_abd", "knee")
    angles = {k: [_draw(rng, getattr(fam, k)), _draw(rng, getattr(fam, k))] for k in keys}
    if rng.random() < fam.mirror_prob:
        for k in keys:
            angles[k][1] = angles[k][0] + float(rng.normal(0, 6))
    if fam.stride[1] > 0:
        s = _draw(rng, fam.stride) * (1 if rng.random() < 0.5 else -1)
        angles["hip_flex"] = [angles["hip_flex"][0] + s, angles["hip_flex"][1] - s]
        # Arms swing against the legs.
        angles["shoulder_flex"] = [angles["shoulder_flex"][0] - 0.7 * s,
                                   angles["shoulder_flex"][1] + 0.7 * s]
    if rng.random() < fam.one_leg_prob:
        side = int(rng.integers(2))
        angles["hip_flex"][side] = _draw(rng, (30, 110))
        angles["knee"][side] = _draw(rng, (0, 110))
    # Joint limits: however the ranges combine, stay within what a body can do.
    for k, (lo, hi) in {"shoulder_flex": (-50, 180), "shoulder_abd": (-40, 180),
                        "elbow": (0, 155), "hip_flex": (-35, 135), "hip_abd": (-20, 60),
                        "knee": (0, 155), "humeral_rot": (-70, 95)}.items():
        angles[k] = [min(max(a, lo), hi) for a in angles[k]]
    return angles


def _global_rotation(rng: np.random.Generator, tilt_prob: float) -> np.ndarray:
    u = rng.random()
    yaw = (rng.normal(0, 25) if u < 0.35 else 180 + rng.normal(0, 25) if u < 0.6
           else rng.uniform(0, 360))
    # Not upright: tilted 20/32, lying 9/32, upside down 3/32 of tilt_prob.
    u = (rng.random() - (1.0 - tilt_prob)) / max(tilt_prob, 1e-12)
    if u < 0.0:
        roll = rng.normal(0, 10)
    elif u < 20 / 32:
        roll = rng.uniform(15, 60) * (1 if rng.random() < 0.5 else -1)
    elif u < 29 / 32:   # lying
        roll = (90 + rng.normal(0, 20)) * (1 if rng.random() < 0.5 else -1)
    else:            # upside down (handstand, fall)
        roll = 180 + rng.normal(0, 30)
    pitch = float(np.clip(rng.normal(0, 10), -25, 25))
    return rot_z(float(roll)) @ rot_x(pitch) @ rot_y(float(yaw))


def sample_body(rng: np.random.Generator, tilt_prob: float = 0.32) -> Body3D:
    """One posed person; ``tilt_prob`` of them are tilted, lying or upside down."""
    props = sample_proportions(rng)
    fam = POSE_FAMILIES[int(rng.choice(len(POSE_FAMILIES), p=_FAMILY_P))]
    ang = _limb_angles(rng, fam)
    g = _global_rotation(rng, tilt_prob)
    down, fwd = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])

    torso_r = (rot_y(_draw(rng, fam.twist)) @ rot_z(_draw(rng, fam.lean_side))
               @ flex(-_draw(rng, fam.lean_fwd)))   # lean forward = top goes to +z
    shoulder_mid = torso_r @ np.array([0.0, props.torso, 0.0])
    head_r = (torso_r @ rot_y(float(np.clip(rng.normal(0, 25), -65, 65)))
              @ rot_x(-float(np.clip(rng.normal(0, 12), -30, 30)))
              @ rot_z(float(np.clip(rng.normal(0, 10), -25, 25))))
    head_center = shoulder_mid + head_r @ np.array([0.0, props.neck, 0.01])

    joints = np.zeros((17, 3))
    hr = props.head_r
    joints[NOSE] = head_center + head_r @ (_NOSE_LOCAL * hr)
    for side, (eye, ear) in enumerate(((L_EYE, L_EAR), (R_EYE, R_EAR))):
        mirror = np.array([1.0 if side == 0 else -1.0, 1.0, 1.0])
        joints[eye] = head_center + head_r @ (_EYE_LOCAL * mirror * hr)
        joints[ear] = head_center + head_r @ (_EAR_LOCAL * mirror * hr)

    foot_dirs = np.zeros((2, 3))
    for side in range(2):
        s = 1.0 if side == 0 else -1.0    # +x is the person's left
        sh = shoulder_mid + torso_r @ np.array([s * props.shoulder_half, 0.0, 0.0])
        upper = (torso_r @ rot_z(s * ang["shoulder_abd"][side]) @ flex(ang["shoulder_flex"][side])
                 @ rot_y(-s * ang["humeral_rot"][side]))
        elbow = sh + upper @ (down * props.upper_arm)
        e = math.radians(ang["elbow"][side])   # the forearm folds forward, towards the biceps
        wrist = elbow + upper @ (np.array([0.0, -math.cos(e), math.sin(e)]) * props.forearm)
        joints[L_SHOULDER + side], joints[L_ELBOW + side], joints[L_WRIST + side] = sh, elbow, wrist

        hip = np.array([s * props.hip_half, 0.0, 0.0])
        thigh = rot_z(s * ang["hip_abd"][side]) @ flex(ang["hip_flex"][side])
        knee = hip + thigh @ (down * props.thigh)
        k = math.radians(ang["knee"][side])    # the calf folds backwards
        calf = thigh @ flex(-ang["knee"][side])
        ankle = knee + thigh @ (np.array([0.0, -math.cos(k), -math.sin(k)]) * props.calf)
        joints[L_HIP + side], joints[L_KNEE + side], joints[L_ANKLE + side] = hip, knee, ankle
        foot_dirs[side] = g @ (calf @ rot_y(s * 12.0) @ fwd)

    return Body3D(joints=joints @ g.T, head_center=g @ head_center, head_axes=g @ head_r,
                  torso_axes=g @ torso_r, foot_dirs=foot_dirs, props=props, family=fam.name)


def project(points: np.ndarray, scale: float, offset: tuple[float, float]) -> np.ndarray:
    """Camera-frame points (N, 3) -> image pixels (N, 2); orthographic, y pointing down."""
    out = np.empty((len(points), 2))
    out[:, 0] = offset[0] + scale * points[:, 0]
    out[:, 1] = offset[1] - scale * points[:, 1]
    return out
