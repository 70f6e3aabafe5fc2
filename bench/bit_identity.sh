#!/usr/bin/env bash
# Do two commits train the same numbers? The same smoke-profile configs (a teacher, a plain
# student, a KT+VT+CS student, an all-losses student with L_SH masked per sample) trained at
# each commit; their final_metrics.json (timings aside, NaN = NaN) and last.pt weights compared.
#   bench/bit_identity.sh BEFORE [AFTER=HEAD] [OUT=/tmp/bit_identity]
# Each commit runs from its own detached worktree with this checkout's .venv, one thread.
# The all-losses student is given --sh-mode masked at AFTER only when AFTER knows the flag
# (the kit's L_SH before #33 was the masked one): compare its metrics, not its config hash.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
before=$1 after=${2:-HEAD} out=${3:-/tmp/bit_identity}
py=$repo/.venv/bin/python
rm -rf "$out"; mkdir -p "$out"
for side in before after; do
  rev=${!side}; tree=$out/tree_$side
  git -C "$repo" worktree add --detach -f "$tree" "$rev" >/dev/null 2>&1
  d=$out/$side; masked=()
  (cd "$tree" && PYTHONPATH=$tree $py -m distilkit.cli train --help) | grep -q -- --sh-mode && masked=(--sh-mode masked)
  run() { (cd "$tree" && OMP_NUM_THREADS=1 PYTHONPATH=$tree $py -m distilkit.cli train --profile smoke --seed 0 --no-progress "$@" >/dev/null); }
  run --model teacher-hrw48 --losses heatmap --out "$d/teacher"
  run --model distilpose-s --losses reg --out "$d/plain"
  run --model distilpose-s --losses reg,kt,vt,cs --teacher "$d/teacher/best.pt" --out "$d/tde_cs"
  run --model distilpose-s --losses reg,kt,vt,sh,cs --teacher "$d/teacher/best.pt" --out "$d/all_masked" "${masked[@]}"
  git -C "$repo" worktree remove --force "$tree"
done
$py - "$out" <<'PY'
import json, math, sys
from pathlib import Path
import torch
out = Path(sys.argv[1])
def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
for run in ("teacher", "plain", "tde_cs", "all_masked"):
    a, b = (json.loads((out / s / run / "final_metrics.json").read_text()) for s in ("before", "after"))
    differ = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if not same(a.get(k), b.get(k))}
    wa, wb = (torch.load(out / s / run / "last.pt", map_location="cpu", weights_only=True)["state_dict"]
              for s in ("before", "after"))
    equal = sum(k in wb and torch.equal(wa[k], wb[k]) for k in wa)
    print(f"{run:11s} final_metrics: {len(set(a) | set(b)) - len(differ)}/{len(set(a) | set(b))} fields "
          f"identical, differ: {differ}; last.pt: {equal}/{len(wa)} tensors bit-identical")
PY
