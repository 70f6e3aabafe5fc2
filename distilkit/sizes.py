"""Image sizes as the kit writes them: ``HxW`` (height first, as every tensor shape here)."""
from __future__ import annotations

from typing import Any


def parse_hw(value: Any) -> tuple[int, int]:
    """``"64x48"`` or ``(64, 48)`` -> ``(64, 48)``; anything else is a ValueError that says why.

    Usable as an argparse ``type=``: argparse turns the ValueError into a usage error."""
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
    else:
        try:
            parts = list(value)
        except TypeError:
            parts = [value]
    try:
        if len(parts) != 2:
            raise ValueError
        h, w = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"expected a size HxW such as 64x48, got {value!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"a size needs a positive height and width, got {value!r}")
    return h, w


__all__ = ["parse_hw"]
