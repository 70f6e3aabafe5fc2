"""Can the cpu profile train fewer student epochs, or its teachers at batch 32, and keep every
claim? (issue 39). Not a test: a probe to run by hand, niced; 26 runs, about 2 h 40 min on 2 cores.

    nice -n 10 .venv/bin/python bench/epoch_probe.py            # all three settings
    .venv/bin/python bench/epoch_probe.py --plan                 # the runs and the estimate only

It trains the Table 4 rows whose claims sit closest to their margins -- ``none`` and ``all`` at
``--noise-seeds`` seeds (3, as the main job), ``CS``, ``KT`` and ``all (masked L_SH)`` at one --
and their HRNet-W48 teacher, through the main job's own machinery (``run_tables`` with a
``plan.Recipe``: compiled models, shared teacher outputs, the runner's progress lines), at
three settings, one factor changed at a time:

  today            the profile's recipe (cpu: 8 student epochs, teachers at batch 16)
  students<N>      students for ``--student-epochs`` epochs (6), teachers as today
  teachers_b<N>    teachers at batch ``--teacher-batch`` (32; ``Recipe.teacher_overrides``),
                   students as today

Each setting trains in its own runs folder, ``--runs-dir``/<setting> (``runs/epoch_probe/``);
``--today-runs runs/cpu`` takes today's runs from the main job's own folders (a main job of
this commit has them all, so that setting trains nothing). A run one setting shares with
another (today's teacher with students<N>, today's ``none`` rows with teachers_b<N>: the same
recipe, so the same folder name) is trained once and linked into the other's folder. All the
probe's runs share one inductor cache (``--runs-dir``/.inductor_cache), so each compiled model
type is compiled once for the probe, not once per setting.

It writes ``--out`` (``results/epoch_probe.csv``), rewritten after each setting (a stopped
probe keeps what it has; run again, it resumes: finished runs are skipped). One line per
``kind``: ``run`` (each run: AP in percent as ``distilkit.units`` gives it, err_px, score_auc),
``row`` (each row over its seeds: mean, min, max), ``margins`` (the setting's seed margins, by
the report's rule: ``report_claims.noise_margins`` of its rows) and ``claim`` (each claim the
report judges whose rows the probe trains, judged by the report's own ``conclusions`` with
those margins; and the L_CS ranking, ``report_confidence.score_ranking_verdict``, on the
probe's rows only). Every setting whose folder exists is in it, whichever ``--settings`` ran.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from distilkit import paths  # noqa: E402
from distilkit.experiments.plan import Job, Recipe  # noqa: E402
from distilkit.experiments.progress import (EpochTimes, format_duration, plan_lines, row_label,  # noqa: E402
                                            runs_seconds)
from distilkit.experiments.records import TEACHER_TABLE, collect_table, final_metrics  # noqa: E402
from distilkit.experiments.report_claims import conclusions, noise_margins  # noqa: E402
from distilkit.experiments.report_confidence import score_ranking, score_ranking_verdict  # noqa: E402
from distilkit.experiments.report_tables import summarize  # noqa: E402
from distilkit.experiments.reproduce import (NOISE_ROWS, compile_cache_dir, inductor_cache,  # noqa: E402
                                             plan_runs, run_tables)
from distilkit.files import atomic_write_text  # noqa: E402
from distilkit.units import UNIT_COLUMN, PERCENT  # noqa: E402

ROWS = ("none", "CS", "KT", "all", "all (masked L_SH)")
TEACHER_ROW = "HRNet-W48 (teacher)"
CLAIM_TEACHER = "teacher"         # how report_claims.conclusions names the teacher in its comparisons
SCORE_CLAIM = "L_CS ranks keypoints (probed rows)"
COLUMNS = ("setting", "student_epochs", "teacher_batch", "kind", "row", "seed", "seeds", "AP", "err_px",
           "score_auc", "AP_min", "AP_max", "err_min", "err_max", "claim", "claim_key", "held_by_ap",
           "held_by_err", "held_by_score_auc", "ap_gain", "err_gain", "ap_margin", "err_margin", "auc_margin",
           "ap_range", "err_range", "seeds_apart_by_ap", "seeds_apart_by_err", "config_hash", "run_dir",
           UNIT_COLUMN)


@dataclass(frozen=True)
class Setting:
    """One point of the probe: None keeps the profile's value."""

    name: str
    student_epochs: int | None = None
    teacher_batch: int | None = None

    def recipe(self, profile: str) -> Recipe:
        teacher = {"batch_size": self.teacher_batch} if self.teacher_batch else {}
        return Recipe(profile, None, self.student_epochs, teacher_overrides=teacher)


