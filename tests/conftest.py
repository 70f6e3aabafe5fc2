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
