#!/usr/bin/env bash
# Issue 40's determinism check: two Table 4 rows (none and all, seed 0) of a finished reference
# run, re-run through `make reproduce ARGS="--rows ..."` into another runs folder (the HRNet-W48
# teacher's folder copied there so it counts as done; a fresh inductor cache), then each row's
# final_metrics.json compared byte for byte with the reference's.
#
#   bench/determinism_check.sh /work/reference /work/det     # CLONE (of bench/reference_run.sh), OUT
set -euo pipefail
ref=${1:?usage: bench/determinism_check.sh CLONE OUT} det=${2:?usage: bench/determinism_check.sh CLONE OUT}
[ ! -e "$det" ] || { echo "$det exists: give a new folder" >&2; exit 2; }
mkdir -p "$det/runs/teachers"
cp -a "$ref"/runs/cpu/teachers/hrw48-* "$det/runs/teachers/"
cd "$ref"
DISTILKIT_DATA="$ref.data" /usr/bin/time -v -o "$det/time.txt" make reproduce \
  ARGS="--tables 4 --rows none all --noise-seeds 1 --runs-dir $det/runs --results-dir $det/results --no-figures" \
  > "$det/log.txt" 2>&1
.venv/bin/python - "$ref" "$det" <<'PY'
import sys
from pathlib import Path

import pandas as pd

ref, det = Path(sys.argv[1]), Path(sys.argv[2])
ours, again = pd.read_csv(ref / "results" / "table4.csv"), pd.read_csv(det / "results" / "table4.csv")
same = True
for row in ("none", "all"):
    a, b = (t[(t.row == row) & (t.seed == 0)].iloc[0] for t in (ours, again))
    first = (ref / a.run_dir / "final_metrics.json").read_bytes()
    second = (Path(b.run_dir) if Path(b.run_dir).is_absolute() else ref / b.run_dir) / "final_metrics.json"
    equal = first == second.read_bytes()
    same &= equal
    print(f"{row} seed 0 ({a.config_hash}): final_metrics.json {'identical' if equal else 'DIFFERS'}")
sys.exit(0 if same else 1)
PY
