"""The shared teacher store is off wherever it would not fit: over the cap or the free disk."""
from __future__ import annotations

from pathlib import Path

import pytest

from distilkit import teacher_store_budget as budget
from distilkit.experiments.grid import table4_rows
from distilkit.experiments.plan import Recipe, plan_jobs, store_decisions

DISTILLED_TABLE4_ROWS = [spec.row for spec in table4_rows() if spec.teacher]


@pytest.mark.parametrize("model, expected", [
    ("teacher-hrw48", 17 * 64 * 48 * 4 + (17 + 16 * 16) * 192 * 4),    # 418,560: heatmaps + tokens
    ("teacher-stemnet", 418_560),
    ("simplebaseline-r50", 17 * 64 * 48 * 4),                          # heatmaps only
    ("teacher-hrw48-cpu", 17 * 16 * 12 * 4 + (17 + 8 * 6) * 96 * 4),   # the 38 KB of results/README
])
def test_bytes_per_crop_are_the_fields_the_store_holds(model, expected):
    assert budget.bytes_per_crop(model) == expected


@pytest.mark.parametrize("mode, estimate, free, on, words", [
    ("auto", 10**9, 10**12, True, "on, ~1.0 GB"),
    ("auto", 60 * 10**9, 10**12, False, "exceed the 50.0 GB cap"),
    ("auto", 10**9, 10**8, False, "exceed the 100.0 MB free"),
    ("on", 19 * 10**12, 10**8, True, "~19.0 TB for 3 rows (turned on explicitly)"),
    ("off", 10**6, 10**12, False, "turned off"),
])
def test_the_store_is_off_over_the_cap_or_the_free_space(monkeypatch, tmp_path, mode, estimate, free, on, words):
    monkeypatch.setattr(budget, "free_bytes", lambda folder: free)
    decision = budget.decide("hrw48-abc", 3, estimate, tmp_path, mode=mode)
    assert decision.on is on
    assert words in decision.line() and "\n" not in decision.line()


def test_an_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="auto, on or off"):
        budget.decide("t", 2, 1, tmp_path, mode="sometimes")


def _stored(profile: str, mode: str = "auto") -> list[str]:
    _, rows = plan_jobs([4], Recipe(profile), seeds=[0], runs_dir=Path("/tmp/unused"), teacher_store=mode)
    return [job.spec.row for job in rows if job.config.teacher_store]


def test_paper_rows_run_their_teacher_live_by_default_and_share_it_when_asked():
    assert _stored("paper") == []
    assert _stored("paper", "on") == DISTILLED_TABLE4_ROWS
    (decision,) = store_decisions(plan_jobs([4], Recipe("paper"), seeds=[0], runs_dir=Path("/tmp/u"))[1],
                                  Path("/tmp/u"))
    # 149,813 COCO crops x 300 epochs x 418,560 bytes
    assert decision.estimate == 149_813 * 300 * 418_560 and not decision.on


def test_smoke_rows_keep_sharing_their_teacher():
    assert _stored("smoke") == DISTILLED_TABLE4_ROWS and _stored("smoke", "off") == []


def test_a_kit_made_synthetic_set_is_estimated_from_its_own_marker(smoke_root, tmp_path):
    """A data root the kit generated is sized from the config it was written with, not as
    COCO: the smoke set's store is tens of MB, never COCO's gigabytes."""
    from distilkit.data.synthetic.config import resolve_config
    from distilkit.experiments.plan import train_crops

    def crops(root):
        jobs = plan_jobs([4], Recipe("smoke", data_root=str(root)), seeds=[0], runs_dir=tmp_path)[1]
        return train_crops(next(job for job in jobs if job.config.teacher).config)

    synth = resolve_config("smoke")
    assert crops(smoke_root) == round(synth.num_train_images * sum(synth.people_per_image) / 2)
    coco_layout = tmp_path / "coco"
    coco_layout.mkdir()
    assert crops(coco_layout) == budget.COCO_TRAIN_INSTANCES    # no marker: a COCO root
