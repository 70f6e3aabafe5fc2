"""The one error type for bad dataset input: it always names the file and the problem."""
from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data: a missing/corrupt file, malformed JSON, missing keys, no instances.

    ``DataError(path, problem)`` reads "<path>: <problem>". A single argument is taken as
    the whole message, so the exception survives pickling and PyTorch's DataLoader
    re-raising it from a worker process (both rebuild it from the message alone).
    """

    def __init__(self, path: str | Path, problem: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        message = f"{path}: {problem}" if problem else str(path)
        super().__init__(message)


class UsageError(ValueError):
    """A value the user chose that the kit cannot use: an unknown model, loss or row, a number
    out of range, a bad environment variable. The message names the option or variable."""
