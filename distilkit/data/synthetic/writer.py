"""Writing the set in COCO layout: parallel rendering, JSON files, atomic publish, cache.

Each image gets its own RNG, derived from (seed, split, index), so the bytes do not depend
on the number of workers or the chunking. Everything is written into a temporary sibling
folder that is renamed into place at the end: an interrupted run leaves no half set that
looks complete, and the marker file inside a published set says what produced it.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from distilkit.data.synthetic.config import (GENERATOR_VERSION, SynthConfig, config_hash,
                                             resolve_config)
from distilkit.data.synthetic.detections import simulate_detections
from distilkit.data.synthetic.scene import Scene, render_scene
from distilkit.keypoints import PERSON_CATEGORY

MARKER = ".distilkit-synthetic.json"
DET_FILE = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
SPLITS = ("train", "val")
# Image ids: train from 1, val from here, so an id names its split.
_ID_BASE = {"train": 1, "val": 10_000_001}
_CHUNK = 100               # images per worker task (only affects progress granularity)
_SERIAL_BELOW = 300        # smaller sets render in-process: no pool start-up cost


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), SPLITS.index(split), int(index)])


def make_scene(cfg: SynthConfig, seed: int, split: str, index: int) -> Scene:
    """The scene that ``generate_synthetic`` writes as image ``index`` of ``split``."""
    return render_scene(scene_rng(seed, split, index), cfg)


def _annotation(person, image_id: int) -> dict:
    kp = person.keypoints
    flat = []
    for x, y, v in kp:
        flat += [round(float(x), 2), round(float(y), 2), int(v)] if v > 0 else [0, 0, 0]
    return {"image_id": image_id, "category_id": 1, "iscrowd": 0, "keypoints": flat,
            "num_keypoints": person.num_keypoints,
            "bbox": [round(float(b), 2) for b in person.bbox], "area": float(person.area)}


def _render_chunk(task: tuple) -> list[tuple[dict, list[dict], list[dict]]]:
    cfg, seed, split, start, stop, image_dir = task
    out = []
    for index in range(start, stop):
        scene = make_scene(cfg, seed, split, index)
        image_id = _ID_BASE[split] + index
        file_name = f"{image_id:012d}.jpg"
        ok, buf = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {file_name}")
        Path(image_dir, file_name).write_bytes(buf.tobytes())
        image = {"id": image_id, "file_name": file_name, "width": scene.width, "height": scene.height}
        anns = [_annotation(p, image_id) for p in scene.people if p.annotated]
        dets = []
        if split == "val":
            rng = np.random.default_rng([int(seed), SPLITS.index(split), index, 1])
            dets = simulate_detections(rng, image_id, scene.people, scene.object_boxes,
                                       scene.width, scene.height, cfg)
        out.append((image, anns, dets))
    return out


def _init_worker() -> None:
    cv2.setNumThreads(1)   # one process per core already


def _render_all(cfg: SynthConfig, seed: int, tmp: Path, progress: bool) -> dict[str, list]:
    tasks = []
    for split in SPLITS:
        n = cfg.num_train_images if split == "train" else cfg.num_val_images
        tasks += [(cfg, seed, split, s, min(n, s + _CHUNK), str(tmp / f"{split}2017"))
                  for s in range(0, n, _CHUNK)]
    total = cfg.num_train_images + cfg.num_val_images
    results: dict[str, list] = {s: [] for s in SPLITS}
    bar = tqdm(total=total, desc="synthetic set", unit="img", disable=not progress)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(cores or 1, len(tasks))
    with contextlib.ExitStack() as stack:
        if total < _SERIAL_BELOW or workers <= 1:
            chunks = map(_render_chunk, tasks)
        else:
            # spawn, not fork: forking a parent whose OpenCV/OpenMP thread pools are running
            # (any pytest or notebook process) can deadlock the children. Costs one import
            # per worker (~2 s), paid only for sets large enough to use the pool.
            ctx = mp.get_context("spawn")
            pool = stack.enter_context(ctx.Pool(workers, initializer=_init_worker))
            chunks = pool.imap(_render_chunk, tasks)   # ordered: output order is fixed
        for task, chunk in zip(tasks, chunks):
            results[task[2]] += chunk
            bar.update(len(chunk))
    bar.close()
    return results


def _dump(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, separators=(",", ":")))


def generate_synthetic(out_dir: str | Path, config: SynthConfig | str = "cpu", seed: int = 0,
                       progress: bool = True) -> Path:
    """Write the synthetic set in COCO layout to ``out_dir`` (replacing an earlier synthetic
    set there) and return its path."""
    cfg = resolve_config(config)
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a synthetic set; refusing to replace it")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for sub in ("annotations", "train2017", "val2017", "person_detection_results"):
            (tmp / sub).mkdir(parents=True)
        results = _render_all(cfg, seed, tmp, progress)
        ann_id = 1
        for split in SPLITS:
            images, anns = [], []
            for image, image_anns, _ in results[split]:
                images.append(image)
                for ann in image_anns:
                    anns.append({**ann, "id": ann_id})
                    ann_id += 1
            _dump(tmp / "annotations" / f"person_keypoints_{split}2017.json",
                  {"info": {"description": "distilkit embedded synthetic COCO-17 set",
                            "version": GENERATOR_VERSION, "seed": int(seed)},
                   "licenses": [], "images": images, "annotations": anns,
                   "categories": [PERSON_CATEGORY]})
        _dump(tmp / DET_FILE, [d for _, _, dets in results["val"] for d in dets])
        _dump(tmp / MARKER, {"hash": config_hash(cfg, seed), "seed": int(seed),
                             "version": GENERATOR_VERSION, "config": asdict(cfg)})
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _publish(tmp: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def is_current(root: Path, cfg: SynthConfig, seed: int) -> bool:
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("hash") == config_hash(cfg, seed)


def synthetic_config_at(root: str | Path) -> SynthConfig | None:
    """The generator config a kit-made synthetic set at ``root`` was written with; None for
    any other folder (a COCO layout, or one whose marker is missing or unreadable)."""
    try:
        marker = json.loads((Path(root) / MARKER).read_text())
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in marker["config"].items()}
        return SynthConfig(**fields)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def default_data_root() -> Path:
    env = os.environ.get("DISTILKIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "distilkit"


def ensure_synthetic(profile: str = "cpu", seed: int = 0, root: str | Path | None = None,
                     progress: bool = True) -> Path:
    """The synthetic set of a preset, generated on first use and cached under ``root``
    (default: ``$DISTILKIT_DATA`` or ``~/.cache/distilkit``)."""
    cfg = resolve_config(profile)
    base = Path(root).expanduser() if root is not None else default_data_root()
    target = (base / f"synthetic-{profile}-seed{seed}").resolve()
    if is_current(target, cfg, seed):
        return target
    base.mkdir(parents=True, exist_ok=True)
    # Several processes (DDP ranks, parallel notebooks) may ask at once: one generates.
    with open(base / f".synthetic-{profile}-seed{seed}.lock", "w") as lock:
        _lock(lock)
        if not is_current(target, cfg, seed):
            generate_synthetic(target, cfg, seed=seed, progress=progress)
    return target


def _lock(handle) -> None:
    try:
        import fcntl
    except ImportError:   # not POSIX: no cross-process lock, generation is still atomic
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
