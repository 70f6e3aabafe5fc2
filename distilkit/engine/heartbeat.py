"""A training run's live position, for whoever watches it from outside the process.

The trainer writes ``RUN_DIR/.heartbeat.json`` at its first batch, then at most every
``WRITE_EVERY_S`` seconds, and when it starts evaluating: the stage, epoch, batch and the
seconds the epoch has taken so far. The main job (``experiments.progress.RowWatch``) reads it
to show each running row's progress from its first batch, long before an epoch ends. The file
is small and written atomically; a reader that finds none (or a torn one) sees no beat.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

FILE = ".heartbeat.json"
WRITE_EVERY_S = 5.0


@dataclass(frozen=True)
class Beat:
    stage: str            # "train" or "evaluate"
    epoch: int            # 1-based, of ``epochs``
    epochs: int
    batch: int            # batches of this epoch done (train stage)
    batches: int
    epoch_s: float        # seconds into this epoch's training (train) or into evaluation
    loss: float | None = None
    wall: float = 0.0     # time.time() when written
    first_batch_s: float | None = None    # this epoch's first batch: a compile or warm-up, not the pace

    def epoch_estimate_s(self) -> float | None:
        """This epoch's training time at the pace of the batches after its first (train stage);
        None until there is such a pace: the first batch of a compiled model's first epoch
        takes its compile, minutes against a step's fraction of a second."""
        if self.stage != "train" or self.batch < 2 or self.first_batch_s is None:
            return None
        pace = (self.epoch_s - self.first_batch_s) / (self.batch - 1)
        return self.first_batch_s + pace * (self.batches - 1)


class Heartbeat:
    """Writes a run's beats, throttled to one per ``WRITE_EVERY_S`` (the first always)."""

    def __init__(self, run_dir: str | Path, epochs: int, enabled: bool = True):
        self.path, self.epochs, self.enabled = Path(run_dir) / FILE, epochs, enabled
        self._last = float("-inf")
        self._first_s: float | None = None

    def batch(self, epoch: int, batch: int, batches: int, epoch_s: float, loss: float) -> None:
        if batch == 1:
            self._first_s = epoch_s
        if batch == 1 or time.monotonic() - self._last >= WRITE_EVERY_S:
            self._write(Beat("train", epoch + 1, self.epochs, batch, batches, epoch_s, loss,
                             first_batch_s=self._first_s))

    def evaluating(self, epoch: int) -> None:
        self._write(Beat("evaluate", epoch + 1, self.epochs, 0, 0, 0.0))

    def _write(self, beat: Beat) -> None:
        if not self.enabled:
            return
        self._last = time.monotonic()
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps({**asdict(beat), "wall": time.time()}))
            tmp.replace(self.path)
        except OSError:       # a watcher's convenience: never worth failing a run over
            pass


def read_beat(run_dir: str | Path) -> Beat | None:
    """The run's last beat, or None (no file yet, or not readable as one)."""
    try:
        return Beat(**json.loads((Path(run_dir) / FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


__all__ = ["Beat", "Heartbeat", "read_beat", "FILE"]
