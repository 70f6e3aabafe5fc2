"""Shared fixtures: the smoke synthetic set (generated once per session) and trained smoke runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Tests share two cores with nothing else; one intra-op thread keeps timings steady and lets
# subprocess-based tests (torchrun, papermill) run beside the main process.
torch.set_num_threads(1)


@pytest.fixture
def cpu_as_the_reference_ran(monkeypatch):
    """The cpu profile with the student schedule of 3a755c5's reference (results/previous_reference/):
    8 epochs, decay at 7 (issue 39 trains them 6). For the tests pinning that recipe's hashes."""
    from dataclasses import replace

    from distilkit.profiles import PROFILES

    cpu = PROFILES["cpu"]
    as_ran = replace(cpu.student_schedule, epochs=8, milestones=(7,))
    monkeypatch.setitem(PROFILES, "cpu", replace(cpu, student_schedule=as_ran))


@pytest.fixture(scope="session")
def committed_hashes() -> dict[tuple[str, str, str], str]:
    """The committed reference's ``config_hash`` by (table, row, seed), from results/'s table CSVs."""
    import csv

    found = {}
    for name in ("teachers.csv", "table4.csv", "table5.csv", "table6.csv"):
        with open(REPO / "results" / name, newline="") as f:
            found.update({(r["table"], r["row"], r["seed"]): r["config_hash"] for r in csv.DictReader(f)})
    return found


@pytest.fixture(scope="session")
def smoke_root(tmp_path_factory) -> Path:
    from distilkit.data.synthetic import ensure_synthetic

    root = tmp_path_factory.mktemp("data")
    os.environ["DISTILKIT_DATA"] = str(root)  # notebooks and CLI calls in subprocesses reuse it
    return Path(ensure_synthetic("smoke", seed=0, root=root, progress=False))


@pytest.fixture(scope="session")
def smoke_teacher(smoke_root, tmp_path_factory) -> Path:
    """A smoke-size HRNet-analog teacher, trained once for the whole session."""
    from distilkit.engine import TrainConfig, fit
    from distilkit.losses import LossConfig

    out = tmp_path_factory.mktemp("teacher")
    fit(TrainConfig(out_dir=str(out), model="teacher-hrw48", profile="smoke",
                    losses=LossConfig(reg=False, heatmap=True), data_root=str(smoke_root),
                    progress=False))
    return out / "last.pt"


@pytest.fixture(scope="session")
def viz_checkpoints(smoke_root, smoke_teacher, tmp_path_factory) -> dict[str, Path]:
    """The four roles of the visualisation notebooks (teacher, plain, tde, full) at the smoke
    profile, trained once for the whole session into a temporary folder."""
    from distilkit.viz.checkpoints import ensure_checkpoints

    cache = tmp_path_factory.mktemp("viz_cache")
    paths = ensure_checkpoints("smoke", cache, given={"teacher": smoke_teacher},
                               use_main_job=False, use_published=False)
    assert set(paths) == {"teacher", "plain", "tde", "full"}
    return paths


@pytest.fixture
def drawn_png():
    """``drawn_png(path, min_std=0.05)``: the saved PNG read back (matplotlib.image.imread) as
    an (H, W, 3) array in [0, 1], after checking it is not blank: its pixel standard deviation
    exceeds ``min_std`` (a blank canvas: 0; an empty set of axes, frame and ticks only: about
    0.09; the kit's line plots 0.12-0.37, its image panels 0.29-0.39). What the figure shows
    is checked on its artists where a test holds the figure itself."""
    import matplotlib.image as mpimg
    import numpy as np

    def read(path, *, min_std: float = 0.05) -> "np.ndarray":
        rgb = np.asarray(mpimg.imread(str(path)))[..., :3]
        assert rgb.ndim == 3 and min(rgb.shape[:2]) >= 100, f"{path}: {rgb.shape}"
        assert float(rgb.std()) > min_std, f"{path} looks blank (pixel std {rgb.std():.3f})"
        return rgb

    return read
