#!/bin/bash
# Re-predict every committed fidelity report with the current model, from the runs' own measurements
# (tts-sim fidelity --repredict: accuracy predictions and intervals recomputed, latency kept).
#
#   bash benchmarks/repredict_reports.sh                # the main and deep reports
#   RETIMED=DIR bash benchmarks/repredict_reports.sh    # also the latency sub-reports, from the retimed
#       profiles in DIR (seed3-retimed-TASK.json.gz, seed4-retimed-mul-words.json.gz,
#       seed5-retimed-TASK.json.gz: not committed, they repeat the packaged banks)
#
# Sets 4 and 5 are re-predicted from their as-run reports (fidelity_TASK.asrun.json), kept beside them.
set -euo pipefail
cd "$(dirname "$0")/../docs/fidelity"
run() { echo "== tts-sim fidelity $*"; tts-sim fidelity "$@" --quiet; }
for t in add-words mul-words; do
  run --profile "measured:$t" --repredict "./fidelity_$t.json" --out .
  for d in seed1 seed1-all seed2 seed3; do run --profile "measured:$t" --repredict "$d/fidelity_$t.json" --out "$d"; done
  for d in seed4 seed5; do run --profile "measured:$t" --repredict "$d/fidelity_$t.asrun.json" --out "$d"; done
  for d in deep/set0 deep/set1; do run --profile "deep/measured-$t.json.gz" --repredict "$d/fidelity_$t.json" --out "$d"; done
  if [ -n "${RETIMED:-}" ]; then
    run --profile "$RETIMED/seed3-retimed-$t.json.gz" --repredict "seed3/fresh-tables/fidelity_$t.json" --out seed3/fresh-tables
    run --profile "$RETIMED/seed5-retimed-$t.json.gz" --repredict "seed5/retimed-tables/fidelity_$t.json" --out seed5/retimed-tables
  fi
done
if [ -n "${RETIMED:-}" ]; then
  run --profile "$RETIMED/seed4-retimed-mul-words.json.gz" --repredict seed4/primed-latency/fidelity_mul-words.json \
    --out seed4/primed-latency
fi
