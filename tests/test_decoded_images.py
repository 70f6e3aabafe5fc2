"""Decoded images kept in memory (distilkit.data.decoded): the same crops, bit for bit, as
decoding each file every time, with augmentation still drawn per sample and per epoch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from distilkit.data.decoded import LIMIT_ENV, decoded_bytes, decoded_limit, keep_decoded
from distilkit.data.topdown import TopDownCocoDataset
from distilkit.data.transforms import AugmentConfig

AUGMENT = AugmentConfig(half_body_prob=0.3, rot_prob=0.6, rotation=40.0, scale_factor=0.3)


def _pair(root):
    kw = {"split": "train", "input_size": (64, 48), "train": True, "aug": AUGMENT, "seed": 3}
    files, memory = TopDownCocoDataset(root, **kw), TopDownCocoDataset(root, **kw)
    assert keep_decoded(memory) and not files.decoded
    return files, memory


def _batches(dataset, epoch: int, workers: int) -> list[dict]:
    gen = torch.Generator()
    gen.manual_seed(epoch)
    dataset.reseed(epoch)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=gen, num_workers=workers)
    return [{k: v for k, v in b.items() if torch.is_tensor(v)} for b in loader]


@pytest.mark.parametrize("workers", [0, 1])
def test_crops_from_kept_images_are_bit_identical_to_decoding_each_time(smoke_root, workers):
    files, memory = _pair(smoke_root)
    epochs = {}
    for epoch in (0, 1):
        a, b = _batches(files, epoch, workers), _batches(memory, epoch, workers)
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            assert x.keys() == y.keys()
            assert all(torch.equal(x[k], y[k]) for k in x)
        epochs[epoch] = torch.cat([x["image"] for x in a])
    assert not torch.equal(epochs[0], epochs[1])   # augmentation still drawn anew each epoch


def test_kept_pixels_are_the_decoded_file_and_read_only(smoke_root):
    files, memory = _pair(smoke_root)
    image_id = memory.instances[0].image_id
    kept = memory.read_image(image_id)
    assert np.array_equal(kept, files.read_image(image_id)) and not kept.flags.writeable
    assert set(memory.decoded) == {inst.image_id for inst in memory.instances}
    assert decoded_bytes(memory) == sum(img.nbytes for img in memory.decoded.values())


def test_a_set_over_the_limit_reads_its_files(smoke_root, monkeypatch):
    dataset = TopDownCocoDataset(smoke_root, split="train", input_size=(64, 48))
    assert not keep_decoded(dataset, limit=decoded_bytes(dataset) - 1) and dataset.decoded == {}
    monkeypatch.setenv(LIMIT_ENV, "0")
    assert not keep_decoded(dataset) and dataset.decoded == {}
    monkeypatch.setenv(LIMIT_ENV, "2GB")
    with pytest.raises(ValueError, match=f"\\${LIMIT_ENV} must be a number of bytes, got '2GB'"):
        decoded_limit()
    monkeypatch.delenv(LIMIT_ENV)
    assert decoded_limit() == 2 * 10**9
