"""bench/deploy_speed.py runs end to end in its tiny mode (smoke sizes, one round): every
(model, runtime, batch) row, the speedups over the teacher beside the paper's, the provenance."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
MODELS = ["distilpose-s-smoke", "distilpose-l-smoke", "teacher-hrw48-smoke"]


def test_the_deploy_benchmark_writes_every_row_in_tiny_mode(tmp_path):
    out = tmp_path / "deploy_speed.csv"
    run = subprocess.run([sys.executable, "bench/deploy_speed.py", "--tiny", "--csv", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = pd.read_csv(out)
    assert len(rows) == 3 * 2 * 2
    assert sorted(rows["model"].unique()) == sorted(MODELS)
    assert set(rows["runtime"]) == {"eager", "onnxruntime"} and set(rows["batch_size"]) == {1, 32}
    assert rows.groupby(["model", "runtime", "batch_size"]).size().eq(1).all()
    assert all(math.isfinite(v) and v > 0 for v in rows["images_per_s"])
    assert (rows["images_per_s_best"] >= rows["images_per_s"] - 1e-3).all()
    assert (rows["rounds"] == 1).all() and rows["tiny"].all() and (rows["input_size"] == "64x48").all()
    by = rows.set_index(["model", "runtime", "batch_size"])
    for runtime in ("eager", "onnxruntime"):
        for batch in (1, 32):
            teacher = by.loc[("teacher-hrw48-smoke", runtime, batch)]
            assert teacher["speedup_vs_teacher"] == 1.0
            s = by.loc[("distilpose-s-smoke", runtime, batch)]
            assert math.isclose(s["speedup_vs_teacher"],
                                s["images_per_s"] / teacher["images_per_s"], rel_tol=1e-3)
    paper = rows.drop_duplicates("model").set_index("model")["paper_speedup_vs_teacher"]
    assert paper.to_dict() == {"distilpose-s-smoke": 4.9, "distilpose-l-smoke": 1.72,
                               "teacher-hrw48-smoke": 1.0}
    assert (rows["onnx_vs_eager_max_abs_diff"] <= 1e-4).all()
    assert rows["device"].nunique() == 1 and rows["torch"].nunique() == 1
    assert rows["onnxruntime"].astype(str).str.match(r"^\d+\.\d+").all()