def make_settings(student_epochs: int, teacher_batch: int) -> dict[str, Setting]:
    """--settings key -> setting: today's recipe and one factor changed at a time."""
    return {"today": Setting("today"),
            "students": Setting(f"students{student_epochs}", student_epochs=student_epochs),
            "teachers": Setting(f"teachers_b{teacher_batch}", teacher_batch=teacher_batch)}


@dataclass(frozen=True)
class Probe:
    """What one invocation probes: the settings, their folders, the rows."""

    profile: str
    root: Path                     # --runs-dir: the probe's folders, exports and inductor cache
    settings: dict[str, Setting]
    dirs: dict[str, Path]          # setting name -> its runs folder
    rows: tuple[str, ...]
    noise_seeds: int
    jobs: int

    def runs(self, setting: Setting) -> list[Job]:
        return plan_runs([4], setting.recipe(self.profile), seeds=1, noise_seeds=self.noise_seeds,
                         runs_dir=self.dirs[setting.name], rows=list(self.rows))

    def run_kw(self, setting: Setting, results_dir: Path) -> dict:
        return dict(profile=self.profile, seeds=1, noise_seeds=self.noise_seeds, jobs=self.jobs,
                    runs_dir=self.dirs[setting.name], results_dir=results_dir, rows=list(self.rows),
                    epochs=setting.student_epochs,
                    teacher_overrides=dict(setting.recipe(self.profile).teacher_overrides))


# ----------------------------------------------------------------------------- shared runs
def shared_run(job: Job, folder: Path, others: list[Path]) -> Path | None:
    """A finished run of ``job``'s recipe in another setting's folder (the same relative folder
    name: the same model, config hash and seed), or None."""
    relative = job.run_dir.relative_to(folder)
    for other in others:
        if final_metrics(other / relative, job.config.hash()) is not None:
            return other / relative
    return None


def link_shared_runs(jobs: list[Job], folder: Path, others: list[Path], log=print) -> int:
    """Link each run not started here that another setting finished: it is the same experiment,
    so training it again would only cost time. Returns how many were linked."""
    linked = 0
    for job in jobs:
        if os.path.lexists(job.run_dir):
            continue
        source = shared_run(job, folder, others)
        if source is not None:
            job.run_dir.parent.mkdir(parents=True, exist_ok=True)
            job.run_dir.symlink_to(source.resolve(), target_is_directory=True)
            log(f"   {row_label(job)}: the same recipe finished in {source}; linked, not trained again")
            linked += 1
    return linked


def setting_estimate(probe: Probe, setting: Setting, earlier: set, times: EpochTimes,
                     cache: Path) -> tuple[list[Job], float]:
    """(runs this setting will train, their wall seconds at ``probe.jobs`` at a time): its
    runs but those an earlier setting of this invocation trains (``earlier``: folder names
    relative to their setting's folder) or another setting finished, which are linked."""
    folder = probe.dirs[setting.name]
    others = [probe.dirs[s.name] for s in probe.settings.values() if s != setting]
    runs = [j for j in probe.runs(setting) if j.run_dir.relative_to(folder) not in earlier
            and (os.path.lexists(j.run_dir) or shared_run(j, folder, others) is None)]
    return runs, runs_seconds(runs, times, probe.jobs, cache)


def probe_estimate(probe: Probe, chosen: list[Setting], cache: Path) -> tuple[list[str], float]:
    """Per setting the plan's lines and the runs it trains; the probe's total wall seconds."""
    lines, total, planned = [], 0.0, set()
    times = EpochTimes.gather(probe.root, paths.results_dir(probe.profile))
    for setting in chosen:
        folder = probe.dirs[setting.name]
        runs, seconds = setting_estimate(probe, setting, planned, times, cache)
        all_runs = probe.runs(setting)
        lines += [f"== {setting.name} ({describe(all_runs)}), {folder} =="]
        lines += plan_lines(runs, times, probe.jobs, compile_cache=cache)
        lines.append(f"{len(all_runs) - len(runs)} of {len(all_runs)} runs shared with another setting "
                     "(linked, not trained)")
        planned |= {j.run_dir.relative_to(folder) for j in all_runs}
        total += seconds
    return lines, total


