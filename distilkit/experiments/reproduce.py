"""The main job: Tables 4, 5 and 6 on the profile's data, teachers included, one command."""
from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from distilkit import paths
from distilkit.data.errors import DataError, UsageError
from distilkit.experiments.executors import ExecutorConfig
from distilkit.experiments.grid import table4_rows
from distilkit.experiments.initialisation import check_pretrained, uses_pretrained
from distilkit.experiments.plan import Recipe, Start, plan_jobs, store_decisions
from distilkit.experiments.progress import (EpochTimes, RowWatch, data_ready, estimate_line, format_duration,
                                            plan_lines, stage_line)
from distilkit.experiments.scheduling import waits_for
from distilkit.experiments.records import export_tables
from distilkit.experiments.runner import run_jobs, unique_runs
from distilkit.files import atomic_write_text
from distilkit.profiles import get_profile
from distilkit.provenance import git_commit
from distilkit.publish import PublishError, publish_models, verified_models

# Run-to-run noise: the Table 4 extremes are repeated at these extra seeds.
NOISE_ROWS = ("none", "all")
# torch.compile's kernels, shared by every row of a runs folder: only the first row of each
# compiled model type pays the compile (TORCHINDUCTOR_CACHE_DIR; a value already set is kept).
INDUCTOR_CACHE = ".inductor_cache"


def compile_cache_dir(runs_dir: Path) -> Path:
    """The inductor cache the rows of ``runs_dir`` use: the environment's, else the folder's."""
    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or Path(runs_dir) / INDUCTOR_CACHE)


