"""Teacher outputs computed once and shared by every row that sees the same batches.

Rows distilled from one teacher at one seed, with the same data, augmentation, batch size and
loader settings, draw bit-identical augmented batches (shuffling and augmentation are functions
of (seed, epoch)), so the frozen teacher's outputs for them are the same too. The first row to
reach an epoch computes them live and writes ``epoch_NNN.bin`` (``teacher_store_file``); later
rows read them instead of running the teacher (about 30 % of a distilled step on the cpu profile).

Nothing here can change a result:
- the folder's name is a digest of everything that decides the batches and the teacher's
  numerics (the teacher file's bytes, the annotation file's bytes, seed, batch, shard, workers,
  augmentation, input size, torch build, threads, device type);
- each stored batch carries a digest of its input images, checked before its outputs are used;
  a batch that differs falls back to the live teacher for the rest of the epoch, with a warning;
- each stored batch carries a digest of its output bytes, checked on read, and is read with
  ``pread``, never memory-mapped: changed bytes, a short or truncated file (even one truncated
  while being read) or an unreadable one is one warning naming the file; the rest of the epoch
  runs live, and the row that found it writes the epoch again when it can take the epoch's lock;
- outputs are stored in the dtype the teacher made them (fp32 on CPU), and read back exactly.

The store never costs a row its result either: a write that fails (a full disk, a read-only
folder) is one warning, and the row goes on with the live teacher and writes no more. Before an
epoch is written, its size (the first batch's bytes times the epoch's batches) is checked
against the disk's free space and the store's cap (``STORE_CAP_BYTES``, all stores under the
store root together); when either would be exceeded one line says so and the row runs live.

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

from distilkit.losses import TEACHER_OUTPUTS
from distilkit.outputs import PoseOutput
from distilkit.teacher_store_file import (
    EpochReader,
    EpochWriter,
    StoreFileError,
    bytes_digest,
)

log = logging.getLogger(__name__)

FIELDS = TEACHER_OUTPUTS      # what the distillation losses read (losses.DISTILL_TERMS)
EPOCH_FILE = "epoch_{:03d}.bin"
# The paper grid's store would hold 63 GB an epoch (418,560 bytes per crop): the cap keeps a
# store to what a disk beside the runs can spare; above it, rows run the teacher live.
STORE_CAP_BYTES = 50 * 10**9
FREE_SPACE_MARGIN = 2 * 2**30     # left free for the runs' own checkpoints and logs


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def batch_digest(images: torch.Tensor) -> str:
    """A digest of a batch's input bytes (the teacher's only input), hex."""
    return bytes_digest(images.detach().cpu().contiguous().numpy().tobytes())


def output_bytes_per_crop(output: PoseOutput) -> int:
    """What the store holds per crop of a teacher output batch (the fields the losses read)."""
    sizes = [getattr(output, n) for n in FIELDS if getattr(output, n) is not None]
    return sum(t[0].numel() * t.element_size() for t in sizes)


def stored_bytes(root: str | Path) -> int:
    """The bytes of every store under ``root`` (the stores the cap covers together)."""
    root = Path(root)
    return sum(f.stat().st_size for f in root.glob("*/*") if f.is_file()) if root.is_dir() else 0


def store_allowed(estimated_bytes: int, root: str | Path, *, cap_bytes: int = STORE_CAP_BYTES,
                  free_bytes: int | None = None) -> str | None:
    """None when ``estimated_bytes`` more may go into the stores under ``root``; else the one
    line saying why not (the cap over all stores under ``root``, or the disk's free space less
    ``FREE_SPACE_MARGIN``). ``free_bytes`` defaults to the free space of ``root``'s disk."""
    root = Path(root)
    used = stored_bytes(root)
    if used + estimated_bytes > cap_bytes:
        return (f"teacher outputs not stored under {root}: {(used + estimated_bytes) / 1e9:.1f} GB "
                f"({used / 1e9:.1f} GB there, {estimated_bytes / 1e9:.1f} GB more) would exceed the "
                f"store's {cap_bytes / 1e9:.0f} GB cap; running the teacher live")
    if free_bytes is None:
        existing = next((p for p in (root, *root.parents) if p.exists()), Path("."))
        free_bytes = shutil.disk_usage(existing).free
    if estimated_bytes + FREE_SPACE_MARGIN > free_bytes:
        return (f"teacher outputs not stored under {root}: {estimated_bytes / 1e9:.1f} GB would "
                f"leave less than {FREE_SPACE_MARGIN / 2**30:.0f} GiB of the disk's "
                f"{free_bytes / 1e9:.1f} GB free; running the teacher live")
    return None


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
    """The teacher of a row, live or from the store; ``epoch(e)`` gives the epoch's source.

    ``batches_per_epoch`` sizes the free-space and cap check before an epoch is written;
    ``cap_bytes`` is the cap on all stores under the folder's parent."""

    def __init__(self, teacher, folder: Path | None, *, batches_per_epoch: int = 0,
                 cap_bytes: int | None = None):
        self.teacher = teacher
        self.folder = folder
        self.batches_per_epoch = batches_per_epoch
        self.cap_bytes = STORE_CAP_BYTES if cap_bytes is None else cap_bytes
        self.no_writes: str | None = None    # why this row writes no more (said once)

    def epoch(self, epoch: int) -> EpochSource:
        if self.folder is None:
            return EpochSource(self.teacher, mode="live")
        path = self.folder / EPOCH_FILE.format(epoch)
        if path.is_file():
            try:
                return EpochSource(self.teacher, mode="read", path=path, reader=EpochReader(path),
                                   owner=self)
            except OSError as err:    # a damaged store file costs speed, never a result
                log.warning("teacher outputs %s unusable (%s): running the teacher live and "
                            "writing the epoch again", path, err)
                return _writer_or_live(self, path, replace=True)
        return _writer_or_live(self, path)

    def refuse_writes(self, reason: str) -> None:
        if self.no_writes is None:
            self.no_writes = reason
            log.warning("%s", reason)