def describe(runs: list[Job]) -> str:
    """The setting's recipe as its planned configs say it: student epochs, teacher batch."""
    values = setting_values(runs)
    return f"students {values['student_epochs']} epochs, teachers at batch {values['teacher_batch']}"


def setting_values(runs: list[Job]) -> dict:
    teachers = [j.config for j in runs if j.config.losses.heatmap]
    students = [j.config for j in runs if not j.config.losses.heatmap]
    return {"student_epochs": students[0].schedule().epochs if students else "",
            "teacher_batch": teachers[0].schedule().batch_size if teachers else ""}


# ----------------------------------------------------------------------------- the CSV
def _number(value) -> float:
    return float(pd.to_numeric(value, errors="coerce"))


def run_lines(frame: pd.DataFrame) -> list[dict]:
    return [{"kind": "run", "row": r["row"], "seed": int(r["seed"]), "AP": _number(r["AP"]),
             "err_px": _number(r["err_px"]), "score_auc": _number(r["score_auc"]),
             "config_hash": r["config_hash"], "run_dir": r["run_dir"]} for _, r in frame.iterrows()]


def row_lines(summary: pd.DataFrame) -> list[dict]:
    keep = ("row", "seeds", "AP", "err_px", "score_auc", "AP_min", "AP_max", "err_min", "err_max")
    return [{"kind": "row", **{k: r[k] for k in keep}} for _, r in summary.iterrows()]


def _held(value) -> str:
    return "" if value is None else str(bool(value))


def claim_lines(summary: pd.DataFrame, students: pd.DataFrame, teacher: pd.DataFrame, margins: dict,
                rows: tuple[str, ...]) -> list[dict]:
    """The report's claims whose every compared row the probe trains, judged as the report
    judges them (``conclusions`` with the measured margins); then the L_CS ranking on these rows."""
    empty = pd.DataFrame()
    probed = set(rows) | ({CLAIM_TEACHER} if len(teacher) else set())
    lines = []
    for c in conclusions(summary, empty, empty, teacher, ap_margin=margins["ap"], err_margin=margins["err"]):
        if not c.comparisons or any({p.better, p.worse} - probed for p in c.comparisons):
            continue
        lines.append({"kind": "claim", "claim_key": c.key, "claim": c.claim, "seeds": c.n_seeds,
                      "held_by_ap": _held(c.held_by_ap), "held_by_err": _held(c.held_by_err),
                      "ap_gain": min(p.ap_gain for p in c.comparisons),
                      "err_gain": min(p.err_gain for p in c.comparisons),
                      "ap_margin": c.ap_margin, "err_margin": c.err_margin,
                      "seeds_apart_by_ap": _held(c.seeds_apart_by_ap),
                      "seeds_apart_by_err": _held(c.seeds_apart_by_err)})
    ranking = score_ranking(students)
    if ranking is not None:
        verdict = score_ranking_verdict(ranking)
        lines.append({"kind": "claim", "claim_key": "score_auc", "claim": SCORE_CLAIM,
                      "held_by_score_auc": _held(verdict["held"]), "auc_margin": verdict["margin"]})
    return lines


def setting_lines(probe: Probe, setting: Setting) -> list[dict]:
    """Every line of one setting, read from its run folders (only the probe's rows)."""
    folder, recipe = probe.dirs[setting.name], setting.recipe(probe.profile)
    students = collect_table(4, folder, recipe)
    students = students[students["row"].isin(probe.rows) & students["AP"].notna()]
    teachers = collect_table(TEACHER_TABLE, folder, recipe)
    teachers = teachers[(teachers["row"] == TEACHER_ROW) & teachers["AP"].notna()]
    margins = noise_margins(students)
    summary = summarize(students, 4)
    lines = run_lines(teachers) + run_lines(students)
    lines += row_lines(summarize(teachers, TEACHER_TABLE)) + row_lines(summary)
    lines.append({"kind": "margins", "seeds": margins["seeds"], "ap_margin": margins["ap"],
                  "err_margin": margins["err"], "ap_range": margins["ap_range"],
                  "err_range": margins["err_range"]})
    claim_teacher = pd.DataFrame([{"AP": _number(t["AP"]), "err_px": _number(t["err_px"])}
                                  for _, t in teachers.iterrows()])
    lines += claim_lines(summary, students, claim_teacher, margins, probe.rows)
    values = setting_values(probe.runs(setting))
    return [{"setting": setting.name, **values, **line, UNIT_COLUMN: PERCENT} for line in lines]


