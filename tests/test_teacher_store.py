"""The shared teacher-output store: a row trained from it equals the row trained with a live
teacher, bit for bit; a batch that differs from the stored one never uses stored outputs."""
from __future__ import annotations

import errno
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from distilkit import teacher_store
from distilkit.engine import TrainConfig, fit
from distilkit.losses import LossConfig
from distilkit.models.checkpoint import load_checkpoint
from distilkit.teacher_store import remove_stores
from distilkit.teacher_store_file import EpochReader, EpochWriter, StoreFileError

ALL = LossConfig(kt=True, vt=True, sh=True, cs=True)


def _student(tmp_path: Path, name: str, smoke_root, teacher, *, losses=ALL, store=None, seed=0,
             model="distilpose-s") -> TrainConfig:
    return TrainConfig(out_dir=str(tmp_path / name), model=model, profile="smoke", losses=losses,
                       teacher=str(teacher), data_root=str(smoke_root), progress=False, seed=seed,
                       teacher_store=None if store is None else str(store), max_val_instances=16)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "last.pt")["state_dict"]


def _assert_bit_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        assert torch.equal(value, b[name]), name


@pytest.mark.parametrize("losses", [ALL, LossConfig(sh=True, cs=True)], ids=["all", "sh+cs"])
def test_a_row_trained_from_the_store_equals_the_row_with_a_live_teacher(tmp_path, smoke_root, smoke_teacher,
                                                                         losses):
    store = tmp_path / "store"
    live = _student(tmp_path, "live", smoke_root, smoke_teacher, losses=losses)
    writer = _student(tmp_path, "writer", smoke_root, smoke_teacher, losses=losses, store=store)
    reader = _student(tmp_path, "reader", smoke_root, smoke_teacher, losses=losses, store=store)
    fit(live)
    fit(writer)
    files = sorted(store.glob("*/epoch_*.bin"))
    assert [f.name for f in files] == ["epoch_000.bin", "epoch_001.bin"]   # the smoke profile's 2 epochs
    stamps = [f.stat().st_mtime_ns for f in files]
    fit(reader)
    assert [f.stat().st_mtime_ns for f in files] == stamps          # read, not rewritten
    _assert_bit_identical(_weights(Path(live.out_dir)), _weights(Path(writer.out_dir)))
    _assert_bit_identical(_weights(Path(live.out_dir)), _weights(Path(reader.out_dir)))


def test_a_row_that_reads_the_store_runs_no_teacher_forward(tmp_path, smoke_root, smoke_teacher, monkeypatch):
    from distilkit import distill

    store = tmp_path / "store"
    fit(_student(tmp_path, "writer", smoke_root, smoke_teacher, store=store))
    calls = []
    original = distill.FrozenTeacher.forward
    monkeypatch.setattr(distill.FrozenTeacher, "forward",
                        lambda self, x: calls.append(x.shape[0]) or original(self, x))
    fit(_student(tmp_path, "reader", smoke_root, smoke_teacher, store=store))
    assert calls == []
    fit(_student(tmp_path, "live", smoke_root, smoke_teacher))    # the control: the patch sees a live teacher
    assert len(calls) > 0


def test_rows_of_another_seed_get_their_own_store(tmp_path, smoke_root, smoke_teacher):
    store = tmp_path / "store"
    fit(_student(tmp_path, "s0", smoke_root, smoke_teacher, store=store, seed=0))
    fit(_student(tmp_path, "s1", smoke_root, smoke_teacher, store=store, seed=1))
    names = sorted(p.name for p in store.iterdir())
    assert len(names) == 2 and names[0].split("-s")[1].startswith("0-") and "-s1-" in names[1]


def _rewrite(path: Path, change) -> None:
    """Rewrite a stored epoch through ``change(input_digest, outputs) -> (digest, outputs)``,
    with fresh output digests (so only what ``change`` did differs)."""
    reader = EpochReader(path)
    batches = [change(reader.input_digest(i), reader.outputs(i)) for i in range(len(reader))]
    reader.close()
    writer = EpochWriter(path)
    for digest, outputs in batches:
        writer.add(digest, outputs)
    writer.commit()


def test_a_stored_batch_that_differs_falls_back_to_the_live_teacher(tmp_path, smoke_root, smoke_teacher):
    """A store whose batches do not match (here: its input digests overwritten) must not be used."""
    store = tmp_path / "store"
    fit(_student(tmp_path, "writer", smoke_root, smoke_teacher, store=store))
    for f in store.glob("*/epoch_*.bin"):    # poison: must not reach a loss
        _rewrite(f, lambda digest, out: ("0" * 32, {**out, "heatmaps": torch.full_like(out["heatmaps"], 7.0)}))
    live = _student(tmp_path, "live", smoke_root, smoke_teacher)
    reader = _student(tmp_path, "reader", smoke_root, smoke_teacher, store=store)
    fit(live)
    fit(reader)
    _assert_bit_identical(_weights(Path(live.out_dir)), _weights(Path(reader.out_dir)))


