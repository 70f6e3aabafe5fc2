"""The paper grid starts each row as the authors did, names initial weights by their bytes, says
what it will cost before it runs, and refuses to start without its pretrained files."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from distilkit.cli import main
from distilkit.engine.config import TrainConfig
from distilkit.experiments import cost, initialisation
from distilkit.experiments.paper_plan import init_label, paper_plan_lines
from distilkit.experiments.plan import Recipe, Start, plan_jobs, store_decisions
from distilkit.experiments.scheduling import waits_for


@pytest.fixture()
def pretrained(tmp_path) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in ("hrnet_w48.pth", "resnet50.pth"):
        (folder / name).write_bytes(name.encode())     # the plan reads their bytes, never loads them
    return folder


def _paper(start: Start, tables=(4, 5, 6)):
    teachers, rows = plan_jobs(list(tables), Recipe("paper"), seeds=[0], runs_dir=Path("/tmp/grid"), start=start)
    return teachers + rows


def _starts(jobs) -> dict[str, str | None]:
    return {f"{j.spec.table} {j.spec.row}": j.config.init_backbone for j in jobs}


def test_each_paper_row_starts_as_the_authors_did(pretrained):
    jobs = _paper(Start(pretrained=pretrained))
    starts = _starts(jobs)
    teacher_dir = next(j.run_dir for j in jobs if j.spec.row == "HRNet-W48 (teacher)")
    assert starts["0 HRNet-W48 (teacher)"] == str(pretrained / "hrnet_w48.pth")
    for row in ("6 SimpleBaseline (teacher)", "6 DeepPose", "6 DeepPose + Simulated Heatmaps"):
        assert starts[row] == str(pretrained / "resnet50.pth")
    for row in ("0 stemnet (teacher)", "4 none", "4 all", "5 stemnet / stemnet"):
        assert starts[row] is None
    for row in ("5 HRNet-W48-s3 / none", "5 HRNet-W48-s3 / stemnet", "5 HRNet-W48-s3 / HRNet-W48"):
        assert starts[row] == str(teacher_dir / "best.pt")
    l_rows = [j for j in jobs if j.spec.model == "distilpose-l"]
    assert all(teacher_dir in waits_for(j) for j in l_rows)      # every L row waits for the teacher


def test_without_pretrained_files_the_plan_marks_them_missing_and_no_pretrained_trains_from_scratch():
    missing = _paper(Start())
    labels = {j.spec.row: init_label(j) for j in missing}
    assert labels["HRNet-W48 (teacher)"] == "hrnet_w48.pth MISSING"
    assert labels["DeepPose"] == "resnet50.pth MISSING"
    assert all(j.config.init_backbone is None for j in _paper(Start(scratch=True)))


@pytest.mark.parametrize("profile", ["cpu", "smoke"])
def test_other_profiles_train_from_scratch_whatever_is_given(profile, pretrained):
    teachers, rows = plan_jobs([4, 5, 6], Recipe(profile), seeds=[0], runs_dir=Path("/tmp/grid"),
                               start=Start(pretrained=pretrained))
    assert all(j.config.init_backbone is None for j in teachers + rows)


def _config(init: str | None) -> TrainConfig:
    return TrainConfig(out_dir="x", model="distilpose-l", profile="smoke", init_backbone=init)


def test_an_initialisation_file_enters_the_hash_by_its_bytes(tmp_path):
    a, b = tmp_path / "a" / "w.pth", tmp_path / "b" / "other.pth"
    for path in (a, b):
        path.parent.mkdir()
        path.write_bytes(b"same weights")
    assert _config(str(a)).hash() == _config(str(b)).hash() != _config(None).hash()
    b.write_bytes(b"other weights")
    assert _config(str(a)).hash() != _config(str(b)).hash()


def test_a_teacher_rows_checkpoint_enters_by_its_run_folder_before_it_exists(tmp_path):
    first = _config(str(tmp_path / "teachers" / "hrw48-0123456789ab" / "best.pt"))
    moved = _config(str(tmp_path / "elsewhere" / "hrw48-0123456789ab" / "best.pt"))
    other = _config(str(tmp_path / "teachers" / "hrw48-ba9876543210" / "best.pt"))
    assert first.hash() == moved.hash() != other.hash()


def test_a_paper_run_without_pretrained_files_exits_2_with_one_line_before_anything_runs(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["reproduce", "--profile", "paper", "--runs-dir", str(runs), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert "hrnet_w48.pth" in err[0] and "resnet50.pth" in err[0] and "docs/PAPER_GRID.md" in err[0]
    assert not runs.exists()


def test_a_pretrained_folder_lacking_a_file_is_named(tmp_path):
    (tmp_path / "hrnet_w48.pth").write_bytes(b"x")
    with pytest.raises(initialisation.MissingPretrained, match="lacks resnet50.pth"):
        initialisation.check_pretrained(tmp_path, profile="paper")


def _flops(monkeypatch):
    """Round FLOPs per model, so the plan's arithmetic is checkable and nothing is built."""
    table = {"teacher-hrw48": 34e9, "distilpose-s": 5e9}
    monkeypatch.setattr(cost, "forward_flops", lambda name: table.get(name, 10e9))


