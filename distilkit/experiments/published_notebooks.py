"""The main job's executed notebooks, published beside its results (``results/notebooks/``), so
a reader of the repository sees their tables and figures inline, as GitHub renders them.

The full executed copies stay under ``runs/<profile>/notebooks/``; the published ones are those
copies made light: images wider than ``MAX_IMAGE_WIDTH`` scaled down to it and stored with a
256-colour palette (dithered: a figure stays readable on a page at about a quarter of the bytes;
scaled alone, anti-aliasing made the files larger than the originals), interactive widget views
dropped (a progress bar's text stays; GitHub cannot draw the widget), and the lot checked against
``MAX_TOTAL_BYTES``.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

from distilkit.files import atomic_file

MAX_IMAGE_WIDTH = 1100          # px: a page's width on GitHub, about
MAX_TOTAL_BYTES = 10 * 2**20    # results/notebooks/ in all
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class PublishedNotebooksTooLarge(RuntimeError):
    """The published notebooks exceed their budget; the earlier copies were left in place."""


def shrink_png(data: str, max_width: int = MAX_IMAGE_WIDTH) -> str:
    """A base64 PNG, scaled down to ``max_width`` (aspect kept) and palette-coded when it is
    wider; else as it is, bit for bit."""
    from PIL import Image

    raw = base64.b64decode(data)
    image = Image.open(io.BytesIO(raw))
    if image.width <= max_width:
        return data
    height = max(1, round(image.height * max_width / image.width))
    small = image.convert("RGBA").resize((max_width, height), Image.Resampling.LANCZOS)
    if small.getextrema()[3][0] == 255:          # opaque, as matplotlib's inline figures are
        small = small.convert("RGB")
    coded = small.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG)
    out = io.BytesIO()
    coded.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def light_copy(nb, max_width: int = MAX_IMAGE_WIDTH):
    """``nb`` (an nbformat notebook, changed in place and returned) as published: images scaled
    to ``max_width``, widget views and the widget state dropped."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            data.pop(WIDGET_VIEW, None)
            if "image/png" in data:
                data["image/png"] = shrink_png(data["image/png"], max_width)
                output.get("metadata", {}).pop("image/png", None)   # a stale width/height
    return nb


def publish_notebooks(executed: list[Path], out_dir: str | Path, *, max_width: int = MAX_IMAGE_WIDTH,
                      max_total_bytes: int = MAX_TOTAL_BYTES, stale: tuple[str, ...] = ()) -> dict:
    """Write the light copy of each executed notebook to ``out_dir`` under its own name.

    All are built in memory first: over ``max_total_bytes`` in all, nothing is written and
    ``PublishedNotebooksTooLarge`` names each file's size (the total counts the copies already
    in ``out_dir`` that stay). ``stale`` names notebooks that
    failed this time: their earlier published copies are removed, so no copy outlives the
    results it showed. Returns {"files": {name: bytes}, "total_bytes", "removed": [names]}.
    """
    import nbformat

    copies = {}
    for path in executed:
        nb = light_copy(nbformat.read(str(path), as_version=4), max_width)
        copies[Path(path).name] = nbformat.writes(nb).encode("utf-8")
    out_dir = Path(out_dir)
    kept = [p for p in out_dir.glob("*.ipynb") if p.name not in copies and p.stem not in stale]
    total = sum(len(b) for b in copies.values()) + sum(p.stat().st_size for p in kept)
    if total > max_total_bytes:
        sizes = ", ".join([f"{name} {len(b) / 2**20:.1f} MB" for name, b in copies.items()]
                          + [f"{p.name} (kept) {p.stat().st_size / 2**20:.1f} MB" for p in kept])
        raise PublishedNotebooksTooLarge(
            f"the published notebooks would hold {total / 2**20:.1f} MB, over the "
            f"{max_total_bytes / 2**20:.0f} MB limit ({sizes}); {out_dir} was left as it was")

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, blob in copies.items():
        with atomic_file(out_dir / name, "wb") as f:
            f.write(blob)
    removed = []
    for name in stale:
        old = out_dir / f"{name}.ipynb"
        if old.exists() and old.name not in copies:
            old.unlink()
            removed.append(old.name)
    return {"files": {name: len(b) for name, b in copies.items()}, "total_bytes": total, "removed": removed}


__all__ = [
    "MAX_IMAGE_WIDTH",
    "MAX_TOTAL_BYTES",
    "PublishedNotebooksTooLarge",
    "light_copy",
    "publish_notebooks",
    "shrink_png",
]
