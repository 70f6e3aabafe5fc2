"""The embedded synthetic COCO-17 person dataset (docs/ARCHITECTURE.md, data flow): full
cluttered scenes with articulated, occluded, truncated people, honest visibility flags and a
simulated detector, written in the real COCO on-disk layout.

    root = ensure_synthetic("cpu")          # cached under $DISTILKIT_DATA or ~/.cache/distilkit
    generate_synthetic("data/synth", "smoke", seed=1)
"""
from distilkit.data.synthetic.cli import add_cli, dataset_stats
from distilkit.data.synthetic.config import (GENERATOR_VERSION, SYNTH_PRESETS, SynthConfig,
                                             config_hash)
from distilkit.data.synthetic.render import KEYPOINT_PARTS, PARTS_PER_PERSON, owner_code
from distilkit.data.synthetic.scene import PersonLabel, Scene, render_scene
from distilkit.data.synthetic.writer import (DET_FILE, ensure_synthetic, generate_synthetic,
                                             make_scene)

__all__ = ["SynthConfig", "SYNTH_PRESETS", "GENERATOR_VERSION", "config_hash",
           "generate_synthetic", "ensure_synthetic", "dataset_stats", "add_cli",
           "make_scene", "render_scene", "Scene", "PersonLabel", "KEYPOINT_PARTS",
           "PARTS_PER_PERSON", "owner_code", "DET_FILE"]
