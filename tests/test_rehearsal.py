"""The dress rehearsal runs a row through the trainer's own set-up, steps, evaluation and
checkpoints, and reports what it measured with the full run's projections labelled as such.
Tiny here: the smoke profile, made to start as the paper profile does, two runs."""
from __future__ import annotations

import mmap
import re

import torch

from distilkit.experiments import initialisation
from distilkit.experiments.plan import Start
from distilkit.experiments.rehearse import rehearse
from distilkit.models import build_model


def test_a_rehearsal_wires_init_teacher_losses_eval_and_checkpoints(tmp_path, smoke_root, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    # small stand-ins for the ImageNet files, under the kit's own key names
    torch.save(build_model("teacher-hrw48-smoke").backbone.state_dict(), weights / "hrnet_w48.pth")
    torch.save(build_model("deeppose-r50-smoke").backbone.state_dict(), weights / "resnet50.pth")
    monkeypatch.setattr(initialisation, "PAPER_PROFILES", ("paper", "smoke"))
    lines: list[str] = []
    rc = rehearse(profile="smoke", start=Start(pretrained=weights), data_root=str(smoke_root),
                  runs_dir=tmp_path / "rehearsal", tables=[5], rows=["HRNet-W48-s3 / HRNet-W48"],
                  log=lines.append)
    assert rc == 0, lines
    teacher, student, summary = lines
    assert re.search(r"init weights/hrnet_w48\.pth: \d+ keys loaded, 0 missing, 0 unused", teacher)
    assert "losses heatmap (finite)" in teacher
    # DistilPose-L starts from the rehearsal teacher's first three stages and distils from it
    assert re.search(r"init hrw48-[0-9a-f]{12}/best\.pt: \d+ keys loaded, 0 missing, \d+ unused", student)
    assert "losses cs+kt+reg+sh+vt (finite)" in student
    for line in (teacher, student):
        assert re.search(r"step \d+\.\d+ s at batch 2 on cpu, peak [\d.]+ [MG]B", line)
        assert re.search(r"PROJECTED full run: [\d,]+ h on this device, [\d.]+ [MG]B at \d+ per GPU", line)
        assert "saved best.pt, last.pt" in line
    assert summary.startswith("rehearsed 2 runs") and "0 failed" in summary
    assert len(list((tmp_path / "rehearsal").glob("**/best.pt"))) == 2


def _touched(mib: int) -> mmap.mmap:
    """Fresh anonymous memory, every page written: resident until closed, whatever the allocator
    keeps (torch's tensors may reuse heap pages a previous test freed, which add no RSS)."""
    block = mmap.mmap(-1, mib * 2**20)
    block.write(b"\x01" * (mib * 2**20))
    return block


def test_the_step_peak_starts_after_the_set_up():
    """A set-up that peaked high (a teacher's checkpoint loaded, then freed) must not hide the
    step's memory: after reset_peak the peak is what is held now, and grows with what follows."""
    from distilkit.engine.rehearsal import peak_bytes, reset_peak

    cpu = torch.device("cpu")
    set_up = _touched(64)
    before = peak_bytes(cpu)
    set_up.close()
    reset_peak(cpu)
    after_reset = peak_bytes(cpu)
    assert after_reset < before - 32 * 2**20
    step = _touched(48)
    assert peak_bytes(cpu) > after_reset + 32 * 2**20
    step.close()
