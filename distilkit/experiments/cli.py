"""``distilkit reproduce``: the main job from the command line."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from distilkit.cli_args import HelpFormatter, positive_int
from distilkit.experiments.grid import TABLES
from distilkit.experiments.plan import Recipe
from distilkit.experiments.reproduce import default_dirs, plan_runs, plan_text, reproduce
from distilkit.profiles import PROFILES

DESCRIPTION = """The main job: trains the teachers and every row of the paper's ablation Tables 4, 5 and 6
(cpu profile: about 2.5 hours on 2 cores), then writes results/table*.csv (AP in percent),
REPORT.md and the figures. Finished rows are kept: run it again to resume after a stop."""
EXAMPLES = """examples:
  distilkit reproduce                                    # the main job, cpu profile, 2 rows at a time
  distilkit reproduce --plan                             # what is done, what is left, how long
  distilkit reproduce --tables 4 --rows none all         # two rows of Table 4 and their teacher
  distilkit reproduce --profile cpu --devices 0,1,2,3    # one row per GPU on a 4-GPU node
  distilkit reproduce --profile paper --plan             # the paper grid: starts, GPU-hours, disk
  distilkit reproduce --profile paper --rehearse --pretrained ~/weights   # every row, 3 steps each
  distilkit reproduce --executor slurm --jobs 32 --slurm-partition gpu --slurm-gpus-per-job 1 \\
      --slurm-time 240                                   # each row a Slurm job, 32 in flight
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=sorted(PROFILES), default="cpu",
                   help="run scale: smoke (minutes, the tests'), cpu (the reference), paper (real COCO)")
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds per row (0..N-1)")
    p.add_argument("--noise-seeds", type=positive_int, default=3,
                   help="seeds for the Table 4 extremes (none / all), to measure run-to-run noise")
    p.add_argument("--jobs", type=positive_int, default=2,
                   help="rows in flight at a time (local: processes of one thread each on a CPU)")
    p.add_argument("--data-root", help="COCO-layout folder; default: the profile's synthetic set")
    p.add_argument("--epochs", type=positive_int, help="override the students' epochs")
    p.add_argument("--runs-dir", help="where the run folders go; default: runs/<profile> of the repository")
    p.add_argument("--results-dir", help="where the tables, REPORT.md and figures go; default: results/ (cpu) or results/<profile>/")
    p.add_argument("--no-progress", action="store_true", help="plain lines instead of live progress bars")
    p.add_argument("--no-compile", dest="compile", action="store_const", const=False, default=None,
                   help="train every model eager (the cpu profile compiles the transformer and HRNet "
                        "models, sharing RUNS_DIR/.inductor_cache); compiled and eager runs have their "
                        "own config hashes, so their own run folders")


def _executor_flags(p: argparse.ArgumentParser) -> None:
    from distilkit.experiments.executors import EXECUTORS

    g = p.add_argument_group("where rows run")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local processes, Slurm jobs (submitit), or submitit's local executor")
    g.add_argument("--devices", help="CUDA devices for rows, one row per device, e.g. 0,1,2,3")
    g.add_argument("--rows", nargs="+", metavar="LABEL", help="only these row labels (and their teachers)")
    g.add_argument("--slurm-partition", help="Slurm partition the rows are submitted to")
    g.add_argument("--slurm-time", type=int, metavar="MIN", help="time limit per row, minutes")
    g.add_argument("--slurm-gpus-per-job", type=int, help="GPUs per row's job")
    g.add_argument("--slurm-cpus-per-task", type=int, help="CPUs per row's job")
    g.add_argument("--slurm-mem-gb", type=float, help="memory per row's job, GB")
    g.add_argument("--slurm-param", action="append", default=[], metavar="KEY=VALUE",
                   help="any other sbatch option, passed to submitit as slurm_KEY (repeatable)")


def executor_from_args(args: argparse.Namespace):
    from distilkit.experiments.executors import ExecutorConfig, slurm_parameters

    devices = tuple(d.strip() for d in args.devices.split(",") if d.strip()) if args.devices else ()
    slurm = slurm_parameters(partition=args.slurm_partition, time_min=args.slurm_time,
                             gpus_per_job=args.slurm_gpus_per_job, cpus_per_task=args.slurm_cpus_per_task,
                             mem_gb=args.slurm_mem_gb, extra=args.slurm_param)
    return ExecutorConfig(kind=args.executor, jobs=args.jobs, devices=devices, slurm=slurm)


