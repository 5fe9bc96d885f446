#!/usr/bin/env bash
# Long fuzzing campaigns: every harness in fuzz/ (or the ones named) for SECONDS each, one after
# another, each under a MEMORY_MB address-space limit. Corpora and findings are kept under
# RUN_DIR (default runs/fuzz, gitignored) so that a later campaign continues from them; the
# one-line summary of each harness is appended to RUN_DIR/summary.txt.
#
#   scripts/fuzz_campaign.sh [-s SECONDS] [-m MEMORY_MB] [-d RUN_DIR] [fuzz_torch_zip ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=300
memory_mb=4096
run_dir=runs/fuzz
while getopts "s:m:d:" option; do
  case "$option" in
    s) seconds="$OPTARG" ;;
    m) memory_mb="$OPTARG" ;;
    d) run_dir="$OPTARG" ;;
    *) echo "usage: $0 [-s SECONDS] [-m MEMORY_MB] [-d RUN_DIR] [harness ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ "$#" -eq 0 ]; then
  set -- $(cd fuzz && ls fuzz_*.py | sed 's/\.py$//')
fi
mkdir -p "$run_dir"
status=0
for harness in "$@"; do
  corpus="$run_dir/$harness"
  mkdir -p "$corpus"
  echo "$(date -u +%FT%TZ) $harness: ${seconds} s, ${memory_mb} MB" >&2
  if ! line=$(python3 -m fuzz.runner "$harness" --seconds "$seconds" --memory_mb "$memory_mb" \
      --corpus "$corpus" --log "$corpus/libfuzzer.log"); then
    status=1
  fi
  echo "$(date -u +%FT%TZ) $line" | tee -a "$run_dir/summary.txt"
done
exit "$status"
