"""One recipe from the grid to the trainer: a row's overrides land in its TrainConfig, the run
folder's config.json carries that config whole, and ``distilkit train --config`` trains it again."""
from __future__ import annotations

from dataclasses import asdict, make_dataclass, replace
from pathlib import Path

import pandas as pd
import pytest

from distilkit.cli import build_parser
from distilkit.engine import TrainConfig, read_config, write_config
from distilkit.engine.cli import config_of
from distilkit.experiments import table4_rows
from distilkit.experiments.grid import BRING_YOUR_OWN
from distilkit.experiments.plan import Recipe, make_config, plan_jobs
from distilkit.experiments.reproduce import plan_runs
from distilkit.losses import LossConfig
from distilkit.publish import read_manifest

REPO = Path(__file__).resolve().parents[1]


def _row(name: str):
    return next(s for s in table4_rows() if s.row == name)


def _config(spec, **kw) -> TrainConfig:
    return make_config(spec, Recipe("smoke"), seed=0, run_dir=Path("run"),
                       teacher_ckpt=Path("teachers/hrw48-x/best.pt"), **kw)


@pytest.mark.parametrize("overrides, changed", [
    ({"losses": {"alpha_cs": 0.02}}, {"losses": LossConfig(cs=True, alpha_cs=0.02)}),
    ({"losses": {"sh": True}}, {"losses": LossConfig(cs=True, sh=True)}),
    ({"init_backbone": "weights/hrnet_w48.pth", "lr": 1e-3},
     {"init_backbone": "weights/hrnet_w48.pth", "lr": 1e-3}),
    ({"model_overrides": {"num_keypoints": 17}}, {"model_overrides": {"num_keypoints": 17}}),
])
def test_a_rows_overrides_set_those_fields_and_leave_the_rest(overrides, changed):
    plain = _config(_row("CS"))
    config = _config(replace(_row("CS"), overrides=overrides))
    assert config == replace(plain, **changed)
    assert config.hash() != plain.hash()


@pytest.mark.parametrize("overrides, message", [
    ({"seed": 3}, r"row 'CS': overrides may not set \['seed'\]"),
    ({"out_dir": "x", "teacher": "y"}, r"may not set \['out_dir', 'teacher'\]"),
    ({"alpha_cs": 0.02}, r"row 'CS': unknown TrainConfig field\(s\) \['alpha_cs'\]"),
    ({"losses": {"alpha_xx": 1.0}}, r"row 'CS': unknown LossConfig field\(s\) \['alpha_xx'\]"),
])
def test_overrides_of_planned_or_unknown_fields_are_refused_naming_the_row(overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(replace(_row("CS"), overrides=overrides))


def test_the_config_file_gives_back_the_config_it_was_written_from(tmp_path):
    config = replace(_config(replace(_row("all"), overrides={"losses": {"alpha_sh": 0.5}})),
                     teacher_store="runs/.teacher_outputs", device="cuda:1")
    write_config(config, tmp_path / "config.json")
    assert read_config(tmp_path / "config.json") == config


@pytest.mark.parametrize("text, wrong", [
    ("{not json", "not a readable run config"),
    ("[1, 2]", "not a run config"),
    ('{"config": {"model": "distilpose-s"}}', "not a run config"),
    ('{"config": {"out_dir": "r", "modle": "distilpose-s"}}', r"unknown TrainConfig field\(s\) \['modle'\]"),
    ('{"config": {"out_dir": "r", "losses": {"kt": true, "beta": 2}}}', r"unknown LossConfig field\(s\) \['beta'\]"),
    ('{"config": {"out_dir": "r", "losses": "reg"}}', "'losses' must be an object"),
])
def test_a_file_that_is_not_a_run_config_is_refused_naming_it(tmp_path, text, wrong):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=wrong) as err:
        read_config(path)
    assert str(path) in str(err.value)


def _train_args(*argv: str):
    return build_parser().parse_args(["train", *argv])


