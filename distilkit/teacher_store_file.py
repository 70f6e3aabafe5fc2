"""One epoch of stored teacher outputs: a file written batch by batch and read batch by batch.

Layout (little-endian)::

    MAGIC | batch 0's fields | batch 1's fields | ... | index (JSON) | index length (8 bytes) | MAGIC

Each batch is the raw bytes of its fields (``teacher_store.FIELDS`` order), one after the other.
The index gives per batch its offset, each field's dtype, shape and byte count, the digest of
the batch's input images and the digest of its output bytes.

Why not ``torch.save`` and a memory-mapped ``torch.load``: a file truncated under a reader that
has mapped it ends the process with SIGBUS (no message, no epoch saved), and a whole-file read
holds hundreds of MB per epoch. Here a batch is one ``pread``: a short read (the file truncated,
even while being read) and a digest mismatch (flipped bytes) are both a ``StoreFileError``, and
memory holds one batch. Nothing in the file is executed or unpickled: the index is JSON, the
dtypes come from a fixed table.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path

import torch

MAGIC = b"DKTEACH1"
_TAIL = 8 + len(MAGIC)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "float64": torch.float64}
DIGEST_BYTES = 16


class StoreFileError(OSError):
    """A stored epoch that cannot be used: short, truncated, malformed or changed bytes."""


def bytes_digest(*chunks: bytes | memoryview) -> str:
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _raw(tensor: torch.Tensor) -> memoryview:
    """The tensor's bytes (any dtype, bfloat16 included) without a copy beyond contiguity."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


class EpochWriter:
    """Appends batches to a temporary file beside ``path``; ``commit`` renames it over ``path``,
    ``abort`` removes it. Any OSError (a full disk, a read-only folder) propagates."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        self.file = open(self.tmp, "wb")  # noqa: SIM115 - open across batches; open() honours the umask
        self.file.write(MAGIC)
        self.offset = len(MAGIC)
        self.index: list[dict] = []

    def add(self, input_digest: str, outputs: dict[str, torch.Tensor]) -> int:
        """Append one batch; returns its bytes."""
        record = {"offset": self.offset, "input": input_digest, "fields": {}}
        chunks = []
        for name, tensor in outputs.items():
            raw = _raw(tensor)
            dtype = str(tensor.dtype).removeprefix("torch.")
            if dtype not in DTYPES:
                raise StoreFileError(f"{self.path}: cannot store {name} of dtype {dtype}")
            record["fields"][name] = [dtype, list(tensor.shape), raw.nbytes]
            chunks.append(raw)
        record["outputs"] = bytes_digest(*chunks)
        for chunk in chunks:
            self.file.write(chunk)
        size = sum(c.nbytes for c in chunks)
        self.offset += size
        self.index.append(record)
        return size

    def commit(self) -> int:
        """Finish the file and put it in place; returns its size."""
        index = json.dumps(self.index).encode()
        self.file.write(index)
        self.file.write(len(index).to_bytes(8, "little"))
        self.file.write(MAGIC)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)
        return self.path.stat().st_size

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


class EpochReader:
    """A stored epoch, checked as a whole (magic, index, sizes) on open and per batch (length
    and output digest) on read."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDONLY)
        try:
            self.index = self._read_index()
        except BaseException:
            os.close(self.fd)
            raise

    def _fail(self, problem: str) -> StoreFileError:
        return StoreFileError(f"{self.path}: {problem}")

    def _pread(self, size: int, offset: int) -> bytes:
        data = os.pread(self.fd, size, offset)
        if len(data) != size:
            raise self._fail(f"short read at byte {offset} ({len(data)} of {size} bytes): truncated")
        return data

    def _read_index(self) -> list[dict]:
        size = os.fstat(self.fd).st_size
        if size < len(MAGIC) + _TAIL or self._pread(len(MAGIC), 0) != MAGIC:
            raise self._fail(f"not a teacher-output file or truncated ({size} bytes)")
        tail = self._pread(_TAIL, size - _TAIL)
        index_len = int.from_bytes(tail[:8], "little")
        if tail[8:] != MAGIC or index_len > size - len(MAGIC) - _TAIL:
            raise self._fail("truncated or damaged end")
        try:
            index = json.loads(self._pread(index_len, size - _TAIL - index_len))
            end = _check_index(index)
        except (ValueError, TypeError, KeyError) as err:
            raise self._fail(f"damaged index ({err})") from None
        if end != size - _TAIL - index_len:
            raise self._fail("its batches and index disagree on the file's length")
        return index

    def __len__(self) -> int:
        return len(self.index)

    def input_digest(self, step: int) -> str:
        return self.index[step]["input"]

    def outputs(self, step: int) -> dict[str, torch.Tensor]:
        """The batch's fields, after checking the digest of their bytes."""
        record = self.index[step]
        total = sum(nbytes for _, _, nbytes in record["fields"].values())
        data = self._pread(total, record["offset"])
        if bytes_digest(data) != record["outputs"]:
            raise self._fail(f"batch {step}'s outputs do not match their digest: changed bytes")
        out, start = {}, 0
        for name, (dtype, shape, nbytes) in record["fields"].items():
            chunk = bytearray(data[start:start + nbytes])
            start += nbytes
            out[name] = (torch.frombuffer(chunk, dtype=torch.uint8).view(DTYPES[dtype]).reshape(shape)
                         if nbytes else torch.empty(shape, dtype=DTYPES[dtype]))
        return out

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1     # never close a number the OS may have given out again
            with contextlib.suppress(OSError):
                os.close(fd)


def _check_index(index) -> int:
    """The offset where the batches end; ValueError/TypeError/KeyError when malformed."""
    if not isinstance(index, list):
        raise TypeError("index is not a list")
    offset = len(MAGIC)
    for record in index:
        if record["offset"] != offset or not isinstance(record["input"], str) \
                or not isinstance(record["outputs"], str):
            raise ValueError("batch records out of order")
        for dtype, shape, nbytes in record["fields"].values():
            if not all(isinstance(n, int) and n >= 0 for n in shape) \
                    or math.prod(shape) * DTYPES[dtype].itemsize != nbytes:
                raise ValueError(f"field of shape {shape} and dtype {dtype} is not {nbytes} bytes")
            offset += nbytes
    return offset


__all__ = ["MAGIC", "EpochReader", "EpochWriter", "StoreFileError", "bytes_digest"]
