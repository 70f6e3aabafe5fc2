"""Which run folders a grid needs: one per (row, seed), named by the row's config hash.

A folder's name is a function of the recipe alone (model, config hash, seed), so the same grid
planned twice, by two runners or by ``collect_table``, names the same folders, and a row of
another recipe (a changed profile or kit) never lands in a folder of this one. Teachers live in
``runs/<profile>/teachers/<key>-<hash>/`` and are shared by every row that distils from them.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from distilkit.engine.config import TrainConfig
from distilkit.experiments.grid import TABLES, RunSpec, teacher_run, teachers_needed
from distilkit.experiments.initialisation import FROM_TEACHER, init_source, uses_pretrained
from distilkit.profiles import get_profile
from distilkit.teacher_store_budget import COCO_TRAIN_INSTANCES, StoreDecision, bytes_per_crop, decide


TEACHER_STORE = ".teacher_outputs"     # under the runs folder


@dataclass
class Job:
    spec: RunSpec
    seed: int
    run_dir: Path
    config: TrainConfig

    @property
    def key(self) -> tuple[str, str]:
        return self.config.hash(), str(self.seed)


def folder_safe(model: str) -> str:
    """A model name as part of a folder name: a spec's ``:timm/`` and any other character
    beyond letters, digits, ``_``, ``.`` and ``-`` become ``_`` (presets are unchanged)."""
    return re.sub(r"[^\w.-]", "_", model.replace(":timm/", "_"))


def unique_runs(jobs: list[Job]) -> list[Job]:
    """One job per folder: rows of two tables that are the same experiment share one run."""
    seen: dict[Path, Job] = {}
    for job in jobs:
        seen.setdefault(job.run_dir, job)
    return list(seen.values())


# What the planner sets for every run itself; a row's overrides may not change them.
PLANNED_FIELDS = ("out_dir", "seed", "profile", "data_root", "teacher", "teacher_store")


@dataclass(frozen=True)
class Recipe:
    """What every run of a grid shares: the profile, the data (None: the profile's synthetic
    set), an override of the students' epochs, whether models train compiled (None: the
    models the profile compiles, its ``compiled_models``), and ``TrainConfig`` fields set on
    every teacher's config (``teacher_overrides``: a dict, held as sorted (field, value) pairs;
    empty: the teachers' hashes as they always were). ``data_root`` is held resolved, so two
    spellings of one folder plan the same runs."""

    profile: str = "cpu"
    data_root: str | None = None
    epochs: int | None = None
    compile: bool | None = None
    teacher_overrides: tuple = ()

    def __post_init__(self):
        get_profile(self.profile)      # an unknown profile fails here, naming the known ones
        if self.data_root is not None:
            object.__setattr__(self, "data_root", str(Path(self.data_root).expanduser().resolve()))
        object.__setattr__(self, "teacher_overrides", tuple(sorted(dict(self.teacher_overrides).items())))


def make_config(spec: RunSpec, recipe: Recipe, *, seed: int, run_dir: Path, teacher_ckpt: Path | None,
                progress: bool = False) -> TrainConfig:
    """The row's whole recipe: its model, losses and teacher, then its ``overrides``."""
    planned = sorted(set(spec.overrides) & set(PLANNED_FIELDS))
    if planned:
        raise ValueError(f"table {spec.table} row {spec.row!r}: overrides may not set {planned} "
                         "(the planner sets them for every run)")
    config = TrainConfig(out_dir=str(run_dir), model=spec.model, profile=recipe.profile, losses=spec.losses,
                         teacher=str(teacher_ckpt) if teacher_ckpt else None, seed=seed,
                         epochs=recipe.epochs, data_root=recipe.data_root, progress=progress,
                         compile=recipe.compile)
    try:
        return config.with_overrides(spec.overrides)
    except (TypeError, ValueError) as err:
        raise ValueError(f"table {spec.table} row {spec.row!r}: {err}") from None


