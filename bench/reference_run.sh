#!/usr/bin/env bash
# The reference run (issue 40): `make reproduce` on a fresh clone of this repository's main with
# an empty data cache, detached from the terminal, timed by /usr/bin/time -v.
#
#   bench/reference_run.sh /work/reference        # first segment: clones, starts, returns at once
#   bench/reference_run.sh /work/reference        # again after it stopped: the next segment resumes
#
# Each segment writes CLONE/segments/N.log (make reproduce's stage lines and ETA) and N.time
# (/usr/bin/time -v: wall time, peak resident memory, exit status); `make reproduce` skips the
# runs a previous segment finished. The data cache is CLONE.data, empty at the first segment.
set -euo pipefail
clone=${1:?usage: bench/reference_run.sh CLONE_DIR}
src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (Debian: apt-get install time)" >&2; exit 2; }
if [ ! -d "$clone/.git" ]; then
    [ ! -e "$clone" ] || { echo "$clone exists and is no clone: give a new folder" >&2; exit 2; }
    [ ! -e "$clone.data" ] || { echo "$clone.data exists: the first segment wants an empty data cache" >&2; exit 2; }
    git clone -q --branch main "$src" "$clone"
fi
cd "$clone"
if pgrep -f "distilkit reproduce --profile cpu" >/dev/null; then
    echo "a reproduce is running already (pgrep -af 'distilkit reproduce')" >&2; exit 2
fi
mkdir -p segments "$clone.data"
n=$(( $(find segments -name '*.time' | wc -l) + 1 ))
echo "segment $n of the reference run: commit $(git rev-parse --short HEAD), clone $clone, data $clone.data"
echo "progress: tail -f $clone/segments/$n.log; time and exit status: $clone/segments/$n.time"
DISTILKIT_DATA="$clone.data" setsid nohup /usr/bin/time -v -o "segments/$n.time" make reproduce \
    > "segments/$n.log" 2>&1 < /dev/null &
