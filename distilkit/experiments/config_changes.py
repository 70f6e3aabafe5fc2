"""Which fields of a row's recipe differ between two references, grouped into named reasons.

Two entries of ``configs.json`` (``row_configs``) are compared by their ``identity`` (what the
config hash is made of: the profile's resolved schedule, augmentation and model config, the
teacher by its run folder) flattened to dotted paths (``losses.sh_mode``,
``schedule.epochs``); an entry without one by its ``config``, its paths and the fields that
change no result left out. Each differing path falls in one of ``GROUPS`` (the longest prefix
that names it; ``other`` where none does). A changed teacher is described by its own differing
fields (``teacher.schedule.epochs``) where both references hold the teacher's entry.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

# (reason, path prefixes), in the order the report lists them. A prefix ending in "_" matches
# any path that starts with it; others match the path itself and the paths below it.
GROUPS = (
    ("L_SH mode", ("losses.sh_mode",)),
    ("loss weights", ("losses.alpha_",)),
    ("regression loss", ("losses.reg_loss", "losses.smooth_l1_beta")),
    ("loss terms", ("losses",)),
    ("compile", ("compile",)),
    ("batch size", ("batch_size", "schedule.batch_size")),
    ("epochs / schedule", ("epochs", "lr", "schedule")),
    ("augmentation", ("augment",)),
    ("input / heatmaps", ("input_size", "heatmap_size", "heatmap_sigma", "partial_heatmaps")),
    ("initialisation", ("init_backbone", "model_config.backbone.init_std")),
    ("model", ("model", "model_name", "model_overrides", "model_config")),
    ("teacher", ("teacher",)),
    ("data", ("synthetic", "data_seed", "max_train_instances")),
    ("evaluation", ("flip_test", "dark", "eval_every", "max_val_instances")),
    ("precision", ("amp",)),
    ("profile", ("profile",)),
    ("kit version", ("recipe_version",)),
)
OTHER = "other"
REASONS = tuple(name for name, _ in GROUPS) + (OTHER,)
ABSENT = "(absent)"      # a path one side's config does not have
# Where a run lives, and switches that change no result (TrainConfig.hash leaves them out).
NOT_COMPARED = ("out_dir", "data_root", "teacher_store", "teacher_store_cap", "seed", "progress",
                "resume", "workers", "device", "tensorboard")


@dataclass(frozen=True)
class FieldChange:
    """One differing field: its dotted ``path``, and its value before and after (``ABSENT``
    where that side has no such field), as JSON text."""

    path: str
    before: str
    after: str

    def text(self, width: int = 40) -> str:
        return f"{self.path} {_short(self.before, width)} → {_short(self.after, width)}"


def _short(value: str, width: int) -> str:
    return value if len(value) <= width else value[:width - 1] + "…"


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    """Nested dicts as {dotted path: JSON text of the value}; lists stay whole values."""
    out: dict[str, str] = {}
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = json.dumps(value, sort_keys=True, default=str)
    return out


def compared_fields(entry: dict) -> dict[str, str]:
    """The flattened fields of an entry that ``field_changes`` compares."""
    if isinstance(entry.get("identity"), dict):
        fields = dict(entry["identity"])
    else:
        fields = dict(entry.get("config") or {})
        for key in ("teacher", "init_backbone"):   # by file and folder name, as the hash takes them
            if isinstance(fields.get(key), str):
                fields[key] = fields[key].replace("\\", "/").split("/")[-2:]
    for key in NOT_COMPARED:
        fields.pop(key, None)
    return flatten(fields)


def field_changes(before: dict, after: dict) -> list[FieldChange]:
    """The fields that differ between two ``configs.json`` entries, by path."""
    old, new = compared_fields(before), compared_fields(after)
    return [FieldChange(path, old.get(path, ABSENT), new.get(path, ABSENT))
            for path in sorted(set(old) | set(new)) if old.get(path) != new.get(path)]


def group_of(path: str) -> str:
    """The reason a path belongs to: the group whose prefix names it most closely."""
    best, length = OTHER, -1
    for name, prefixes in GROUPS:
        for prefix in prefixes:
            hit = path.startswith(prefix) if prefix.endswith("_") else (
                path == prefix or path.startswith(prefix + "."))
            if hit and len(prefix) > length:
                best, length = name, len(prefix)
    return best


def _teacher_hash(changes: list[FieldChange], side: str) -> str | None:
    """The teacher's config hash from its run folder's name ("<key>-<hash>")."""
    for c in changes:
        if c.path == "teacher":
            folders = json.loads(getattr(c, side)) if getattr(c, side) != ABSENT else None
            if isinstance(folders, list) and folders:
                return str(folders[0]).rsplit("-", 1)[-1]
    return None


def config_reasons(before: dict, after: dict, previous_configs: dict | None = None,
                   current_configs: dict | None = None) -> dict[str, tuple[FieldChange, ...]]:
    """reason -> its differing fields, in ``REASONS`` order. Given both references'
    ``configs.json``, a changed teacher is replaced by the teacher's own differing fields,
    each prefixed ``teacher.``."""
    changes = field_changes(before, after)
    old_t, new_t = _teacher_hash(changes, "before"), _teacher_hash(changes, "after")
    if old_t in (previous_configs or {}) and new_t in (current_configs or {}):
        own = [FieldChange(f"teacher.{c.path}", c.before, c.after)
               for c in field_changes(previous_configs[old_t], current_configs[new_t])]
        if own:      # else the folder alone differs: kept as it is
            changes = [c for c in changes if c.path != "teacher"] + own
    grouped: dict[str, list[FieldChange]] = {}
    for change in changes:
        name = "teacher" if change.path.startswith("teacher.") else group_of(change.path)
        grouped.setdefault(name, []).append(change)
    return {name: tuple(grouped[name]) for name in REASONS if name in grouped}


__all__ = ["GROUPS", "REASONS", "ABSENT", "FieldChange", "flatten", "compared_fields", "field_changes",
           "group_of", "config_reasons"]
