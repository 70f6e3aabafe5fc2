"""Files written atomically and read weights-only: the bottom layer every room may use.

Writes are atomic: a run killed mid-save, or a full disk, leaves the previous file intact
and no temporary file behind. Every torch file is read with ``torch.load(weights_only=True)``:
only tensors, numbers, strings and plain containers are rebuilt, so a downloaded file cannot
run code. A file that asks for any other Python global is refused with
``UnsafeCheckpointError`` naming the file and the global, and nothing of it is executed.
"""
from __future__ import annotations

import contextlib
import errno
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Checkpoints written before the kit stored numpy's RNG state as a tensor hold one uint32
# array; these globals rebuild a plain ndarray (its items go through the same checks).
LEGACY_SAFE_GLOBALS = (np.ndarray, np.dtype, type(np.dtype(np.uint32)), np._core.multiarray._reconstruct)
# numpy scalars and arrays as a foreign file may hold them (mmcv's checkpoint meta: a best score).
# Files written under numpy 1.x, as the authors' were, name these functions under
# ``numpy.core.multiarray``; numpy 2 moved them to ``numpy._core``. Both names are allowed, for
# the same two functions, so still nothing but numbers and arrays is rebuilt.
_NUMPY_1X = "numpy.core.multiarray"
NUMPY_GLOBALS = (np._core.multiarray.scalar, (np._core.multiarray.scalar, f"{_NUMPY_1X}.scalar"),
                 np._core.multiarray._reconstruct,
                 (np._core.multiarray._reconstruct, f"{_NUMPY_1X}._reconstruct"),
                 np.ndarray, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32)),
                 type(np.dtype(np.int64)))


class UnsafeCheckpointError(ValueError):
    """A checkpoint asked for Python globals a weights-only load does not allow."""


class CheckpointReadError(ValueError):
    """A file that is not a readable kit checkpoint (empty, truncated, foreign, or with content
    the kit refuses); the message names it."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous file at the path is intact."""


# ------------------------------------------------------------------------------ writing
def _is_disk_full(err: BaseException) -> bool:
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        err = err.__cause__ or err.__context__
    return False


_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}


def write_target(path: str | Path) -> Path:
    """Where a write to ``path`` lands: the final target of a symlink (so the link keeps
    pointing at the new content), else ``path``. An existing output that is not a regular file
    (a device such as /dev/null, a FIFO, a socket, a folder) is refused with
    CheckpointWriteError: replacing it with a regular file would break it."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except NotADirectoryError:      # a parent is a regular file: said by _make_parent
        return target
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise CheckpointWriteError(errno.EEXIST, f"{path}: is {kind}, not a regular file; refused "
                                                 "(name a file path for the output)")
    return target


def check_folder_path(folder: str | Path, what: str | None = None) -> None:
    """CheckpointWriteError naming the first of ``folder`` and its parents that exists and is
    not a folder (a path under a regular file can never be made)."""
    folder = Path(folder)
    for place in (folder, *folder.parents):
        if place.exists() or place.is_symlink():
            if not place.is_dir():
                raise CheckpointWriteError(errno.ENOTDIR, f"cannot write {what or folder}: {place} is "
                                                          "not a folder")
            return


def _make_parent(path: Path) -> None:
    """``path``'s folder, made when missing; a regular file in the way is one error naming it."""
    check_folder_path(path.parent, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb"):
    """A file object whose content replaces ``path`` only once fully written and synced.

    On any failure the temporary file is removed and ``path`` keeps its old content; a full
    disk is reported as CheckpointWriteError saying "No space left on device" and the folder
    (torch's own writer would say only "iostream error"); another OSError (a read-only folder)
    as CheckpointWriteError naming ``path``. A symlink is written through: the temporary goes
    beside its target and replaces it. An existing ``path`` that is not a regular file is
    refused (``write_target``). The file gets the umask's permissions (``open`` creates it).
    """
    shown = Path(path)
    path = write_target(shown)
    _make_parent(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if _is_disk_full(err):
            kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
            raise CheckpointWriteError(errno.ENOSPC, f"No space left on device: cannot write "
                                                     f"{path.name} in {path.parent}; {kept}") from err
        if isinstance(err, OSError) and not isinstance(err, CheckpointWriteError) and err.strerror:
            raise CheckpointWriteError(err.errno, f"cannot write {shown}: {err.strerror}") from err
        raise


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save through ``atomic_file`` (a Python file object, so ENOSPC is seen as such)."""
    with atomic_file(path, "wb") as f:
        torch.save(obj, f)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_file(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------------------------ reading
def _global_name(allowed) -> str:
    """The name a pickle gives an allowed global: its own, or the alias of a (global, name) pair."""
    return allowed[1] if isinstance(allowed, tuple) else f"{allowed.__module__}.{allowed.__qualname__}"


def _unsafe_globals(path: Path, allow: tuple = ()) -> list[str]:
    allowed = {_global_name(g) for g in (*LEGACY_SAFE_GLOBALS, *allow)}
    allowed.add("numpy.dtype")
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - a file torch cannot even list is reported by the caller
        return []
    return [n for n in names if n not in allowed]


def load_weights_only(path: str | Path, map_location: str | torch.device = "cpu", *,
                      allow: tuple = ()) -> Any:
    """``torch.load(weights_only=True)`` of any file, with errors that name it.

    Only tensors, numbers, strings, plain containers, the legacy numpy RNG array and the
    globals in ``allow`` (such as ``NUMPY_GLOBALS``) are rebuilt; a file asking for anything
    else raises UnsafeCheckpointError before any of its code runs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals([*LEGACY_SAFE_GLOBALS, *allow]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = _unsafe_globals(path, allow)
        if unsafe or "GLOBAL" in str(err):
            names = ", ".join(unsafe) or _global_from_message(str(err))
            raise UnsafeCheckpointError(
                f"checkpoint {path} asks for the Python global(s) {names}, which a checkpoint may "
                "not contain; it was refused and none of its code was run (only tensors, numbers, "
                "strings and plain containers load)") from None
        raise CheckpointReadError(f"checkpoint {path} cannot be read: not a PyTorch file, or a damaged "
                                  f"one ({_reason(err)})") from None
    except Exception as err:  # truncated or foreign file
        raise CheckpointReadError(f"checkpoint {path} cannot be read: not a PyTorch file, or a damaged "
                                  f"one ({_reason(err)})") from None


def _reason(err: BaseException) -> str:
    """The cause in torch's message, one line: not its advice to load the file unsafely."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0][:200] if lines else 'the file ends early'}"


def _global_from_message(message: str) -> str:
    for line in message.splitlines():
        if "GLOBAL" in line:
            return line.split("GLOBAL", 1)[1].split()[0]
    return "(unknown)"
