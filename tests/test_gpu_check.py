"""bench/gpu_check.sh runs on any machine in its tiny mode: every check it makes on a GPU runs here."""
from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_check_script_runs_every_check_in_tiny_mode(tmp_path, smoke_root):
    out = tmp_path / "gpu_check.csv"
    run = subprocess.run(["bash", "bench/gpu_check.sh", "--tiny", "--csv", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHON": os.environ.get("PYTHON", str(Path(os.sys.executable)))})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = pd.read_csv(out)
    assert rows["device"].nunique() == 1 and rows["tiny"].all()
    train = rows[rows["check"] == "train"].set_index("model")
    assert list(train.index) == ["distilpose-s-smoke", "distilpose-l-smoke", "teacher-hrw48-smoke"]
    assert set(train["precision"]) == {"fp32"}      # on the CPU both precisions are fp32: measured once
    assert train.loc["distilpose-s-smoke", "teacher"] == "teacher-hrw48-smoke"
    assert all(math.isfinite(v) and v > 0 for v in train["images_per_s"])
    infer = rows[rows["check"] == "infer"]
    assert sorted(infer["batch"].unique()) == [1, 4] and len(infer) == 6
    ratios = rows[rows["check"] == "infer_ratio"].set_index(["model", "batch"])
    assert set(ratios.index.get_level_values(0)) == {"S/teacher", "L/teacher"}
    assert (ratios["ratio"] > 0).all() and set(ratios["paper_ratio"]) == {4.9, 1.72}
    torchrun = rows[rows["check"] == "torchrun"].iloc[0]
    assert bool(torchrun["ok"]) and torchrun["backend"] in ("gloo", "nccl")
