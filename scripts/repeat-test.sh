#!/usr/bin/env bash
# Proves the suite is green repeatably (issue 16): clones this repository's HEAD into a fresh
# directory and runs `make test` there RUNS times in a row, with a CPU-burning process beside the
# suite in the runs listed by --hog-runs. The first run installs and builds everything from the
# clean clone (as CI does); later runs reuse that build, so they repeat the suite, not the compile.
#
#   scripts/repeat-test.sh                       5 runs, a CPU hog beside runs 2 and 4
#   scripts/repeat-test.sh --runs 3 --hog-runs "1 3" --dir /tmp/carehub-repeat
#
# The hog is one busy shell loop per --hog-cores (default 1), niced to 0 like the suite, killed
# when its run ends. One line per run: number, hog yes/no, exit status, minutes. The log of run N
# is <dir>/run-N.log. Exits 1 unless every run passed.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs=5
hog_runs="2 4"
hog_cores=1
dir="${TMPDIR:-/tmp}/carehub-repeat-$$"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --hog-runs) hog_runs="$2"; shift 2 ;;
    --hog-cores) hog_cores="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "repeat-test: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ -e "$dir" ]]; then
  echo "repeat-test: $dir exists; name a fresh directory with --dir" >&2
  exit 2
fi

git clone --quiet --no-hardlinks "$root" "$dir"
echo "repeat-test: $(git -C "$dir" rev-parse --short HEAD) cloned into $dir; $runs runs, hog in: $hog_runs"

hog_pids=()
stop_hog() {
  for pid in "${hog_pids[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  hog_pids=()
}
trap stop_hog EXIT

failed=0
for ((i = 1; i <= runs; i++)); do
  hog=no
  if [[ " $hog_runs " == *" $i "* ]]; then
    hog=yes
    for ((c = 0; c < hog_cores; c++)); do
      bash -c 'while :; do :; done' &
      hog_pids+=($!)
    done
  fi
  start=$(date +%s)
  status=0
  make -C "$dir" test >"$dir/run-$i.log" 2>&1 || status=$?
  stop_hog
  minutes=$(awk -v s="$(( $(date +%s) - start ))" 'BEGIN { printf "%.1f", s / 60 }')
  echo "run $i: hog $hog, exit $status, $minutes min ($(grep -E 'tests passed' "$dir/run-$i.log" | tail -1))"
  [[ $status -eq 0 ]] || failed=1
done
exit $failed
