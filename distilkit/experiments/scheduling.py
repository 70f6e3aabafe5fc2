"""In which order ready runs take free slots, and when a shared teacher store may be removed.

The main job's time is its slots' busy time plus their idle time. Three rules keep both low:

1. Teachers first, the one most rows wait for first: every distilled row waits on its teacher,
   so a teacher is on the job's critical path.
2. A row whose teacher outputs are being written by a running row starts after the rows that
   need no such wait: started beside the writer it would run the teacher itself for every
   epoch (the writer is never waited for), started after it reads every epoch from the store.
   When nothing else is ready it starts anyway; a slot is never left idle.
3. Longest first among the rest (estimated from measured epoch times), so the job does not end
   with one long row on one slot while the other idles.

``simulate`` plays these rules on a clock with estimated row times: ``reproduce --plan``'s
estimate and its idle slot-seconds (what the runner reports after a run in
``reproduce_summary.json``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from distilkit.experiments.plan import Job


def teacher_dir(job: Job) -> Path | None:
    return Path(job.config.teacher).parent if job.config.teacher else None


def waits_for(job: Job) -> list[Path]:
    """The run folders ``job`` needs finished before it starts: its teacher's, and the run whose
    checkpoint its weights start from (DistilPose-L at the paper profile: the HRNet-W48 teacher)."""
    from distilkit.experiments.initialisation import teacher_run_of

    found = [teacher_dir(job), teacher_run_of(job.config.init_backbone)]
    return list(dict.fromkeys(p for p in found if p is not None))


def store_key(job: Job) -> tuple[str, int] | None:
    """Rows with the same key share one teacher-output store (distilkit.teacher_store)."""
    if not (job.config.teacher and job.config.teacher_store):
        return None
    return job.config.teacher, job.seed


def start_order(ready: list[Job], *, running: Iterable[Job], waiting: Iterable[Job],
                seconds: Callable[[Job], float]) -> list[Job]:
    """``ready`` in the order they should take free slots (the module's three rules)."""
    dependents = Counter(folder for j in waiting for folder in waits_for(j))
    being_written = {store_key(j) for j in running} - {None}

    def priority(job: Job) -> tuple:
        is_teacher = bool(job.config.losses.heatmap)
        behind_writer = store_key(job) in being_written
        return (not is_teacher, -dependents[job.run_dir] if is_teacher else 0, behind_writer,
                -seconds(job))

    return sorted(ready, key=priority)


def finished_stores(settled: Job, *, running: Iterable[Job], waiting: Iterable[Job]) -> list[tuple[str, str]]:
    """(store root, teacher checkpoint) pairs no row still needs once ``settled`` is done."""
    if store_key(settled) is None:
        return []
    teacher = settled.config.teacher
    if any(j.config.teacher == teacher for j in [*running, *waiting]):
        return []
    return [(settled.config.teacher_store, teacher)]


@dataclass(frozen=True)
class Schedule:
    """A simulated run of the pool: its wall time and the slot-seconds no row used."""

    wall_s: float
    idle_slot_s: float
    tail_idle_slot_s: float     # of those, once no row was left to start


def simulate(jobs: list[Job], *, in_flight: int, seconds: Callable[[Job], float]) -> Schedule:
    """The runner's pool on a clock: ``in_flight`` slots, rows taken in ``start_order`` as
    slots free up, a row ready once the runs it waits for (``waits_for``) that are among
    ``jobs`` have finished; those outside ``jobs`` are taken as done (the runner's rule too)."""
    planned = {j.run_dir for j in jobs}
    todo, running, finished = list(jobs), [], set()
    now = idle = tail = 0.0
    while todo or running:
        ready = [j for j in todo if all(p not in planned or p in finished for p in waits_for(j))]
        while ready and len(running) < in_flight:
            job = start_order(ready, running=[j for _, j in running], waiting=todo, seconds=seconds)[0]
            ready.remove(job)
            todo.remove(job)
            running.append((now + seconds(job), job))
        if not running:
            break            # what is left waits on a teacher that never runs
        running.sort(key=lambda item: item[0])
        end, done = running.pop(0)
        gap = (in_flight - len(running) - 1) * (end - now)
        idle += gap
        tail += gap if not todo else 0.0
        now = end
        finished.add(done.run_dir)
    return Schedule(wall_s=now, idle_slot_s=idle, tail_idle_slot_s=tail)


__all__ = ["start_order", "finished_stores", "store_key", "teacher_dir", "waits_for", "simulate", "Schedule"]