def _flip_64_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 3            # inside the batches, before the index
    data[middle:middle + 64] = bytes(255 - b for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _unreadable(path: Path) -> None:
    path.write_bytes(b"not a store file")


@pytest.mark.parametrize("damage", [_flip_64_bytes, _truncate, _unreadable],
                         ids=["64 flipped bytes", "truncated", "not a store file"])
def test_a_damaged_store_file_is_one_warning_changes_no_result_and_is_written_again(
        tmp_path, smoke_root, smoke_teacher, damage, caplog):
    store = tmp_path / "store"
    fit(_student(tmp_path, "writer", smoke_root, smoke_teacher, store=store))
    damaged = min(store.glob("*/epoch_*.bin"))
    damage(damaged)
    with caplog.at_level(logging.WARNING, logger="distilkit.teacher_store"):
        fit(_student(tmp_path, "reader", smoke_root, smoke_teacher, store=store))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(damaged) in warnings[0], warnings
    live = _student(tmp_path, "live", smoke_root, smoke_teacher)
    fit(live)
    _assert_bit_identical(_weights(Path(live.out_dir)), _weights(Path(tmp_path / "reader")))
    reread = EpochReader(damaged)                       # written again by the row that found it
    assert all(reread.outputs(i) for i in range(len(reread)))
    assert sorted(p.name for p in damaged.parent.iterdir() if not p.name.endswith(".lock")) == \
        ["epoch_000.bin", "epoch_001.bin"]               # no temporary left


def test_a_file_truncated_under_its_reader_is_an_error_not_a_bus_error(tmp_path):
    path = tmp_path / "epoch_000.bin"
    writer = EpochWriter(path)
    for i in range(4):
        writer.add(f"{i:032d}", {"heatmaps": torch.full((2, 17, 8, 6), float(i))})
    writer.commit()
    reader = EpochReader(path)
    assert torch.equal(reader.outputs(3)["heatmaps"], torch.full((2, 17, 8, 6), 3.0))
    _truncate(path)
    assert torch.equal(reader.outputs(0)["heatmaps"], torch.zeros(2, 17, 8, 6))   # still whole
    with pytest.raises(StoreFileError, match="truncated"):
        reader.outputs(3)
    reader.close()


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["add", "commit"])
def test_a_failed_write_is_one_warning_and_the_row_goes_on_live(tmp_path, smoke_root, smoke_teacher,
                                                              monkeypatch, caplog, where):
    store = tmp_path / "store"
    monkeypatch.setattr(EpochWriter, where, _full_disk)
    with caplog.at_level(logging.WARNING, logger="distilkit.teacher_store"):
        fit(_student(tmp_path, "writer", smoke_root, smoke_teacher, store=store))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left on device" in warnings[0], warnings
    assert [p.name for p in store.glob("*/*") if not p.name.endswith(".lock")] == []
    fit(_student(tmp_path, "live", smoke_root, smoke_teacher))
    _assert_bit_identical(_weights(tmp_path / "live"), _weights(tmp_path / "writer"))


@pytest.mark.parametrize("cap, free, said", [
    (1000, 10**15, "cap"),
    (teacher_store.STORE_CAP_BYTES, 10**6, "free"),
], ids=["over the cap", "disk nearly full"])
def test_a_store_over_its_cap_or_the_free_space_is_one_line_and_the_row_runs_live(
        tmp_path, smoke_root, smoke_teacher, monkeypatch, caplog, cap, free, said):
    store = tmp_path / "store"
    monkeypatch.setattr(teacher_store, "STORE_CAP_BYTES", cap)
    monkeypatch.setattr(teacher_store.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(free, 0, free))
    with caplog.at_level(logging.WARNING, logger="distilkit.teacher_store"):
        fit(_student(tmp_path, "row", smoke_root, smoke_teacher, store=store))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and said in warnings[0] and str(store) in warnings[0], warnings
    assert list(store.glob("*/*.bin")) == []


@pytest.mark.parametrize("used, estimate, cap, free, allowed", [
    (0, 10 * 10**9, 50 * 10**9, 10**12, True),
    (45 * 10**9, 10 * 10**9, 50 * 10**9, 10**12, False),       # the cap covers all stores together
    (0, 63 * 10**9, 50 * 10**9, 10**12, False),                # one paper-profile epoch
    (0, 10 * 10**9, 50 * 10**9, 11 * 10**9, False),            # fits, but leaves < FREE_SPACE_MARGIN
])
def test_store_allowed_weighs_the_estimate_against_the_cap_and_the_free_space(tmp_path, used, estimate, cap,
                                                                              free, allowed):
    (tmp_path / "t-s0-x").mkdir()
    with open(tmp_path / "t-s0-x" / "epoch_000.bin", "wb") as f:
        f.truncate(used)                 # sparse: its size counts, not its blocks
    reason = teacher_store.store_allowed(estimate, tmp_path, cap_bytes=cap, free_bytes=free)
    assert (reason is None) == allowed


def test_the_store_does_not_enter_the_experiment_hash(tmp_path, smoke_root, smoke_teacher):
    a = _student(tmp_path, "a", smoke_root, smoke_teacher)
    assert a.hash() == replace(a, teacher_store=str(tmp_path / "anywhere")).hash()


def test_remove_stores_frees_one_teachers_folders(tmp_path, smoke_root, smoke_teacher):
    store = tmp_path / "store"
    fit(_student(tmp_path, "writer", smoke_root, smoke_teacher, store=store))
    size = sum(f.stat().st_size for f in store.glob("*/*") if f.is_file())
    assert size > 0
    assert remove_stores(store, smoke_teacher) == size
    assert not store.exists()
