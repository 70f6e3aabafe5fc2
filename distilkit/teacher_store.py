"""Teacher outputs computed once and shared by every row that sees the same batches.

Rows distilled from one teacher at one seed, with the same data, augmentation, batch size and
loader settings, draw bit-identical augmented batches (shuffling and augmentation are functions
of (seed, epoch)), so the frozen teacher's outputs for them are the same too. The first row to
reach an epoch computes them live and writes ``epoch_NNN.pt``; later rows read them instead of
running the teacher (about 30 % of a distilled step on the cpu profile).

Nothing here can change a result:
- the folder's name is a digest of everything that decides the batches and the teacher's
  numerics (the teacher file's bytes, the annotation file's bytes, seed, batch, shard, workers,
  augmentation, input size, torch build, threads, device type);
- each stored batch carries a digest of its input images, checked before its outputs are used;
  a batch that differs falls back to the live teacher for the rest of the epoch, with a warning;
- outputs are stored in the dtype the teacher made them (fp32 on CPU), and read back exactly.

Rows never wait on each other: an epoch another process is writing is computed live.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from distilkit.outputs import PoseOutput

log = logging.getLogger(__name__)

FIELDS = ("heatmaps", "kpt_tokens", "vis_tokens")      # what the distillation losses read
DIGEST_BYTES = 16


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def batch_digest(images: torch.Tensor) -> torch.Tensor:
    """(DIGEST_BYTES,) uint8: a digest of a batch's input bytes (the teacher's only input)."""
    data = images.detach().cpu().contiguous().numpy().tobytes()
    raw = hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


@dataclass(frozen=True)
class BatchIdentity:
    """Everything that decides a row's training batches and the teacher's numerics on them."""

    teacher_sha256: str
    train_annotations_sha256: str
    data_root: str
    seed: int
    batch_size: int          # per rank
    world_size: int
    rank: int
    workers: int
    augment: dict
    input_size: tuple[int, int]
    max_train_instances: int | None
    torch_version: str
    threads: int
    device_type: str

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


def store_folder(root: str | Path, teacher_path: str | Path, identity: BatchIdentity) -> Path:
    """``<root>/<teacher run folder>-s<seed>-<digest>``: named after its teacher so that the
    runner can remove a teacher's stores once every row distilled from it is done."""
    return Path(root) / f"{Path(teacher_path).parent.name}-s{identity.seed}-{identity.digest()}"


def remove_stores(root: str | Path, teacher_path: str | Path) -> int:
    """Delete the stores of one teacher under ``root``; returns the bytes freed."""
    freed = 0
    root = Path(root)
    if not root.is_dir():
        return 0
    for folder in root.glob(f"{Path(teacher_path).parent.name}-s*"):
        freed += sum(f.stat().st_size for f in folder.glob("*") if f.is_file())
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        root.rmdir()          # only when empty
    return freed


class TeacherOutputs:
    """The teacher of a row, live or from the store; ``epoch(e)`` gives the epoch's source."""

    def __init__(self, teacher, folder: Path | None):
        self.teacher = teacher
        self.folder = folder
        self.bytes_written = 0

    def epoch(self, epoch: int) -> "EpochSource":
        if self.folder is None:
            return EpochSource(self.teacher, mode="live")
        path = self.folder / f"epoch_{epoch:03d}.pt"
        if path.is_file():
            try:
                # weights-only as every load in the kit; mmap: pages are read as batches need them
                stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                return EpochSource(self.teacher, mode="read", path=path, stored=stored)
            except Exception as err:    # a damaged store file costs speed, never a result
                log.warning("teacher outputs %s unreadable (%s): running the teacher live", path, err)
                return EpochSource(self.teacher, mode="live")
        return _writer_or_live(self, path)


def _writer_or_live(outputs: TeacherOutputs, path: Path) -> "EpochSource":
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:             # another row is writing this epoch: never wait for it
        return EpochSource(outputs.teacher, mode="live")
    if path.is_file():          # it finished between our look and our lock
        lock.release()
        return outputs.epoch(int(path.stem.split("_")[1]))
    return EpochSource(outputs.teacher, mode="write", path=path, lock=lock, owner=outputs)


class EpochSource:
    """One epoch's teacher outputs, batch by batch, in the loader's order."""

    def __init__(self, teacher, *, mode: str, path: Path | None = None, stored: dict | None = None,
                 lock=None, owner: TeacherOutputs | None = None):
        self.teacher, self.mode, self.path, self.stored = teacher, mode, path, stored
        self.lock, self.owner = lock, owner
        self.written: dict[str, list[torch.Tensor]] = {}
        self.digests: list[torch.Tensor] = []

    def __call__(self, step: int, images: torch.Tensor, cpu_images: torch.Tensor) -> PoseOutput:
        """The teacher's output for the epoch's ``step``-th batch ``images`` (on the device);
        ``cpu_images`` is the same batch as the loader gave it, whose digest keys the store."""
        if self.mode == "read":
            out = self._read(step, cpu_images, images.device)
            if out is not None:
                return out
        out = self.teacher(images)
        if self.mode == "write":
            self.digests.append(batch_digest(cpu_images))
            for name in FIELDS:
                value = getattr(out, name)
                if value is not None:
                    self.written.setdefault(name, []).append(value.detach().to("cpu", copy=True))
        return out

    def _read(self, step: int, cpu_images: torch.Tensor, device: torch.device) -> PoseOutput | None:
        digests = self.stored["digests"]
        if step >= len(digests) or not torch.equal(digests[step], batch_digest(cpu_images)):
            log.warning("teacher outputs %s: batch %d differs from the stored one; running the "
                        "teacher live for the rest of the epoch", self.path, step)
            self.mode = "live"
            return None
        return PoseOutput(**{name: self.stored[name][step].to(device) for name in FIELDS
                             if name in self.stored})

    def close(self, *, complete: bool) -> None:
        """Write the epoch (a writer that saw every batch), then release its lock."""
        if self.mode != "write":
            return
        try:
            if complete and self.digests:
                from distilkit.engine.checkpoint import atomic_torch_save
                payload = {name: torch.stack(values) for name, values in self.written.items()}
                payload["digests"] = torch.stack(self.digests)
                atomic_torch_save(payload, self.path)
                size = self.path.stat().st_size
                self.owner.bytes_written += size
                log.info("teacher outputs: wrote %s (%.0f MB)", self.path, size / 2**20)
        finally:
            self.written.clear()
            self.lock.release()


__all__ = ["BatchIdentity", "TeacherOutputs", "EpochSource", "store_folder", "remove_stores",
           "file_sha256", "batch_digest", "FIELDS"]
