"""The one config a training run needs; stored in every checkpoint and results row."""
from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from distilkit.data.errors import DataError
from distilkit.files import atomic_write_text
from distilkit.losses import LossConfig
from distilkit.profiles import Profile, Schedule, get_profile, with_epochs


# Bumped when the kit changes what a config trains or how it is scored, so that run folders
# of the old behaviour are never reused as results of the new (the hash names the folder).
#   2: L_SH / L_CS averaged over keypoints as the authors' code; L_CS masked; fair scoring of
#      students without L_CS; torch 2.14.1; the authors' augmentation in the paper profile.
# (Issue 25's levers left training unchanged: shared teacher outputs are bit-identical, and
# neither channels_last nor fused Adam won here; results/README.md.)
RECIPE_VERSION = 2


@dataclass(frozen=True)
class TrainConfig:
    out_dir: str
    model: str = "distilpose-s"              # base preset name; the profile picks its size
    profile: str = "cpu"
    losses: LossConfig = field(default_factory=LossConfig)
    teacher: str | None = None               # path to a teacher checkpoint
    init_backbone: str | None = None         # local pretrained weights for the backbone (distilkit.weights)
    seed: int = 0
    epochs: int | None = None                # override of the profile's schedule
    batch_size: int | None = None
    lr: float | None = None
    data_root: str | None = None             # None: the profile's synthetic set (generated, cached)
    data_seed: int = 0                       # the synthetic set's seed, fixed across runs
    workers: int | None = None
    device: str = "auto"                     # auto | cpu | cuda | cuda:N
    amp: str = "auto"                        # auto (bf16/fp16 on CUDA, off on CPU) | off | bf16 | fp16
    flip_test: bool = True
    dark: bool = False                       # DARK post-processing for heatmap models at eval
    eval_every: int | None = None
    max_train_instances: int | None = None
    max_val_instances: int | None = None
    model_overrides: dict = field(default_factory=dict)
    compile: bool | None = None              # torch.compile the model; None: as the profile chooses
    # Folder of teacher outputs shared by rows that see the same batches (distilkit.teacher_store);
    # None: the teacher runs live. Results are bit-identical either way.
    teacher_store: str | None = None
    # The cap on all stores under teacher_store's folder (bytes); None: teacher_store.STORE_CAP_BYTES.
    # Set by ``reproduce --teacher-store on``, which keeps a store whatever its estimate.
    teacher_store_cap: int | None = None
    progress: bool = True
    resume: bool = False
    tensorboard: bool = False                # TensorBoard scalars in the run folder (engine.scalars)

    def resolved_profile(self) -> Profile:
        return get_profile(self.profile)

    def model_name(self) -> str:
        return self.resolved_profile().model_name(self.model)

    def compiles(self) -> bool:
        """Whether the model trains compiled: ``compile`` when given, else the profile's choice."""
        if self.compile is not None:
            return bool(self.compile)
        return self.resolved_profile().compiles(self.model_name())

    def schedule(self) -> Schedule:
        profile = self.resolved_profile()
        base = profile.teacher_schedule if self.losses.heatmap else profile.student_schedule
        sched = with_epochs(base, self.epochs)
        updates = {}
        if self.batch_size is not None:
            updates["batch_size"] = self.batch_size
        if self.lr is not None:
            updates["lr"] = self.lr
        if updates:
            sched = replace(sched, **updates)
        return sched

    def eval_dark(self) -> bool:
        """Whether the run's own evaluation (its AP and best checkpoint) decodes with DARK: asked
        for, or a heatmap teacher on a profile that selects teachers with DARK (the paper's)."""
        return self.dark or (self.losses.heatmap and self.resolved_profile().dark_teacher_selection)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        data["losses"] = LossConfig(**data.get("losses", {}))
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def with_overrides(self, overrides: dict) -> "TrainConfig":
        """This config with ``{field: value}`` on top; ``losses`` takes a partial dict of
        LossConfig fields (``{"losses": {"alpha_sh": 0.5}}`` keeps the other terms as they are)."""
        changes = dict(overrides)
        _check_names(changes, TrainConfig, "TrainConfig field")
        if isinstance(changes.get("losses"), dict):
            _check_names(changes["losses"], LossConfig, "LossConfig field")
            changes["losses"] = replace(self.losses, **changes["losses"])
        return replace(self, **changes)

    def hash(self) -> str:
        """Identity of the experiment: what changes results, not where or how it is shown."""
        return _digest(self._identity())

    def identity(self) -> dict:
        """What ``hash`` is made of: the fields that change results, with the profile's resolved
        schedule, augmentation and model config (results/configs.json keeps it per row)."""
        return self._identity()

    def resume_key(self) -> str:
        """What a run may not change when it resumes: everything in ``hash`` except its length
        (a run may be extended by more epochs)."""
        d = self._identity()
        d.pop("epochs", None)
        for key in ("epochs", "milestones"):
            d["schedule"].pop(key, None)
        return _digest(d)

    def _identity(self) -> dict:
        d = self.to_dict()
        for key in ("out_dir", "progress", "resume", "workers", "device", "seed", "teacher_store",
                    "teacher_store_cap", "tensorboard"):
            d.pop(key, None)
        if self.eval_dark() and not self.dark:
            d["dark"] = True            # the profile's choice; other rows keep their hashes
        d["losses"] = _loss_identity(self.losses)
        if not self.losses.sh:
            d["losses"].pop("sh_mode")  # it changes nothing without L_SH: those rows keep their hashes
        # compiled kernels change the last bits: the hash records a compiled run (whether the
        # flag or the profile chose it); eager runs keep the hashes they always had
        if self.compiles():
            d["compile"] = True
        else:
            d.pop("compile", None)
        # the teacher enters by its run folder's and file's names, so moving a run folder keeps
        # the hash; initial weights by init_identity
        if d.get("teacher"):
            d["teacher"] = _last_parts(d["teacher"])
        if d.get("init_backbone") is None:
            d.pop("init_backbone", None)   # runs from scratch keep the hashes they always had
        else:
            d["init_backbone"] = init_identity(d["init_backbone"])
        # What the profile name stands for can change between versions of the kit (a schedule,
        # the input size, the synthetic set), and a stale row must not pass for a current one.
        profile = self.resolved_profile()
        d["schedule"] = asdict(self.schedule())
        # The override is fully described by the resolved schedule: `--epochs 6` on a 3-epoch
        # profile and a 6-epoch profile are the same experiment and must share one run folder.
        d["epochs"] = None
        d["input_size"], d["heatmap_size"] = profile.input_size, profile.heatmap_size
        d["heatmap_sigma"] = profile.heatmap_sigma
        d["augment"] = profile.augment_for(teacher=self.losses.heatmap, model=self.model).identity()
        if profile.partial_heatmaps and self.losses.heatmap:
            d["partial_heatmaps"] = True     # absent where off: those recipes keep their hashes
        d["model_name"] = self.model_name()
        d["recipe_version"] = RECIPE_VERSION
        try:
            from distilkit.models.presets import get_config
            d["model_config"] = _without_unset_init(asdict(get_config(self.model_name(), **self.model_overrides)))
        except (KeyError, ValueError, TypeError):
            pass  # an unknown model fails where it is built, with the proper message
        if self.data_root is None and profile.synthetic:
            from distilkit.data.synthetic.config import config_hash, resolve_config
            d["synthetic"] = config_hash(resolve_config(profile.synthetic), self.data_seed)
        return d