def test_train_config_trains_the_files_recipe_where_the_command_line_says(tmp_path):
    recorded = replace(_config(replace(_row("all"), overrides={"losses": {"alpha_sh": 0.5}})),
                       teacher_store="runs/.teacher_outputs", device="cuda:1", resume=True)
    write_config(recorded, tmp_path / "config.json")
    again = config_of(_train_args("--config", str(tmp_path / "config.json"), "--out", "new"))
    assert again.hash() == recorded.hash()
    assert again == replace(recorded, out_dir="new", teacher_store=None, device="auto", resume=False,
                            progress=True)


@pytest.mark.parametrize("flags, changed", [
    (["--epochs", "5"], {"epochs": 5}),
    (["--seed", "2", "--profile", "cpu"], {"seed": 2, "profile": "cpu"}),
    (["--losses", "reg,kt"], {"losses": LossConfig(kt=True, alpha_sh=0.5)}),   # the weights stay the file's
    (["--reg-loss", "l1"], {"losses": LossConfig(kt=True, vt=True, sh=True, cs=True, alpha_sh=0.5,
                                                 reg_loss="l1")}),
    (["--no-flip", "--compile"], {"flip_test": False, "compile": True}),
    (["--sh-mode", "masked"], {"losses": LossConfig(kt=True, vt=True, sh=True, cs=True, alpha_sh=0.5,
                                                    sh_mode="masked")}),
])
def test_recipe_flags_given_beside_config_override_the_files_values(tmp_path, flags, changed):
    recorded = replace(_config(replace(_row("all"), overrides={"losses": {"alpha_sh": 0.5}})), out_dir="new",
                       progress=True)
    write_config(recorded, tmp_path / "config.json")
    again = config_of(_train_args("--config", str(tmp_path / "config.json"), "--out", "new", *flags))
    assert again == replace(recorded, **changed)


@pytest.mark.parametrize("model, losses", [("teacher-hrw48", LossConfig(reg=False, heatmap=True)),
                                           ("distilpose-s", LossConfig())])
def test_train_model_alone_keeps_the_defaults_it_always_had(model, losses):
    config = config_of(_train_args("--model", model, "--out", "r"))
    assert config == TrainConfig(out_dir="r", model=model, profile="cpu", losses=losses, seed=0)


def test_train_needs_a_model_or_a_config():
    with pytest.raises(ValueError, match="--model .* or --config"):
        config_of(_train_args("--out", "r"))


# Two smoke-profile hashes, pinned: a change that moves them (and every run folder's name with
# them) is a decision made in its commit, never an accident of a refactor.
PINNED_SMOKE_HASHES = {"HRNet-W48 (teacher)": "e97182061021", "all": "03aa8ce7ffc9"}   # all: sh_mode (#33)


def test_a_teacher_and_a_distilled_students_smoke_hashes_are_pinned():
    teachers, rows = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=Path("runs"))
    planned = {job.spec.row: job.config.hash() for job in teachers + rows}
    assert {row: planned[row] for row in PINNED_SMOKE_HASHES} == PINNED_SMOKE_HASHES


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_teacher_overrides_reach_the_teachers_config_and_move_only_the_runs_that_distil_from_it(profile):
    """Recipe.teacher_overrides (bench/epoch_probe.py: teachers at batch 32): the teacher trains
    with them, the rows distilled from it follow its folder, the rest keep theirs; unused, every
    hash is as it was (the pinned hashes above and the committed results' test go through it)."""
    teachers, rows = plan_jobs([4], Recipe(profile), seeds=[0], runs_dir=Path("runs"))
    b32_teachers, b32_rows = plan_jobs([4], Recipe(profile, teacher_overrides={"batch_size": 32}), seeds=[0],
                                       runs_dir=Path("runs"))
    (teacher,), (b32,) = teachers, b32_teachers
    assert b32.config.schedule() == replace(teacher.config.schedule(), batch_size=32)
    assert replace(b32.config, batch_size=None, out_dir=teacher.config.out_dir) == teacher.config
    assert b32.run_dir != teacher.run_dir and b32.config.hash() != teacher.config.hash()
    for before, after in zip(rows, b32_rows):
        assert after.config.schedule() == before.config.schedule()        # students: batch and epochs kept
        assert (after.run_dir != before.run_dir) == (before.spec.teacher is not None), before.spec.row
        if before.spec.teacher:
            assert Path(after.config.teacher).parent == b32.run_dir