def write_csv(probe: Probe, out: Path) -> pd.DataFrame:
    """The CSV of every setting whose folder exists, written atomically (a reader never sees
    half a file; an interrupted write leaves the previous one)."""
    lines = []
    for setting in probe.settings.values():
        if probe.dirs[setting.name].is_dir():
            lines += setting_lines(probe, setting)
    frame = pd.DataFrame(lines, columns=list(COLUMNS))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, frame.to_csv(index=False, float_format="%.6g"))
    return frame


# ----------------------------------------------------------------------------- main
def run_probe(probe: Probe, chosen: list[Setting], out: Path, log=print) -> list:
    """Each chosen setting in turn through ``run_tables``; the CSV rewritten after each."""
    failures, runs_root = [], probe.root
    with inductor_cache(runs_root) as cache:
        try:
            for i, setting in enumerate(chosen, 1):
                folder = probe.dirs[setting.name]
                _, left = probe_estimate(probe, chosen[i - 1:], cache)
                log(f"== epoch probe: setting {i}/{len(chosen)} '{setting.name}' "
                    f"({describe(probe.runs(setting))}) in {folder}; the probe's ETA "
                    f"~{format_duration(left)} ==")
                others = [probe.dirs[s.name] for s in probe.settings.values() if s != setting]
                if folder.is_relative_to(runs_root):    # never into a folder the probe does not own
                    link_shared_runs(probe.runs(setting), folder, others, log)
                summary = run_tables([4], **probe.run_kw(setting, runs_root / "results" / setting.name))
                failures += summary["failures"]
                write_csv(probe, out)
                log(f"== epoch probe: '{setting.name}' done, {out} rewritten ==")
        finally:     # stopped or failed: the CSV keeps every run finished so far
            with contextlib.suppress(Exception):
                write_csv(probe, out)
    return failures


def parse_args(argv: list[str] | None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu", help="the profile whose recipe is probed (tests: smoke)")
    ap.add_argument("--settings", default="today,students,teachers",
                    help="which settings to train, in this order (comma-separated)")
    ap.add_argument("--student-epochs", type=int, default=6, help="the students setting's epochs")
    ap.add_argument("--teacher-batch", type=int, default=32, help="the teachers setting's batch size")
    ap.add_argument("--runs-dir", type=Path, default=None, help="default: runs/epoch_probe")
    ap.add_argument("--today-runs", type=Path, default=None,
                    help="today's runs folder (default: RUNS_DIR/today; runs/cpu: the main job's)")
    ap.add_argument("--out", type=Path, default=None, help="default: results/epoch_probe.csv")
    ap.add_argument("--jobs", type=int, default=2, help="rows at a time, as the main job")
    ap.add_argument("--noise-seeds", type=int, default=3, help=f"seeds of {' and '.join(NOISE_ROWS)}")
    ap.add_argument("--rows", default=",".join(ROWS), help="a subset of the probe's rows (tests)")
    ap.add_argument("--plan", action="store_true", help="print the runs and the estimate; train nothing")
    args = ap.parse_args(argv)
    settings = make_settings(args.student_epochs, args.teacher_batch)
    chosen = args.settings.split(",")
    rows = tuple(args.rows.split(","))
    bad = [s for s in chosen if s not in settings] + [r for r in rows if r not in ROWS]
    if bad or args.jobs < 1 or args.noise_seeds < 1:
        ap.error(f"unknown settings or rows {bad} (settings: {list(settings)}; rows: {list(ROWS)}), "
                 "or --jobs / --noise-seeds under 1")
    return args, settings, [settings[s] for s in chosen], rows


def main(argv: list[str] | None = None) -> int:
    args, settings, chosen, rows = parse_args(argv)
    # given paths from the working folder, as any command's; the defaults in the repository
    runs_root = (args.runs_dir or paths.repo_root() / "runs" / "epoch_probe").resolve()
    dirs = {s.name: runs_root / s.name for s in settings.values()}
    if args.today_runs is not None:
        dirs["today"] = args.today_runs.resolve()
    probe = Probe(args.profile, runs_root, settings, dirs, rows, args.noise_seeds, args.jobs)
    out = (args.out or paths.repo_root() / "results" / "epoch_probe.csv").resolve()
    if args.plan:
        lines, total = probe_estimate(probe, chosen, compile_cache_dir(runs_root))
        print("\n".join(lines + [f"the probe: ~{format_duration(total)} at {args.jobs} rows at a time"]))
        return 0
    failures = run_probe(probe, chosen, out)
    print(f"wrote {out}; {len(failures)} failed runs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
