"""Where a grid's rows run: processes on this machine, or Slurm jobs through submitit.

    local            each row in its own notebook kernel on this machine, ``jobs`` at a time
    slurm            each row a Slurm job (submitit), ``jobs`` in flight at a time
    submitit-local   the Slurm code path run by submitit's local executor on this machine, so
                     the tests exercise it without a cluster

submitit's local executor starts every submitted job at once, so the runner itself holds
submissions back to ``jobs`` at a time (its pool has that many threads, each waiting on one
job). ``devices`` places rows one per GPU: a row takes a free device when it starts and returns
it when it ends, so no two rows in flight share one.

Every executor runs ``runner.execute_job`` on the row; it returns an outcome rather than
raising for a folder another runner holds, so the answer crosses process and cluster
boundaries intact.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

EXECUTORS = ("local", "slurm", "submitit-local")


@dataclass(frozen=True)
class ExecutorConfig:
    kind: str = "local"                         # one of EXECUTORS
    jobs: int = 2                               # rows in flight at a time
    devices: tuple[str, ...] = ()               # CUDA device indices for rows, e.g. ("0", "1")
    slurm: dict[str, Any] = field(default_factory=dict)  # submitit update_parameters, passed through
    folder: Path | None = None                  # submitit's job folder (logs, pickles)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"unknown executor {self.kind!r}; choose one of {EXECUTORS}")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}")

    @property
    def in_flight(self) -> int:
        """Rows at a time: ``jobs``, but never more rows than devices when devices are given."""
        return min(self.jobs, len(self.devices)) if self.devices else self.jobs


class DevicePool:
    """Free CUDA devices; a row takes one as it starts and gives it back when it ends."""

    def __init__(self, devices: tuple[str, ...]):
        self._free = [f"cuda:{d}" for d in devices]
        self._lock = threading.Lock()

    def take(self) -> str | None:
        with self._lock:
            return self._free.pop(0) if self._free else None

    def give_back(self, device: str | None) -> None:
        if device is not None:
            with self._lock:
                self._free.append(device)


def make_submit(config: ExecutorConfig) -> Callable[..., Any]:
    """A function ``submit(fn, *args, **kwargs) -> result`` that runs ``fn`` on the executor
    and blocks until it returns (called from one pool thread per row in flight)."""
    if config.kind == "local":
        return lambda fn, *args, **kwargs: fn(*args, **kwargs)
    import submitit

    folder = Path(config.folder or "runs/.submitit")
    executor = submitit.AutoExecutor(folder=folder / "%j",
                                     cluster="slurm" if config.kind == "slurm" else "local")
    params = {"timeout_min": 24 * 60, "name": "distilkit-row"}
    params.update(config.slurm)
    executor.update_parameters(**params)
    submit_lock = threading.Lock()     # submitit's executors are not documented as thread-safe

    def submit(fn, *args, **kwargs):
        with submit_lock:
            job = executor.submit(fn, *args, **kwargs)
        return job.result()

    return submit


def slurm_parameters(*, partition: str | None = None, time_min: int | None = None,
                     gpus_per_job: int | None = None, cpus_per_task: int | None = None,
                     mem_gb: float | None = None, extra: list[str] | None = None) -> dict[str, Any]:
    """submitit parameters from the ``--slurm-*`` flags; ``extra`` is ``KEY=VALUE`` items passed
    as ``slurm_KEY`` (e.g. ``account=ABC``, ``qos=high``, ``constraint=a100``)."""
    params: dict[str, Any] = {}
    if partition:
        params["slurm_partition"] = partition
    if time_min:
        params["timeout_min"] = int(time_min)
    if gpus_per_job is not None:
        params["gpus_per_node"] = int(gpus_per_job)
    if cpus_per_task is not None:
        params["cpus_per_task"] = int(cpus_per_task)
    if mem_gb is not None:
        params["mem_gb"] = float(mem_gb)
    for item in extra or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--slurm-param takes KEY=VALUE, got {item!r}")
        params[f"slurm_{key}"] = _number_or_text(value)
    return params


def _number_or_text(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


__all__ = ["EXECUTORS", "ExecutorConfig", "DevicePool", "make_submit", "slurm_parameters"]
