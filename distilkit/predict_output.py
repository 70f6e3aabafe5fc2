"""What ``distilkit predict`` keeps while it streams: the results file written result by
result, and per image the persons it draws.

Memory stays flat in the number of boxes: no list of every result is built. The results file
is one JSON array written through a temporary file and renamed into place once complete
(``atomic_file``), strict JSON as ``evaluation.coco.write_coco_results`` writes it (a
non-finite value becomes 0.0, counted in one WARNING naming the file). A drawing shows at most
``MAX_DRAWN_PERSONS`` persons, the highest-scoring, each labelled with its number among the
image's results: thousands of skeletons on one picture show nothing and cost gigabytes.
"""
from __future__ import annotations

import contextlib
import heapq
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from distilkit.evaluation.coco import finite_result
from distilkit.files import atomic_file

logger = logging.getLogger(__name__)

MAX_DRAWN_PERSONS = 100


class ResultsStream:
    """An open JSON array of COCO results; ``add`` writes one."""

    def __init__(self, file, path: Path):
        self.file, self.path = file, path
        self.count = self.fixed_values = self.fixed_results = 0

    def add(self, result: dict) -> dict:
        """Write ``result``; returns it as written (non-finite values at 0.0)."""
        result, bad = finite_result(result)
        self.fixed_values += bad
        self.fixed_results += bool(bad)
        self.file.write(("[" if self.count == 0 else ",\n") + json.dumps(result, allow_nan=False))
        self.count += 1
        return result


@contextlib.contextmanager
def stream_coco_results(path: str | Path) -> Iterator[ResultsStream]:
    """A ``ResultsStream`` into ``path``, which appears only when the block ends without error."""
    path = Path(path)
    with atomic_file(path, "w") as f:
        stream = ResultsStream(f, path)
        yield stream
        f.write("[]\n" if stream.count == 0 else "]\n")
    if stream.fixed_values:
        logger.warning("%s: %d non-finite value(s) in %d of %d keypoint result(s) set to 0.0 "
                       "(keypoint at the origin, score at the bottom of the ranking)", path,
                       stream.fixed_values, stream.fixed_results, stream.count)


class DrawnPersons:
    """The ``limit`` highest-scoring of an image's results, with their numbers (0-based, in the
    order they were given); ties keep the earlier one."""

    def __init__(self, limit: int = MAX_DRAWN_PERSONS):
        self.limit = limit
        self.heap: list[tuple[float, int, dict]] = []
        self.seen = 0

    def add(self, result: dict) -> None:
        item = (float(result["score"]), -self.seen, result)
        self.seen += 1
        if len(self.heap) < self.limit:
            heapq.heappush(self.heap, item)
        elif item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def numbered(self) -> tuple[list[dict], list[int]]:
        """(results, their numbers), in the order given."""
        kept = sorted(self.heap, key=lambda item: -item[1])
        return [r for _, _, r in kept], [-n for _, n, _ in kept]

    def note(self) -> str:
        """'' when every result is drawn, else what the drawing leaves out."""
        if self.seen <= self.limit:
            return ""
        return f" (drawn: the {self.limit} highest-scoring of {self.seen})"


__all__ = ["MAX_DRAWN_PERSONS", "DrawnPersons", "ResultsStream", "stream_coco_results"]
