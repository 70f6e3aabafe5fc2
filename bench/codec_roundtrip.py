"""Encode -> decode round-trip error of HeatmapCodec (sigma 2), argmax+shift vs DARK.

Run: .venv/bin/python bench/codec_roundtrip.py [--n 2000] [--seed 0]

Keypoints are drawn uniformly at sub-pixel positions over the whole input
[0, W-1] x [0, H-1] ("all"), and the error is also reported for the "interior" subset
whose heatmap position is >= 3 px from every border (where neither the grid edge nor
DARK's 5-point stencil interferes). Errors are Euclidean, in input pixels.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    from distilkit.codecs import HeatmapCodec
except ModuleNotFoundError:      # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from distilkit.codecs import HeatmapCodec

SETTINGS = (((256, 192), (64, 48)), ((64, 48), (16, 12)))


def roundtrip_errors(input_size: tuple[int, int], heatmap_size: tuple[int, int],
                     n: int, seed: int) -> dict[str, np.ndarray]:
    """Per-keypoint errors (input px) for each decoder, plus the interior mask."""
    codec = HeatmapCodec(input_size, heatmap_size, sigma=2.0)
    H, W = input_size
    rng = np.random.default_rng(seed)
    kpts = rng.uniform(0, 1, (n, 2)) * np.array([W - 1, H - 1])      # (n, 2) input px
    heatmaps = np.stack([codec.encode(k[None], np.ones(1))["heatmaps"][0] for k in kpts])
    heatmaps = heatmaps[None]                                          # (1, n, h, w)
    out = {}
    for name, dark in (("argmax", False), ("dark", True)):
        coords, _ = codec.decode(heatmaps, dark=dark)
        out[name] = np.linalg.norm(coords[0] - kpts, axis=-1)
    mu = kpts / codec.stride
    h, w = heatmap_size
    out["interior"] = ((mu >= 3) & (mu <= np.array([w - 1, h - 1]) - 3)).all(axis=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'input':>8} {'heatmap':>8} {'subset':>9} {'n':>5} "
          f"{'argmax mean':>11} {'argmax max':>10} {'dark mean':>9} {'dark max':>8}")
    for input_size, heatmap_size in SETTINGS:
        err = roundtrip_errors(input_size, heatmap_size, args.n, args.seed)
        for subset, mask in (("all", np.ones_like(err["interior"])),
                             ("interior", err["interior"])):
            a, d = err["argmax"][mask], err["dark"][mask]
            print(f"{'x'.join(map(str, input_size)):>8} {'x'.join(map(str, heatmap_size)):>8} "
                  f"{subset:>9} {mask.sum():>5} {a.mean():>11.3f} {a.max():>10.3f} "
                  f"{d.mean():>9.3f} {d.max():>8.3f}")


if __name__ == "__main__":
    main()
