"""Where the visualisation notebooks put their figures, and how they save them.

Paper figures are mirrored, so every figure is written twice: a PNG to look at and a PDF
to drop into a report. A relative output folder is taken from the repository root
(``distilkit.paths.resolve``), so ``results/figures`` means the same place whether a notebook
runs interactively, under papermill, or a function is called from a script elsewhere.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from distilkit.paths import resolve


# no creation date: a re-run that draws the same figure writes the same bytes
PDF_METADATA = {"CreationDate": None}


def save_png_pdf(fig: plt.Figure, out_dir: str | Path, name: str, *, dpi: int = 150,
                 tight: bool = True) -> tuple[Path, Path]:
    """Write ``out_dir/name.png`` and ``out_dir/name.pdf`` (folder created); return both.
    ``tight``: crop to the drawn content (``bbox_inches="tight"``) instead of the figure size."""
    out = resolve(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = name[:-4] if name.endswith((".png", ".pdf")) else name
    png, pdf = out / f"{stem}.png", out / f"{stem}.pdf"
    bbox = "tight" if tight else None
    fig.savefig(png, dpi=dpi, bbox_inches=bbox)
    fig.savefig(pdf, bbox_inches=bbox, metadata=PDF_METADATA)
    return png, pdf


def pretty_joint(name: str) -> str:
    """``right_ankle`` -> ``right ankle`` for titles."""
    return name.replace("_", " ")


# Two short rows per joint fit in a Fig. 6 box at crop scale.
SHORT_NAMES: dict[str, str] = {
    "nose": "nose", "left_eye": "L eye", "right_eye": "R eye", "left_ear": "L ear",
    "right_ear": "R ear", "left_shoulder": "L sho", "right_shoulder": "R sho",
    "left_elbow": "L elb", "right_elbow": "R elb", "left_wrist": "L wri",
    "right_wrist": "R wri", "left_hip": "L hip", "right_hip": "R hip", "left_knee": "L kne",
    "right_knee": "R kne", "left_ankle": "L ank", "right_ankle": "R ank",
}


__all__ = ["save_png_pdf", "pretty_joint", "SHORT_NAMES"]
