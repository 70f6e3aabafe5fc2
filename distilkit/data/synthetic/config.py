"""What the synthetic set contains: one frozen dataclass and its two presets."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

# Bump whenever a change to the generator changes its output: cached sets carry a hash of
# (config, version) and are regenerated when it no longer matches.
GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class SynthConfig:
    num_train_images: int = 8000
    num_val_images: int = 500
    # Width and height are drawn independently from this range (pixels).
    image_size: tuple[int, int] = (160, 256)
    people_per_image: tuple[int, int] = (1, 3)
    # Standing height of a person in pixels (log-uniform); posed people are often shorter
    # in the image (sitting, crouching, foreshortened).
    person_height: tuple[int, int] = (60, 180)
    # People tilted (15-60 deg), lying or upside down; the rest stand within ~10 deg of upright.
    tilt_prob: float = 0.32
    truncation_prob: float = 0.15        # a person placed across the image border
    overlap_prob: float = 0.5            # a further person placed next to an earlier one
    clutter_shapes: tuple[int, int] = (8, 20)    # background shapes and lines
    distractor_limbs: tuple[int, int] = (1, 5)   # skin/cloth-coloured capsules in the clutter
    occluders: tuple[int, int] = (0, 2)          # objects drawn over people
    min_area: int = 60                   # fewer visible pixels: the person is not annotated
    det_center_jitter: float = 0.04      # detection box centre shift, fraction of box size
    det_size_jitter: float = 0.06        # log-normal std of the detection box size
    det_miss_rate: float = 0.05          # a GT person gets no detection
    det_false_positives: float = 0.5     # mean false-positive boxes per val image
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        for name in ("image_size", "people_per_image", "person_height", "clutter_shapes",
                     "distractor_limbs", "occluders"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"SynthConfig.{name} must be (low, high) with 0 <= low <= high")
        if self.people_per_image[0] < 1 or self.image_size[0] < 32 or self.person_height[0] < 16:
            raise ValueError("SynthConfig needs >= 1 person per image, images >= 32 px "
                             "and people >= 16 px tall")
        if self.num_train_images < 1 or self.num_val_images < 1:
            raise ValueError("SynthConfig needs at least one train and one val image")
        for name in ("tilt_prob", "truncation_prob", "overlap_prob", "det_miss_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SynthConfig.{name} must lie in [0, 1]")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("SynthConfig.jpeg_quality must lie in [1, 100]")


SYNTH_PRESETS: dict[str, SynthConfig] = {
    "smoke": SynthConfig(num_train_images=48, num_val_images=24),
    # Calibrated for the cpu profile's few epochs (issue 6): fewer people per image, less
    # clutter, rare occluders and truncation, and most people upright (COCO's people mostly
    # are; tilt_prob 0.32 -> 0.08 took a SimpleBaseline teacher from 4.93 to 4.15 px, 5.6 to
    # 10.5 AP). The dataclass defaults (the harder scenes the first reference run used)
    # remain available as SynthConfig().
    "cpu": SynthConfig(people_per_image=(1, 2), clutter_shapes=(2, 6), distractor_limbs=(0, 1),
                       occluders=(0, 1), truncation_prob=0.05, overlap_prob=0.1, tilt_prob=0.08),
    # The paper profile's dress rehearsal without COCO (experiments.rehearse): a few images
    # large enough that a 256x192 crop is not an upsampled thumbnail.
    "rehearsal": SynthConfig(num_train_images=12, num_val_images=16, image_size=(256, 384),
                             person_height=(120, 240)),
}


def resolve_config(config: SynthConfig | str) -> SynthConfig:
    if isinstance(config, SynthConfig):
        return config
    if config not in SYNTH_PRESETS:
        raise ValueError(f"unknown synthetic preset {config!r}; "
                         f"choose one of {sorted(SYNTH_PRESETS)}")
    return SYNTH_PRESETS[config]


def config_hash(config: SynthConfig, seed: int) -> str:
    """Identifies the exact bytes a (config, seed, generator version) produces."""
    payload = json.dumps({"config": asdict(config), "seed": int(seed),
                          "version": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