def test_a_teacher_override_of_a_planned_field_is_refused_naming_the_teacher():
    with pytest.raises(ValueError, match=r"row 'HRNet-W48 \(teacher\)': overrides may not set \['seed'\]"):
        plan_jobs([4], Recipe("smoke", teacher_overrides={"seed": 1}), seeds=[0], runs_dir=Path("runs"))


def test_the_cpu_plan_is_the_committed_reference(committed_hashes):
    """The committed reference is the cpu plan's, run for run: a change that moves a hash renews
    the reference (issue 40) or names the rows it moved here."""
    runs = plan_runs([4, 5, 6], Recipe("cpu"), seeds=1, noise_seeds=3, runs_dir=Path("runs"))
    assert {job.config.hash() for job in runs} == set(committed_hashes.values())
    teachers = [job for job in runs if job.spec.row.endswith("(teacher)")]
    rows = [job for job in runs if job not in teachers]
    assert {job.config.schedule().epochs for job in rows} == {6}
    assert {job.config.schedule().epochs for job in teachers} == {8}
    by_row = {job.spec.row: job.config for job in rows if job.seed == 0}
    masked = by_row["all (masked L_SH)"]             # the row "all" but for its L_SH
    assert masked.losses.sh_mode == "masked" and by_row["all"].losses.sh_mode == "authors"
    assert replace(masked, losses=replace(masked.losses, sh_mode="authors")).hash() == by_row["all"].hash()


def test_the_bring_your_own_plan_names_the_committed_runs_but_its_distilled_rows():
    """Table 7 plans the teacher and plain rows of the committed bring_your_own.csv (made by the
    notebook's own runner, eager); its SH rows moved: the notebook named its teacher's folder
    <slug>-<hash>-s0, the grid names it teachers/<key>-<hash>, and #33's sh_mode."""
    committed = set(pd.read_csv(REPO / "results" / "bring_your_own.csv", dtype=str)["config_hash"])
    teachers, rows = plan_jobs([BRING_YOUR_OWN], Recipe("cpu", compile=False), seeds=[0], runs_dir=Path("runs"))
    assert {job.spec.row for job in teachers + rows if job.config.hash() not in committed} == {
        "gap + SH", "flatten + SH"}


def test_a_loss_field_added_at_its_default_leaves_every_hash_as_it_was():
    """Adding a term to losses.DISTILL_TERMS adds LossConfig fields; runs that leave them off
    keep their folders."""
    extended = make_dataclass("Extended", [("xx", bool, False), ("alpha_xx", float, 0.1)],
                              bases=(LossConfig,), frozen=True)
    for losses in (LossConfig(), LossConfig(kt=True, cs=True, alpha_cs=0.02)):
        now = TrainConfig(out_dir="r", profile="smoke", losses=losses)
        with_field = replace(now, losses=extended(**asdict(losses)))
        assert with_field.hash() == now.hash()
        assert replace(with_field, losses=replace(with_field.losses, xx=True)).hash() != now.hash()
        assert replace(with_field, losses=replace(with_field.losses, alpha_xx=0.2)).hash() != now.hash()


def test_the_cpu_plan_names_the_folders_the_published_models_came_from():
    """``reproduce --plan`` on a fresh clone counts the published models' runs among its own."""
    published = {m["source_run"] for m in read_manifest(REPO / "results" / "models")["models"].values()}
    runs = plan_runs([4, 5, 6], Recipe("cpu"), seeds=1, noise_seeds=3, runs_dir=REPO / "runs" / "cpu")
    assert len(published) == 4 and published <= {str(job.run_dir.relative_to(REPO)) for job in runs}