def _start(args, *, check: bool = True):
    """Where runs start (``plan.Start``): at the paper profile the --pretrained files, checked
    (MissingPretrained) unless this is a --plan, which marks them missing instead."""
    from distilkit.experiments.initialisation import check_pretrained
    from distilkit.experiments.plan import Start

    if args.no_pretrained:
        return Start(scratch=True)
    if not check or (args.plan and not args.rehearse):
        return Start(pretrained=Path(args.pretrained).expanduser().resolve() if args.pretrained else None)
    return Start(pretrained=check_pretrained(args.pretrained, profile=args.profile))


def _reproduce(args) -> int:
    start = _start(args)        # before anything runs: a missing file is one error: line, exit 2
    if args.rehearse:
        from distilkit.experiments.rehearse import rehearse
        return rehearse(profile=args.profile, start=start, data_root=args.data_root, runs_dir=args.runs_dir,
                        tables=args.tables, rows=args.rows)
    common = dict(seeds=args.seeds, noise_seeds=args.noise_seeds, runs_dir=args.runs_dir, data_root=args.data_root,
                  epochs=args.epochs, rows=args.rows, executor=executor_from_args(args), start=start,
                  teacher_store=args.teacher_store, compile=args.compile)
    if args.plan:
        print(plan_text(args.tables, profile=args.profile, figures=not args.no_figures, **common))
        return 0

    summary = reproduce(profile=args.profile, tables=args.tables, jobs=args.jobs, results_dir=args.results_dir,
                        progress=not args.no_progress, figures=not args.no_figures,
                        tensorboard=args.tensorboard, **common)
    keys = ("profile", "executor", "wall_s", "runs", "failures", "figures_wall_s", "figure_failures")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=1))
    return 1 if summary["failures"] or summary.get("figure_failures") else 0


def _paper_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the paper profile")
    g.add_argument("--pretrained", metavar="DIR",
                   help="folder holding hrnet_w48.pth and resnet50.pth (ImageNet weights) the paper rows "
                        "start from; required at --profile paper (docs/PAPER_GRID.md: 'Pretrained weights "
                        "for the paper profile')")
    g.add_argument("--no-pretrained", action="store_true",
                   help="train every paper row from scratch, on purpose")
    g.add_argument("--rehearse", action="store_true",
                   help="dress rehearsal: seed 0 of each unique row at full size, batch 2, 3 steps, "
                        "16 val images; one line per row with step time, peak memory and projections")
    g.add_argument("--teacher-store", choices=("auto", "on", "off"), default="auto",
                   help="share teacher outputs between rows: auto = only where the estimate fits under "
                        "50 GB and the free disk; on = always (the estimate is printed)")


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="the main job: Tables 4, 5, 6 with their teachers",
                              description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter)
    _common(p)
    p.add_argument("--tables", type=int, nargs="+", default=[4, 5, 6], choices=sorted(TABLES),
                   help="which of the paper's ablation tables to run (teachers come along); 7: bring your "
                        "own (timm students, notebooks/bring_your_own.py)")
    p.add_argument("--plan", action="store_true",
                   help="print the runs, which are done, and the estimated time; train nothing")
    p.add_argument("--no-figures", action="store_true",
                   help="skip REPORT.md and the figures (report and viz notebooks) after the tables")
    p.add_argument("--tensorboard", action="store_true",
                   help="the runs trained now also write TensorBoard scalars into their folders "
                        "(distilkit train --tensorboard; view: tensorboard --logdir runs/cpu)")
    _executor_flags(p)
    _paper_flags(p)
    p.set_defaults(func=_reproduce, interrupted=_finished_runs)


def _finished_runs(args) -> str:
    """What an interrupted reproduce keeps: its finished runs (skipped when it runs again; runs
    in flight continue from their last.pt)."""
    from distilkit.experiments.records import is_finished

    runs_dir = Path(args.runs_dir or default_dirs(args.profile)[0]).resolve()
    runs = plan_runs(args.tables, Recipe(args.profile, args.data_root, args.epochs, args.compile), seeds=args.seeds,
                     noise_seeds=args.noise_seeds, runs_dir=runs_dir, rows=args.rows,
                     start=_start(args, check=False))
    done = sum(is_finished(job) for job in runs)
    return (f"{done} of {len(runs)} runs finished and kept in {runs_dir} (skipped when it runs "
            "again; runs in flight continue from their last.pt)")