@dataclass(frozen=True)
class Start:
    """Where the grid's runs start: the paper profile's pretrained files (``pretrained``, None when
    not given) unless ``scratch``; every other profile from scratch (``experiments.initialisation``)."""

    pretrained: Path | None = None
    scratch: bool = False

    def apply(self, spec: RunSpec, profile: str, teacher_dirs: dict[str, Path]) -> RunSpec:
        """``spec`` with its start in its overrides (``init_backbone``), which carry it whole to
        the trainer; a row that sets its own ``init_backbone`` keeps it."""
        if self.scratch or "init_backbone" in spec.overrides:
            return spec
        source = init_source(spec.model, profile=profile, pretrained=self.pretrained, teacher_dirs=teacher_dirs)
        if source.kind == "scratch":
            return spec
        return replace(spec, overrides={**spec.overrides, "init_backbone": str(source.path)})

    def teachers_for(self, tables: list[int], profile: str) -> list[str]:
        """The teachers whose trained runs rows start from (DistilPose-L: the HRNet-W48 teacher)."""
        if self.scratch or not uses_pretrained(profile):
            return []
        return [FROM_TEACHER[s.model] for t in tables for s in TABLES[t]() if s.model in FROM_TEACHER]


def plan_teachers(keys: list[str], recipe: Recipe, *, runs_dir: Path, start: Start = Start()) -> list[Job]:
    """One job per teacher key, on the profile's teacher schedule (``recipe.epochs`` is the
    students') with ``recipe.teacher_overrides`` on top; the folder carries the config hash
    (out_dir is not in it)."""
    overrides = dict(recipe.teacher_overrides)
    recipe = replace(recipe, epochs=None)
    jobs = []
    for key in keys:
        spec = teacher_run(key)
        if overrides:
            spec = replace(spec, overrides={**spec.overrides, **overrides})
        spec = start.apply(spec, recipe.profile, {})
        cfg = make_config(spec, recipe, seed=0, run_dir=Path("."), teacher_ckpt=None)
        run_dir = runs_dir / "teachers" / f"{key}-{cfg.hash()}"
        jobs.append(Job(spec, 0, run_dir, replace(cfg, out_dir=str(run_dir))))
    return jobs


def seed_folders(job: Job) -> dict[int, Path]:
    """seed -> folder of every run of ``job``'s recipe that exists, whatever its seed (a teacher's
    folder carries no seed: it is trained at ``job.seed`` only)."""
    named = re.fullmatch(r"(.+)-s(\d+)", job.run_dir.name)
    if named is None:
        return {job.seed: job.run_dir} if job.run_dir.is_dir() else {}
    found = {}
    for path in job.run_dir.parent.glob(f"{named.group(1)}-s*"):
        seed = path.name[len(named.group(1)) + 2:]
        if path.is_dir() and seed.isdigit():
            found[int(seed)] = path
    return dict(sorted(found.items()))


def plan_jobs(tables: list[int], recipe: Recipe, *, seeds: list[int], runs_dir: Path,
              extra_seeds: dict | None = None, teacher_store: str = "auto",
              start: Start = Start()) -> tuple[list[Job], list[Job]]:
    """(teacher jobs, row jobs). ``extra_seeds`` maps (table, row) -> seeds for noise estimates.

    Rows of different tables that are the same experiment (Table 5's StemNet student with no
    or the HRNet teacher is Table 4's none / all) share one folder per seed, so they show the
    same seeds and cost one run. ``start``: where runs start (the paper profile's initialisation).
    """
    keys = list(dict.fromkeys(teachers_needed(tables) + start.teachers_for(tables, recipe.profile)))
    teacher_jobs = plan_teachers(keys, recipe, runs_dir=runs_dir, start=start)
    teacher_dirs = {job.spec.row: job.run_dir for job in teacher_jobs}
    by_key = {key: teacher_dirs[teacher_run(key).row] for key in keys}

    def config_of(spec: RunSpec, seed: int) -> TrainConfig:
        ckpt = by_key[spec.teacher] / "best.pt" if spec.teacher else None
        return make_config(spec, recipe, seed=seed, run_dir=Path("."), teacher_ckpt=ckpt)

    def started(spec: RunSpec) -> RunSpec:
        return start.apply(spec, recipe.profile, by_key)

    rows = [(spec, config_of(spec, 0).hash()) for table in tables for spec in map(started, TABLES[table]())]
    extra_by_hash: dict[str, set[int]] = {digest: set() for _, digest in rows}
    for (table, row), extra in (extra_seeds or {}).items():  # its table may not be run now
        for spec in map(started, TABLES[table]()):
            if spec.row == row and (spec.teacher is None or spec.teacher in by_key):
                extra_by_hash.setdefault(config_of(spec, 0).hash(), set()).update(extra)
    jobs = []
    for spec, digest in rows:
        for seed in sorted(set(seeds) | extra_by_hash[digest]):
            run_dir = runs_dir / f"{folder_safe(spec.model)}-{digest}-s{seed}"
            jobs.append(Job(spec, seed, run_dir, replace(config_of(spec, seed), out_dir=str(run_dir))))
    on = {d.teacher: d for d in store_decisions(jobs, runs_dir, mode=teacher_store) if d.on}
    return teacher_jobs, _share_teacher_outputs(jobs, runs_dir, on)


