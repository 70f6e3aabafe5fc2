"""What the kit's writes do to the place they write: special files are left alone, a symlink is
written through to its target (atomically, at the target's location), a path under a regular
file is one error naming it, and every written file gets the umask's permissions.

Each writer (``files.atomic_file`` and the writers built on it) is driven through the commands
that write a user-named output: export, convert, predict, publish.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from distilkit.cli import main as cli_main
from distilkit.evaluation.coco import write_coco_results
from distilkit.files import (
    CheckpointWriteError,
    atomic_file,
    atomic_torch_save,
    atomic_write_text,
)

WRITERS = {
    "atomic_write_text": lambda path: atomic_write_text(path, "new\n"),
    "atomic_torch_save": lambda path: atomic_torch_save({"x": torch.ones(2)}, path),
    "write_coco_results": lambda path: write_coco_results([], path),
}


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("make", [_fifo, _folder], ids=["FIFO", "folder"])
def test_an_existing_output_that_is_no_regular_file_is_refused_and_left_alone(writer, make, tmp_path):
    special = make(tmp_path / "out")
    kind = stat.S_IFMT(os.lstat(special).st_mode)
    with pytest.raises(CheckpointWriteError, match=f"{special}: .*not a regular file"):
        WRITERS[writer](special)
    assert stat.S_IFMT(os.lstat(special).st_mode) == kind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]          # no temporary left


def test_dev_null_is_refused_and_stays_a_device(tmp_path):
    before = os.stat("/dev/null")
    with pytest.raises(CheckpointWriteError, match="/dev/null: .*not a regular file"):
        atomic_write_text("/dev/null", "x")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_symlink_is_written_through_to_its_target_atomically(writer, tmp_path):
    target_dir = tmp_path / "real"
    target_dir.mkdir()
    target = target_dir / "file"
    target.write_text("old\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    WRITERS[writer](link)
    assert link.is_symlink() and os.readlink(link) == str(target)        # the link is kept
    assert target.read_bytes() != b"old\n"                               # and its target is new
    assert sorted(p.name for p in target_dir.iterdir()) == ["file"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_path_under_a_regular_file_is_one_error_naming_that_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointWriteError, match=f"{tmp_path / 'file'} is not a folder"):
        atomic_write_text(tmp_path / "file" / "sub" / "out.txt", "x")


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_umasks_permissions(writer, umask, tmp_path):
    old = os.umask(umask)
    try:
        WRITERS[writer](tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o666 & ~umask


def test_a_failed_write_through_a_file_object_leaves_the_previous_content(tmp_path):
    path = tmp_path / "out"
    path.write_text("previous\n")
    with pytest.raises(RuntimeError), atomic_file(path, "w") as f:
        f.write("half")
        raise RuntimeError("stopped")
    assert path.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    from distilkit.engine.config import TrainConfig
    from distilkit.models import build_model

    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    atomic_torch_save({"model_name": "distilpose-s-smoke", "model_overrides": {},
                       "state_dict": build_model("distilpose-s-smoke").state_dict(),
                       "config": TrainConfig(out_dir=".", model="distilpose-s", profile="smoke").to_dict()}, path)
    return path


def test_export_onto_a_fifo_is_one_error_line_and_the_fifo_stays(small_checkpoint, tmp_path, capsys):
    fifo = _fifo(tmp_path / "model.onnx")
    assert cli_main(["export", "--checkpoint", str(small_checkpoint), "--onnx", str(fifo)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {fifo}: ") and "not a regular file" in err[0]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_export_through_a_symlink_writes_the_target(small_checkpoint, tmp_path):
    target = tmp_path / "models" / "model.onnx"
    target.parent.mkdir()
    target.write_bytes(b"stale")
    link = tmp_path / "model.onnx"
    link.symlink_to(target)
    assert cli_main(["export", "--checkpoint", str(small_checkpoint), "--onnx", str(link)]) == 0
    assert link.is_symlink() and target.stat().st_size > 1000