def test_the_paper_plan_shows_start_teacher_cost_and_disk_per_row(monkeypatch, pretrained):
    _flops(monkeypatch)
    jobs = _paper(Start(pretrained=pretrained), tables=(4,))
    lines = paper_plan_lines(jobs, store_decisions(jobs, Path("/tmp/grid")), in_flight=8,
                             measured=cost.Throughput({}))
    teacher = next(line for line in lines if "HRNet-W48 (teacher)" in line)
    # 300 epochs x 149,813 crops x 3 x 34 GFLOP + 30 evaluations x 2 x 104,125 boxes x 34 GFLOP, at 10 TFLOP/s
    hours = (300 * 149_813 * 3 * 34e9 + 30 * 2 * 104_125 * 34e9) / 10e12 / 3600
    assert f"{hours:.0f}" in teacher.split() and "hrnet_w48.pth" in teacher
    distilled = next(line for line in lines if "'all' seed 0" in line)
    assert "teacher-hrw48" in distilled and "live" in distilled
    assert any(line.startswith("GPU-hours from FLOPs at an assumed 10 TFLOP/s") for line in lines)
    assert any("teacher store for hrw48-" in line and "off" in line for line in lines)


def test_a_measured_fp32_table_replaces_the_flops_estimate(monkeypatch, tmp_path):
    _flops(monkeypatch)
    csv = tmp_path / "gpu_check.csv"
    csv.write_text("device,tiny,check,precision,model,teacher,images_per_s\n"
                   "NVIDIA H100,False,train,fp32,distilpose-s,,1000\n"
                   "NVIDIA H100,False,train,amp,distilpose-s,,3000\n")
    measured = cost.Throughput.read(csv)
    assert measured.images_per_s == {("distilpose-s", ""): 1000.0}
    job = next(j for j in _paper(Start(scratch=True), tables=(4,)) if j.spec.row == "none")
    row = cost.row_cost(job, measured)
    evaluation = 30 * 2 * 104_125 * 5e9 / 10e12
    assert row.source == "measured: NVIDIA H100"
    assert row.gpu_hours == pytest.approx((300 * 149_813 / 1000 + evaluation) / 3600)


def test_an_explicit_store_gets_a_cap_that_holds_it(pretrained):
    _, rows = plan_jobs([4], Recipe("paper"), seeds=[0], runs_dir=Path("/tmp/grid"),
                        start=Start(pretrained=pretrained), teacher_store="on")
    stored = [j for j in rows if j.config.teacher_store]
    assert stored and all(j.config.teacher_store_cap >= 18 * 10**12 for j in stored)
    assert replace(stored[0].config, teacher_store_cap=None).hash() == stored[0].config.hash()


def test_the_rehearsal_checks_every_loss_term_of_a_row():
    from distilkit.experiments.rehearse import _fault

    job = next(j for j in _paper(Start(scratch=True), tables=(4,)) if j.spec.row == "all")
    ok = {"terms": {"reg": 1.0, "kt": 1.0, "vt": 1.0, "sh": 1.0, "cs": 1.0}, "loss_finite": True,
          "checkpoints": ["best.pt", "last.pt"]}
    assert _fault(job, ok) is None
    assert "expected" in _fault(job, {**ok, "terms": {"reg": 1.0}})
    assert "best.pt" in _fault(job, {**ok, "checkpoints": ["last.pt"]})


def test_a_rows_start_travels_in_its_overrides_to_the_run_folders_config(pretrained, tmp_path):
    from distilkit.engine.config import read_config, write_config

    jobs = _paper(Start(pretrained=pretrained), tables=(5,))
    l_row = next(j for j in jobs if j.spec.row == "HRNet-W48-s3 / none")
    assert l_row.spec.overrides["init_backbone"] == l_row.config.init_backbone
    write_config(l_row.config, tmp_path / "config.json")      # what the runner hands the notebook
    assert read_config(tmp_path / "config.json").init_backbone == l_row.config.init_backbone