# A kit run's folder: "<model or teacher key>-<12 hex of its config hash>[-s<seed>]".
_RUN_FOLDER = re.compile(r"[A-Za-z0-9_.+-]+-[0-9a-f]{12}(-s\d+)?")


def run_folder_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint of a kit run folder (named by its recipe's hash)."""
    path = Path(str(path).replace("\\", "/"))
    return path.name in ("best.pt", "last.pt") and bool(_RUN_FOLDER.fullmatch(path.parent.name))


def init_identity(path: str) -> list[str] | dict:
    """How initial weights enter a config hash: a kit run's checkpoint by its folder's and file's
    names (the folder is named by that run's recipe, and it may not be trained yet); any other
    file by its sha256, so one file in two folders is one experiment and a changed file another.
    A file that is not there (a plan made without it) by its name, marked missing."""
    if run_folder_checkpoint(path):
        return _last_parts(path)
    file = Path(path).expanduser()
    if not file.is_file():
        return {"missing": file.name}
    stat = file.stat()
    return {"sha256": _sha256(str(file.resolve()), stat.st_size, stat.st_mtime_ns)}


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """A file's sha256, computed once per (path, size, mtime): hashes are taken many times."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _last_parts(path: str) -> list[str]:
    return str(path).replace("\\", "/").split("/")[-2:]


def _without_unset_init(model_config: dict) -> dict:
    """A backbone's ``init_std`` enters the hash only when set (the paper StemNet's N(0, 0.001)):
    models that start from the default initialisation keep the hashes they always had."""
    backbone = model_config.get("backbone")
    if isinstance(backbone, dict) and backbone.get("init_std", 0) is None:
        backbone.pop("init_std")
    return model_config


# The LossConfig fields always in the hash: those of RECIPE_VERSION 2, and sh_mode (whose
# default changed what L_SH computes; _identity drops it where L_SH is off). A field added since
# (a new term's switch and weight) enters it only when it differs from its default, so adding a
# term to losses.DISTILL_TERMS leaves every existing run's hash, and folder, as it was.
HASHED_LOSS_FIELDS = ("reg", "reg_loss", "smooth_l1_beta", "kt", "vt", "sh", "cs", "heatmap",
                      "alpha_kt", "alpha_vt", "alpha_sh", "alpha_cs", "alpha_reg", "sh_mode")


def _loss_identity(losses: LossConfig) -> dict:
    return {f.name: getattr(losses, f.name) for f in fields(losses)
            if f.name in HASHED_LOSS_FIELDS or getattr(losses, f.name) != f.default}


def _check_names(given: dict, cls, what: str) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; known: {sorted(known)}")


def write_config(config: TrainConfig, path: str | Path) -> None:
    """A run's ``config.json``: the whole config, its hash and model name (readers show both
    without rebuilding the config). The grid writes it before a run starts, the trainer again
    as it starts; ``read_config`` gives back the same config."""
    atomic_write_text(path, json.dumps({"model_name": config.model_name(), "config_hash": config.hash(),
                                        "config": config.to_dict()}, indent=2))


def read_config(path: str | Path) -> TrainConfig:
    """The TrainConfig of a run's ``config.json`` (or of a file holding the config's dict alone).
    A file that is not such a config is refused naming the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise DataError(path, f"not a readable run config ({err})") from None
    config = data.get("config", data) if isinstance(data, dict) else None
    if not isinstance(config, dict) or not isinstance(config.get("out_dir"), str):
        raise DataError(path, "not a run config (expected a JSON object with a 'config' object "
                              "holding a TrainConfig, as a run folder's config.json)")
    try:
        _check_names(config, TrainConfig, "TrainConfig field")
        if not isinstance(config.get("losses", {}), dict):
            raise ValueError("'losses' must be an object of LossConfig fields")
        _check_names(config.get("losses", {}), LossConfig, "LossConfig field")
        return TrainConfig.from_dict(config)
    except (TypeError, ValueError) as err:
        raise DataError(path, str(err)) from None


def _digest(d: dict) -> str:
    blob = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]
