"""One writer per run folder: an advisory lock that ``distilkit train`` and the grid runner take.

Two table notebooks open in JupyterLab, a notebook and ``distilkit reproduce``, or two
``distilkit train`` on one ``--out`` may run at once, and Tables 4 and 5 share run folders.
The holder writes its pid into the lock file so a refused process can name it. ``flock`` locks
are released by the kernel when a process dies, so a killed run never leaves a stale lock.
Where ``fcntl`` does not exist (Windows) the locks are no-ops and runs must not overlap.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None


class FolderBusyError(RuntimeError):
    """Another process holds the lock (a run folder being trained elsewhere)."""


def _holder_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def exclusive(lock_path: str | Path, *, wait: bool = True):
    """Hold an exclusive lock on ``lock_path`` (created if missing) for the ``with`` block.

    The holder writes its pid into the lock file, so a refused process can name it.
    ``wait=False`` raises FolderBusyError at once instead of waiting for the holder.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise FolderBusyError(f"{lock_path.parent} is in use by another process (pid "
                                      f"{_holder_pid(fd)}, lock {lock_path.name}); run again when "
                                      "it has finished") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


__all__ = ["exclusive", "FolderBusyError"]
