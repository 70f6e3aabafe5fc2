"""Datasets and loaders for a run: the data root, the codec a model needs, sharding."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from distilkit.codecs import HeatmapCodec, RegressionCodec
from distilkit.data.decoded import keep_decoded
from distilkit.engine.distributed import DistInfo
from distilkit.profiles import Profile


def resolve_data_root(data_root: str | Path | None, profile: Profile, *, seed: int = 0,
                      progress: bool = True) -> Path:
    """A user's COCO-layout folder, or the profile's synthetic set (generated once, cached)."""
    if data_root is not None:
        root = Path(data_root).expanduser()
        if not root.is_dir():
            from distilkit.data.errors import DataError
            raise DataError(root, "the data root is not a folder (want annotations/, train2017/, "
                                  "val2017/ inside)")
        return root
    if profile.synthetic is None:
        raise ValueError(f"profile {profile.name!r} trains on real COCO: pass data_root "
                         "(a folder with annotations/, train2017/, val2017/)")
    from distilkit.data.synthetic import ensure_synthetic
    return Path(ensure_synthetic(profile.synthetic, seed=seed, progress=progress))


def training_data_kind(root: str | Path) -> str:
    """``"synthetic"`` for a set the kit generated (it carries the generator's marker file),
    ``"coco-layout"`` for any other folder (real COCO, or the user's own)."""
    from distilkit.data.synthetic.writer import MARKER
    return "synthetic" if (Path(root) / MARKER).is_file() else "coco-layout"


def ann_file(root: Path, split: str) -> Path:
    return root / "annotations" / f"person_keypoints_{split}2017.json"


class IndexedDataset(Dataset):
    """Adds the dataset index to each sample so sharded predictions merge exactly."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        sample = self.dataset[i]
        sample["index"] = i
        return sample


def codec_for(model, *, heatmap_sigma: float = 2.0, partial_outside: bool = False) -> object:
    """The targets ``model`` trains on; ``partial_outside``: heatmaps keep the partial Gaussian of
    a labelled keypoint just outside the crop (``Profile.partial_heatmaps``)."""
    if model.kind == "heatmap":
        return HeatmapCodec(input_size=tuple(model.input_size), heatmap_size=tuple(model.heatmap_size),
                            sigma=heatmap_sigma, partial_outside=partial_outside)
    return RegressionCodec(input_size=tuple(model.input_size))


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy and random follow it, so
    # augmentation is a function of (run seed, epoch, worker) only.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_train_loader(train_set: Dataset, *, batch_size: int, workers: int, seed: int, info: DistInfo
                       ) -> tuple[DataLoader, DistributedSampler, torch.Generator]:
    """The training loader (``batch_size`` per rank), its sampler and its generator: the shuffle is
    the sampler's (shared by the ranks), the workers' seeds come from the generator; call
    ``start_epoch`` before each epoch."""
    sampler = DistributedSampler(train_set, num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=seed, drop_last=True)
    generator = torch.Generator()
    generator.manual_seed(seed)
    loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler, drop_last=True,
                        generator=generator, num_workers=workers,
                        worker_init_fn=_seed_worker if workers else None,
                        pin_memory=torch.cuda.is_available(), persistent_workers=False)
    return loader, sampler, generator


def start_epoch(train_set, sampler: DistributedSampler, generator: torch.Generator, epoch: int,
                seed: int) -> None:
    """The epoch's shuffle and augmentation as a function of (seed, epoch) only: exact resume."""
    sampler.set_epoch(epoch)
    generator.manual_seed(seed * 1_000_003 + epoch)
    # workers reseed the dataset's stream themselves; in-process loading (0 workers) uses this
    train_set.reseed(seed * 1_000_003 + epoch)
    np.random.seed((seed * 7919 + epoch) % 2**32)
    random.seed(seed * 7919 + epoch)


@dataclass
class RunData:
    root: Path
    train_set: Dataset
    val_set: Dataset
    train_loader: DataLoader
    val_loader: DataLoader
    val_gt_loader: DataLoader        # ground-truth boxes, for the localisation diagnostic
    train_sampler: DistributedSampler
    generator: torch.Generator
    val_ann_file: Path

    def set_epoch(self, epoch: int, seed: int) -> None:
        """Make the epoch's shuffle and augmentation depend only on (seed, epoch): exact resume."""
        start_epoch(self.train_set, self.train_sampler, self.generator, epoch, seed)


@dataclass
class ValData:
    """What evaluation reads: the val split's detector boxes and ground-truth boxes."""

    val_set: Dataset
    val_loader: DataLoader
    val_gt_loader: DataLoader        # ground-truth boxes, for the localisation diagnostic
    val_ann_file: Path


def build_val_data(*, root: Path, model, profile: Profile, batch_size: int, workers: int = 0,
                   info: DistInfo | None = None, max_val_instances: int | None = None) -> ValData:
    """The validation loaders alone: val annotations, val images and detector boxes; a
    val-only COCO folder is enough. Shards are strided subsets without padding, so duplicates
    never reach COCOeval."""
    from distilkit.data.topdown import TopDownCocoDataset

    info = info or DistInfo()
    input_size = tuple(model.input_size)
    common = {"num_workers": workers, "worker_init_fn": _seed_worker if workers else None,
              "pin_memory": torch.cuda.is_available(), "persistent_workers": False}
    loaders = []
    for use_detections in (True, False):
        dataset = TopDownCocoDataset(root, split="val", input_size=input_size, codec=None, train=False,
                                     use_detections=use_detections, det_score_thr=profile.det_score_thr,
                                     max_instances=max_val_instances)
        indexed = IndexedDataset(dataset) if use_detections else dataset
        shard = Subset(indexed, list(range(info.rank, len(dataset), info.world_size)))
        loaders.append((dataset, DataLoader(shard, batch_size=batch_size, shuffle=False, **common)))
    (val_set, val_loader), (_, val_gt_loader) = loaders
    return ValData(val_set=val_set, val_loader=val_loader, val_gt_loader=val_gt_loader,
                   val_ann_file=ann_file(root, "val"))


def build_run_data(*, root: Path, model, profile: Profile, batch_size: int, workers: int,
                   seed: int, info: DistInfo, teacher: bool = False, max_train_instances: int | None = None,
                   max_val_instances: int | None = None, eval_batch_size: int | None = None,
                   model_base: str = "") -> RunData:
    """Loaders of a run of ``model`` (``model_base``: its base preset name, which picks a
    teacher's own augmentation where the profile gives one)."""
    from distilkit.data.topdown import TopDownCocoDataset

    codec = codec_for(model, heatmap_sigma=profile.heatmap_sigma, partial_outside=profile.partial_heatmaps)
    train_set = TopDownCocoDataset(root, split="train", input_size=tuple(model.input_size), codec=codec,
                                   train=True, aug=profile.augment_for(teacher=teacher, model=model_base),
                                   max_instances=max_train_instances, seed=seed)
    keep_decoded(train_set)   # before the loader's workers fork: they share the pixels
    per_rank = max(1, batch_size // info.world_size)
    train_loader, sampler, generator = build_train_loader(train_set, batch_size=per_rank, workers=workers,
                                                          seed=seed, info=info)
    val = build_val_data(root=root, model=model, profile=profile, batch_size=eval_batch_size or per_rank,
                         workers=workers, info=info, max_val_instances=max_val_instances)
    if len(train_loader) == 0:
        raise ValueError(f"{ann_file(root, 'train')}: {len(train_set)} training instances are fewer "
                         f"than one batch of {per_rank}; lower batch_size")
    return RunData(root=root, train_set=train_set, val_set=val.val_set, train_loader=train_loader,
                   val_loader=val.val_loader, val_gt_loader=val.val_gt_loader, train_sampler=sampler,
                   generator=generator, val_ann_file=val.val_ann_file)
