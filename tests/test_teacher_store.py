"""The shared teacher-output store: a row trained from it equals the row trained with a live
teacher, bit for bit; a batch that differs from the stored one never uses stored outputs."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from distilkit.engine import TrainConfig, fit
from distilkit.engine.checkpoint import load_checkpoint
from distilkit.losses import LossConfig
from distilkit.teacher_store import remove_stores

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
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("losses", [ALL, LossConfig(sh=True, cs=True)], ids=["all", "sh+cs"])
def test_a_row_trained_from_the_store_equals_the_row_with_a_live_teacher(tmp_path, smoke_root, smoke_teacher,
                                                                         losses):
    store = tmp_path / "store"
    live = _student(tmp_path, "live", smoke_root, smoke_teacher, losses=losses)
    writer = _student(tmp_path, "writer", smoke_root, smoke_teacher, losses=losses, store=store)
    reader = _student(tmp_path, "reader", smoke_root, smoke_teacher, losses=losses, store=store)
    fit(live)
    fit(writer)
    files = sorted(store.glob("*/epoch_*.pt"))
    assert [f.name for f in files] == ["epoch_000.pt", "epoch_001.pt"]   # the smoke profile's 2 epochs
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


def test_a_stored_batch_that_differs_falls_back_to_the_live_teacher(tmp_path, smoke_root, smoke_teacher):
    """A store whose batches do not match (here: its digests overwritten) must not be used."""
    store = tmp_path / "store"
    fit(_student(tmp_path, "writer", smoke_root, smoke_teacher, store=store))
    for f in store.glob("*/epoch_*.pt"):
        payload = torch.load(f, weights_only=True)
        payload["digests"] = torch.zeros_like(payload["digests"])
        payload["heatmaps"] = torch.full_like(payload["heatmaps"], 7.0)   # poison: must not reach a loss
        torch.save(payload, f)
    live = _student(tmp_path, "live", smoke_root, smoke_teacher)
    reader = _student(tmp_path, "reader", smoke_root, smoke_teacher, store=store)
    fit(live)
    fit(reader)
    _assert_bit_identical(_weights(Path(live.out_dir)), _weights(Path(reader.out_dir)))


def test_the_store_does_not_enter_the_experiment_hash(tmp_path, smoke_root, smoke_teacher):
    a = _student(tmp_path, "a", smoke_root, smoke_teacher)
    assert a.hash() == replace(a, teacher_store=str(tmp_path / "anywhere")).hash()


def test_remove_stores_frees_one_teachers_folders(tmp_path, smoke_root, smoke_teacher):
    store = tmp_path / "store"
    fit(_student(tmp_path, "writer", smoke_root, smoke_teacher, store=store))
    size = sum(f.stat().st_size for f in store.glob("*/*.pt"))
    assert size > 0
    assert remove_stores(store, smoke_teacher) == size
    assert not store.exists()