@contextmanager
def inductor_cache(runs_dir: Path):
    """Row processes started inside compile into (and read from) ``compile_cache_dir``."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        yield Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
        return
    folder = Path(runs_dir) / INDUCTOR_CACHE
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)


def default_dirs(profile: str) -> tuple[Path, Path]:
    """runs/<profile> and results/ (cpu) or results/<profile>/ of the repository, wherever the
    caller stands: the table notebooks run inside notebooks/, the CLI may start anywhere."""
    return paths.runs_dir(profile), paths.results_dir(profile)


def run_tables(tables: list[int], *, profile: str = "cpu", seeds: int = 1, noise_seeds: int = 3,
               jobs: int = 2, runs_dir: str | Path | None = None, results_dir: str | Path | None = None,
               data_root: str | None = None, epochs: int | None = None, progress: bool = True,
               rows: list[str] | None = None, executor: ExecutorConfig | None = None, log=print,
               tensorboard: bool = False, figures: bool = False, start: Start = Start(),
               teacher_store: str = "auto", compile: bool | None = None,
               teacher_overrides: dict | None = None) -> dict:
    """Train the teachers the tables need (once), then every row whose folder is not finished,
    on ``executor`` (default: ``jobs`` local processes); then export the tables from the folders
    to ``results_dir``. ``rows`` runs only those row labels (and the teachers they need);
    ``tensorboard``: the runs trained now also write TensorBoard scalars into their folders;
    ``figures``: the figures follow (the estimate counts them). ``start``: the paper profile's
    initialisation files (MissingPretrained, before anything runs, when they are not given and
    ``start.scratch`` is off); ``teacher_store``: auto | on | off; ``compile`` False trains every
    model eager (None: as the profile chooses); ``teacher_overrides``: TrainConfig fields set on
    every teacher (``plan.Recipe``; bench/epoch_probe.py trains teachers at another batch size)."""
    recipe = Recipe(profile, data_root, epochs, compile, teacher_overrides or {})  # an unknown profile fails here
    data_root = recipe.data_root
    if not start.scratch:
        check_pretrained(start.pretrained, profile=profile)
    paths.require_repo("reproduce")
    if seeds < 1 or noise_seeds < 1 or jobs < 1:
        raise ValueError(f"seeds, noise_seeds and jobs must be at least 1 (got {seeds}, {noise_seeds}, {jobs})")
    executor = executor or ExecutorConfig(jobs=jobs)
    d_runs, d_results = default_dirs(profile)
    # absolute: each row's kernel runs with the notebooks folder as its working directory
    runs_dir = Path(runs_dir or d_runs).resolve()
    results_dir = Path(results_dir or d_results).resolve()
    if data_root is not None and not Path(data_root).is_dir():
        raise DataError(data_root, "not a folder (--data-root wants a COCO-layout folder)")
    # planned before the data stage: a mistyped row label fails at once
    runs = plan_runs(tables, recipe, seeds=seeds, noise_seeds=noise_seeds, runs_dir=runs_dir, rows=rows,
                     start=start, teacher_store=teacher_store)
    say = log if not progress else (lambda m: tqdm.write(m))
    times = EpochTimes.gather(runs_dir, paths.results_dir(profile))
    say(estimate_line(runs, times, executor.in_flight, data_ready=data_ready(profile, data_root),
                      figures=figures, compile_cache=compile_cache_dir(runs_dir)))
    say(stage_line("data", data_root or f"synthetic set '{get_profile(profile).synthetic}'"))
    t_data = time.perf_counter()
    if data_root is None:
        from distilkit.data.synthetic import ensure_synthetic
        synth = get_profile(profile).synthetic
        if synth:
            ensure_synthetic(synth, seed=0, progress=progress)
    data_wall = time.perf_counter() - t_data
    if tensorboard:   # not part of the recipe: the folders and hashes stay the same
        runs = [replace(j, config=replace(j.config, tensorboard=True)) for j in runs]
    for decision in store_decisions(runs, runs_dir, mode=teacher_store):
        say(decision.line())
    if executor.kind != "local" and executor.folder is None:
        executor = replace(executor, folder=runs_dir / ".submitit")
    t0 = time.perf_counter()
    watch = RowWatch(times, executor.in_flight, after_s=times.figures_seconds(figures))
    with tqdm(total=len(runs), desc=f"reproduce {profile}", unit="run", disable=not progress) as bar, \
            inductor_cache(runs_dir):
        failures = run_jobs(runs, executor=executor, cache_dir=runs_dir / ".notebooks", watch=watch,
                            bar=bar, log=lambda m: bar.write(m) if progress else log(m))
    wall = time.perf_counter() - t0
    export_tables(tables, runs_dir, results_dir, recipe)
    # slot-seconds no row used: waits for teachers and the tail (scheduling, rule 3)
    idle = executor.in_flight * wall - sum(watch.busy_s)
    return {"profile": profile, "tables": tables, "seeds": seeds, "noise_seeds": noise_seeds,
            "jobs": executor.in_flight, "executor": executor.kind, "wall_s": round(wall, 1), "runs": len(runs),
            "data_wall_s": round(data_wall, 1), "idle_slot_s": round(max(0.0, idle), 1), "compile": compile,
            "failures": [{"table": j.spec.table, "row": j.spec.row, "seed": j.seed, "error": e}
                         for j, e in failures],
            "results_dir": str(results_dir), "runs_dir": str(runs_dir),
            "data": data_root or f"synthetic set '{get_profile(profile).synthetic}'"}


def plan_text(tables: list[int], *, profile: str = "cpu", seeds: int = 1, noise_seeds: int = 3,
              runs_dir: str | Path | None = None, data_root: str | None = None, epochs: int | None = None,
              rows: list[str] | None = None, executor: ExecutorConfig | None = None,
              figures: bool = True, start: Start = Start(), teacher_store: str = "auto",
              compile: bool | None = None) -> str:
    """``reproduce --plan``: the runs, which are done, and the time the rest would take; at the
    paper profile each run's start, teacher, GPU-hours and teacher-store disk
    (``experiments.paper_plan``)."""
    executor = executor or ExecutorConfig()
    runs_dir = Path(runs_dir or default_dirs(profile)[0]).resolve()
    recipe = Recipe(profile, data_root, epochs, compile)
    data_root = recipe.data_root
    runs = plan_runs(tables, recipe, seeds=seeds, noise_seeds=noise_seeds, runs_dir=runs_dir, rows=rows,
                     start=start, teacher_store=teacher_store)
    if uses_pretrained(profile):
        from distilkit.experiments.paper_plan import paper_plan_lines
        decisions = store_decisions(runs, runs_dir, mode=teacher_store)
        return "\n".join(paper_plan_lines(runs, decisions, in_flight=executor.in_flight))
    times = EpochTimes.gather(runs_dir, paths.results_dir(profile))
    cache = compile_cache_dir(runs_dir)
    total = estimate_line(runs, times, executor.in_flight, data_ready=data_ready(profile, data_root),
                          figures=figures, compile_cache=cache)
    return "\n".join(plan_lines(runs, times, executor.in_flight, compile_cache=cache) + [total]
                     + reference_lines(paths.results_dir(profile)))


def reference_lines(results_dir: Path) -> list[str]:
    """What the committed reference and the previous one took, beside the plan's estimate."""
    lines, seen = [], set()
    for label, folder in (("the committed reference", results_dir),
                          ("the previous reference", results_dir / "previous_reference")):
        done = _reference_wall(folder)
        if done and done not in seen:
            seen.add(done)
            lines.append(f"{label} ({done[1]}, {done[2]} runs) took {format_duration(done[0])} for its runs")
    return lines