def _shared_keys(jobs: list[Job]) -> Counter:
    """(teacher checkpoint, seed) -> rows, for the keys more than one row distils from."""
    rows_per_key = Counter((j.config.teacher, j.seed) for j in unique_runs(jobs) if j.config.teacher)
    return Counter({key: n for key, n in rows_per_key.items() if n > 1})


def store_decisions(jobs: list[Job], runs_dir: Path, *, mode: str = "auto") -> list[StoreDecision]:
    """Per teacher whose outputs rows could share: whether its store is on (``mode`` auto: when
    its estimated size, every seed's store together, fits under the cap and on the disk)."""
    shared = _shared_keys(jobs)
    decisions = []
    for teacher in dict.fromkeys(key[0] for key in shared):
        keys = [key for key in shared if key[0] == teacher]
        reader = next(j for j in jobs if j.config.teacher == teacher)
        estimate = len(keys) * store_bytes(reader.config, Path(teacher).parent.name)
        decisions.append(decide(Path(teacher).parent.name, sum(shared[k] for k in keys), estimate,
                                runs_dir / TEACHER_STORE, mode=mode))
    return decisions


def store_bytes(config: TrainConfig, teacher_folder: str) -> int:
    """Estimated bytes of one store (one teacher and seed, every epoch) that ``config`` reads."""
    teacher_model = teacher_folder.rsplit("-", 1)[0]     # "<key>-<hash>" of plan_teachers
    from distilkit.experiments.grid import TEACHERS
    model = config.resolved_profile().model_name(TEACHERS[teacher_model].model) \
        if teacher_model in TEACHERS else config.model_name()
    return train_crops(config) * config.schedule().epochs * bytes_per_crop(model)


def train_crops(config: TrainConfig) -> int:
    """Crops per training epoch: a synthetic set's people (the profile's preset, or the config
    a kit-made set at ``data_root`` was written with), else COCO train2017's instances (an
    assumption the plan states)."""
    from distilkit.data.synthetic.config import resolve_config
    from distilkit.data.synthetic.writer import synthetic_config_at

    profile = config.resolved_profile()
    synth = None
    if config.data_root is not None:
        synth = synthetic_config_at(config.data_root)
    elif profile.synthetic:
        synth = resolve_config(profile.synthetic)
    crops = COCO_TRAIN_INSTANCES
    if synth is not None:
        crops = round(synth.num_train_images * sum(synth.people_per_image) / 2)
    limit = config.max_train_instances or profile.max_train_instances
    return min(crops, limit) if limit else crops


def _share_teacher_outputs(jobs: list[Job], runs_dir: Path, on: dict[str, StoreDecision]) -> list[Job]:
    """Rows of one teacher and seed share its outputs (distilkit.teacher_store), read from a
    store the first of them writes; the runner removes it when the last such row is done. A
    teacher and seed with one row gets no store: writing it (3.6 GB at the cpu profile) would
    cost that row time and save none. Only the teachers in ``on`` (``store_decisions``) share;
    one turned on explicitly over the cap gets a cap that holds its estimate."""
    shared = _shared_keys(jobs)
    store = str(runs_dir / TEACHER_STORE)
    out = []
    for job in jobs:
        decision = on.get(Path(job.config.teacher).parent.name) if job.config.teacher else None
        if decision is not None and (job.config.teacher, job.seed) in shared:
            cap = sum(d.estimate for d in on.values()) if decision.reason else None
            job = replace(job, config=replace(job.config, teacher_store=store, teacher_store_cap=cap))
        out.append(job)
    return out


__all__ = ["Job", "Recipe", "Start", "unique_runs", "make_config", "plan_teachers", "plan_jobs", "seed_folders",
           "store_decisions", "train_crops"]