def _epoch_lock(outputs: TeacherOutputs, path: Path):
    """The epoch's write lock, held; None when another row holds it or it cannot be made."""
    from filelock import FileLock, Timeout

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock")
        lock.acquire(timeout=0)
    except Timeout:             # another row is writing this epoch: never wait for it
        return None
    except OSError as err:
        outputs.refuse_writes(f"teacher outputs not stored in {path.parent} ({err}); running the "
                              "teacher live")
        return None
    return lock


def _writer_or_live(outputs: TeacherOutputs, path: Path, *, replace: bool = False) -> EpochSource:
    if outputs.no_writes is not None:
        return EpochSource(outputs.teacher, mode="live")
    lock = _epoch_lock(outputs, path)
    if lock is None:
        return EpochSource(outputs.teacher, mode="live")
    if path.is_file() and not replace:   # it finished between our look and our lock
        lock.release()
        return outputs.epoch(int(path.stem.split("_")[1]))
    return EpochSource(outputs.teacher, mode="write", path=path, lock=lock, owner=outputs)


class EpochSource:
    """One epoch's teacher outputs, batch by batch, in the loader's order."""

    def __init__(self, teacher, *, mode: str, path: Path | None = None,
                 reader: EpochReader | None = None, lock=None, owner: TeacherOutputs | None = None):
        self.teacher, self.mode, self.path, self.reader = teacher, mode, path, reader
        self.lock, self.owner = lock, owner
        self.writer: EpochWriter | None = None

    def __call__(self, step: int, images: torch.Tensor, cpu_images: torch.Tensor) -> PoseOutput:
        """The teacher's output for the epoch's ``step``-th batch ``images`` (on the device);
        ``cpu_images`` is the same batch as the loader gave it, whose digest keys the store."""
        digest = batch_digest(cpu_images) if self.mode != "live" else ""
        if self.mode == "read":
            out = self._read(step, digest, images.device)
            if out is not None:
                return out
        out = self.teacher(images)
        if self.mode == "write":
            self._write(step, digest, {name: getattr(out, name) for name in FIELDS
                                       if getattr(out, name) is not None})
        return out

    def _read(self, step: int, digest: str, device: torch.device) -> PoseOutput | None:
        if step >= len(self.reader) or self.reader.input_digest(step) != digest:
            log.warning("teacher outputs %s: batch %d differs from the stored one; running the "
                        "teacher live for the rest of the epoch", self.path, step)
            self._stop_reading()
            return None
        try:
            stored = self.reader.outputs(step)
        except OSError as err:
            log.warning("teacher outputs %s unusable (%s): running the teacher live and writing "
                        "the epoch again", self.path, err)
            self._rewrite_from(step)
            return None
        return PoseOutput(**{name: value.to(device) for name, value in stored.items()})

    def _stop_reading(self) -> None:
        self.reader.close()
        self.mode = "live"

    def _rewrite_from(self, step: int) -> None:
        """Become the epoch's writer (when its lock is free): the batches before ``step`` were
        read and checked, so they are copied; the rest come from the live teacher."""
        reader = self.reader
        self.mode = "live"
        source = _writer_or_live(self.owner, self.path, replace=True)
        if source.mode == "write":
            self.mode, self.lock = "write", source.lock
            try:
                for earlier in range(step):
                    self._write(earlier, reader.input_digest(earlier), reader.outputs(earlier))
            except StoreFileError:    # damaged before step too (changed under us): no rewrite
                self._give_up()
        reader.close()

    def _write(self, step: int, digest: str, outputs: dict[str, torch.Tensor]) -> None:
        try:
            if self.writer is None:
                reason = self._too_large(outputs)
                if reason:
                    self.owner.refuse_writes(reason)
                    self._give_up()
                    return
                self.writer = EpochWriter(self.path)
            self.writer.add(digest, outputs)
        except OSError as err:
            self.owner.refuse_writes(f"teacher outputs not written to {self.path} ({err}); "
                                     "running the teacher live")
            self._give_up()

    def _too_large(self, outputs: dict[str, torch.Tensor]) -> str | None:
        batch_bytes = sum(t.numel() * t.element_size() for t in outputs.values())
        estimate = batch_bytes * max(self.owner.batches_per_epoch, 1)
        return store_allowed(estimate, self.path.parent.parent, cap_bytes=self.owner.cap_bytes)

    def _give_up(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        self.mode = "live"
        self.lock.release()

    def close(self, *, complete: bool) -> None:
        """Write the epoch (a writer that saw every batch), then release its lock."""
        if self.reader is not None:
            self.reader.close()
        if self.mode != "write":
            return
        try:
            if complete and self.writer is not None:
                size = self.writer.commit()
                self.writer = None
                log.info("teacher outputs: wrote %s (%.0f MB)", self.path, size / 2**20)
        except OSError as err:
            self.owner.refuse_writes(f"teacher outputs not written to {self.path} ({err}); "
                                     "running the teacher live")
        finally:
            if self.writer is not None:
                self.writer.abort()
            self.lock.release()


__all__ = [
    "EPOCH_FILE",
    "FIELDS",
    "FREE_SPACE_MARGIN",
    "STORE_CAP_BYTES",
    "BatchIdentity",
    "EpochSource",
    "TeacherOutputs",
    "batch_digest",
    "file_sha256",
    "output_bytes_per_crop",
    "remove_stores",
    "store_allowed",
    "store_folder",
    "stored_bytes",
]
