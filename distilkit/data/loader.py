"""DataLoader construction with deterministic, per-worker, per-epoch randomness.

Determinism: the loader owns a ``torch.Generator`` seeded from ``seed`` (and the rank
under DDP). PyTorch draws each epoch's worker base seed from it, so worker ``i`` of epoch
``e`` always gets the same seed, different from every other worker and epoch. The
worker_init_fn forwards that seed to ``random``, ``numpy`` and the dataset's own
augmentation generator (``dataset.reseed``). With ``workers=0`` the dataset is reseeded
once here and its stream simply continues across epochs.

Under ``distributed=True`` a ``DistributedSampler`` shards (and shuffles) the data; call
``set_epoch(loader, epoch)`` at the start of every epoch so each epoch reshuffles.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

# Spreads ranks' seeds apart so rank r's workers never reuse rank 0's seeds.
_RANK_STRIDE = 1_000_003


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def seed_worker(worker_id: int) -> None:
    """worker_init_fn: seed random/numpy/the dataset from this worker's torch seed."""
    seed = torch.initial_seed() % 2**32  # base_seed + worker_id, set by the DataLoader
    random.seed(seed)
    np.random.seed(seed)
    # Deliberately no cv2.setNumThreads() here: in a forked worker whose parent already
    # used OpenCV's thread pool it deadlocks (seen with opencv 5.0). Set it in the main
    # process before the loader starts, if at all.
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"):
        info.dataset.reseed(seed)


def build_loader(dataset: Dataset, batch_size: int, shuffle: bool, workers: int,
                 seed: int, distributed: bool = False, *, drop_last: bool | None = None,
                 pin_memory: bool = False, persistent_workers: bool = False) -> DataLoader:
    """A DataLoader with seeded shuffling and worker seeding; DistributedSampler if asked.

    ``drop_last`` defaults to ``shuffle`` (training drops the ragged last batch,
    evaluation keeps every instance).
    """
    rank = _rank() if distributed else 0
    generator = torch.Generator()
    generator.manual_seed(int(seed) + _RANK_STRIDE * rank)
    if drop_last is None:
        drop_last = shuffle
    sampler = None
    if distributed:
        # Same seed on every rank: the sampler needs one shared permutation to shard.
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=int(seed),
                                     drop_last=drop_last)
    if workers == 0 and hasattr(dataset, "reseed"):
        dataset.reseed(int(seed) + _RANK_STRIDE * rank)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=seed_worker if workers > 0 else None,
        generator=generator,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and workers > 0,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell a DistributedSampler which epoch it is (no-op for plain samplers)."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
