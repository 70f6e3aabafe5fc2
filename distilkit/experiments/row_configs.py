"""``configs.json`` beside the results tables: each exported row's config, by its config hash.

A CSV row names its recipe only by ``config_hash``; this file keeps what the hash stands for,
so a later reference can say which fields of a row's recipe changed (``config_changes``):

    {"<config_hash>": {"config": {...}, "identity": {...}}, ...}

``config``: the config the run trained with, as its folder's ``config.json`` holds it (the
recipe object's serialised form; the first seed's folder), its paths inside the repository
made relative to it. ``identity``: what the hash is made of (``TrainConfig.identity``: the
profile's resolved schedule, augmentation and model config, the teacher by its folder name),
which is what ``config_changes`` compares; ``config``'s paths never are. Written with sorted
keys, so two exports of the same rows are byte-identical.
"""
from __future__ import annotations

import json
from pathlib import Path

from distilkit.data.errors import DataError
from distilkit.files import atomic_write_text
from distilkit.paths import relative_to_repo

CONFIGS_FILE = "configs.json"
PATH_FIELDS = ("out_dir", "data_root", "teacher", "init_backbone", "teacher_store")


def portable_config(config: dict, root: Path) -> dict:
    """A config dict with its path fields inside ``root`` (the repository) relative to it."""
    return {k: relative_to_repo(v, root) if k in PATH_FIELDS and isinstance(v, str) else v
            for k, v in config.items()}


def config_entry(config, run_dir: Path, root: Path) -> dict:
    """One row's entry: the config its folder's ``config.json`` recorded (the planned one where
    the folder has none, or one of another recipe) and the planned config's identity."""
    trained = config.to_dict()
    try:
        recorded = json.loads((Path(run_dir) / "config.json").read_text())
        if isinstance(recorded, dict) and recorded.get("config_hash") == config.hash():
            trained = recorded["config"]
    except (OSError, ValueError, KeyError):
        pass
    # json round trip: tuples become lists, as they read back
    return json.loads(json.dumps({"config": portable_config(trained, root), "identity": config.identity()},
                                 default=str))


def write_configs(path: str | Path, entries: dict[str, dict]) -> Path:
    """Write ``entries`` (config hash -> entry) to ``path``, keys sorted."""
    atomic_write_text(path, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return Path(path)


def read_configs(results_dir: str | Path) -> dict[str, dict] | None:
    """A results folder's ``configs.json`` (None without one). A file that is not a mapping of
    config hashes to entries with a ``config`` or ``identity`` object is refused, naming it."""
    path = Path(results_dir) / CONFIGS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(path, f"not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise DataError(path, "expected an object of config_hash -> {'config', 'identity'}")
    for digest, entry in data.items():
        if not isinstance(entry, dict) or not any(isinstance(entry.get(k), dict) for k in ("config", "identity")):
            raise DataError(path, f"entry {digest!r} has no 'config' or 'identity' object")
    return data


__all__ = ["CONFIGS_FILE", "config_entry", "portable_config", "read_configs", "write_configs"]