def _reference_wall(results_dir: Path) -> tuple[float, str, int] | None:
    """(runs wall seconds, commit, number of runs) of a reference's summary, if it has one."""
    try:
        summary = json.loads((Path(results_dir) / "reproduce_summary.json").read_text())
        return float(summary["wall_s"]), str(summary.get("git_commit", "?"))[:7], int(summary["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def plan_runs(tables: list[int], recipe: Recipe, *, seeds: int, noise_seeds: int, runs_dir: Path,
              rows: list[str] | None = None, start: Start = Start(), teacher_store: str = "auto") -> list:
    """The grid's runs, one per folder, teachers first; ``rows`` keeps those labels and the
    teachers they need (an unknown label is an error that lists the known ones)."""
    # also without Table 4: Table 5 shares its repeated rows and must show the same seeds
    extra = {(4, row): list(range(noise_seeds)) for row in NOISE_ROWS}
    teacher_jobs, row_jobs = plan_jobs(tables, recipe, seeds=list(range(seeds)), runs_dir=runs_dir,
                                       extra_seeds=extra, start=start, teacher_store=teacher_store)
    if rows is not None:
        known = list(dict.fromkeys(j.spec.row for j in row_jobs))
        unknown = [r for r in rows if r not in known]
        if unknown:
            raise UsageError(f"--rows: unknown row label(s) {unknown} for tables {tables}; known: {known}")
        row_jobs = [j for j in row_jobs if j.spec.row in rows]
        needed = {folder for j in row_jobs for folder in waits_for(j)}
        teacher_jobs = [j for j in teacher_jobs if j.run_dir in needed]
    return unique_runs(teacher_jobs + row_jobs)


def reproduce(*, profile: str = "cpu", tables: list[int] = (4, 5, 6), seeds: int = 1, noise_seeds: int = 3,
              jobs: int = 2, runs_dir=None, results_dir=None, data_root=None, epochs=None,
              progress: bool = True, figures: bool = True, rows: list[str] | None = None,
              executor: ExecutorConfig | None = None, tensorboard: bool = False, start: Start = Start(),
              teacher_store: str = "auto", compile: bool | None = None) -> dict:
    """Tables, then (``figures``) ``results/REPORT.md`` and the figures from the runs made."""
    summary = run_tables(list(tables), profile=profile, seeds=seeds, noise_seeds=noise_seeds, jobs=jobs,
                         runs_dir=runs_dir, results_dir=results_dir, data_root=data_root, epochs=epochs,
                         progress=progress, rows=rows, executor=executor, tensorboard=tensorboard,
                         figures=figures, start=start, teacher_store=teacher_store, compile=compile)
    summary.update(git_commit=git_commit(), machine={
        "platform": platform.platform(), "processor": platform.machine(),
        "cpus": __import__("os").cpu_count(), "python": platform.python_version(),
        "torch": __import__("torch").__version__})
    out = Path(summary["results_dir"]) / "reproduce_summary.json"
    _write_summary(out, summary)
    if figures:
        print(stage_line("report", "REPORT.md and the figures"), flush=True)
    if figures and data_root is None:  # the viz notebooks read the profile's own data
        from distilkit.experiments.figures import render_figures

        models = _publish(profile, summary)
        rendered = render_figures(profile=profile, results_dir=summary["results_dir"],
                                  runs_dir=summary["runs_dir"], progress=progress, models=models,
                                  tables=tuple(tables), epochs=epochs)
        summary.update(figures_wall_s=rendered["wall_s"], figure_failures=rendered["failures"],
                       published_notebooks=rendered.get("published", {}).get("total_bytes"))
        _write_summary(out, summary)
    elif figures:  # no viz notebooks on a user's data, but the report reads only the CSVs
        from distilkit.experiments.report import write_report

        write_report(summary["results_dir"])
    return summary


def _publish(profile: str, summary: dict) -> dict[str, Path] | None:
    """The figure models, published compact beside the results (``distilkit.publish``), so a
    fresh clone's notebooks show them; the figures are then drawn from those very files.
    None (figures from the runs) when a role's run failed or the files would be too large."""
    out = Path(summary["results_dir"]) / "models"
    try:
        manifest = publish_models(profile, runs_root=summary["runs_dir"], out_dir=out)
    except PublishError as err:
        print(f"models not published: {err}", flush=True)
        return None
    summary["published_models"] = {"dir": paths.relative_to_repo(out), "total_bytes": manifest.get("total_bytes")}
    return verified_models(out)


def _write_summary(path: Path, summary: dict) -> None:
    """The committed summary names its folders relative to the repository, not this machine."""
    portable = {**summary, "results_dir": paths.relative_to_repo(summary["results_dir"]),
                "runs_dir": paths.relative_to_repo(summary["runs_dir"])}
    atomic_write_text(path, json.dumps(portable, indent=2))


__all__ = ["reproduce", "run_tables", "table4_rows", "NOISE_ROWS"]
