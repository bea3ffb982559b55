#!/usr/bin/env bash
# submit.sh: submit a strong- or weak-scaling series of mnnh training runs to Slurm
# (jobs/scaling-strong.sbatch or jobs/scaling-weak.sbatch, one job per size), and
# with --wait, wait for them, collect the metrics into a CSV and plot speedup and
# efficiency against ideal.
#
# usage: benchmarks/scaling/submit.sh --mode strong|weak --train FILE --valid FILE --out DIR
#          [--tasks "1 2 4"] | [--nodes "1 2 4 8" --tasks-per-node T]
#          [--wait] [--timeout SECONDS] [-- extra sbatch options]
#   e.g. on a GPU site, 1..8 nodes of 4 GPUs:
#        benchmarks/scaling/submit.sh --mode strong --nodes "1 2 4 8" --tasks-per-node 4 \
#          --train ks2d-train.h5 --valid ks2d-valid.h5 --out study -- -p gpu --gpus-per-node=4
#
# The jobs get one name (mnnh-scaling-<mode>-<dir>) and --dependency=singleton, so
# they run one after another and never compete for the same cores or links.
# Each writes $OUT/<mode>-n<tasks>/ (metrics.jsonl, scaling.json) and its log
# $OUT/<mode>-n<tasks>.out; the job ids go to $OUT/<mode>-jobs.txt.
# The study parameters come from the environment of jobs/scaling-<mode>.sbatch
# (MNNH_GLOBAL_BATCH, MNNH_BATCH_PER_TASK, MNNH_EPOCHS, MNNH_L..., MNNH_BIN, ...).
# Outputs with --wait: $OUT/<mode>.csv (benchmarks/scaling/collect.py) and
# $OUT/<mode>.png (benchmarks/scaling/plot.py), made with /usr/bin/python3
# (matplotlib; override with MNNH_PYTHON).
# Exit status: 0 all jobs completed (and, with --wait, collected and plotted),
# 1 a job failed or timed out, 2 bad usage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JOBS=$(cd "$here/../../jobs" && pwd)
PY=${MNNH_PYTHON:-/usr/bin/python3}
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "scaling/submit.sh: error: $*" >&2; exit 2; }

mode='' train='' valid='' out='' tasks='' nodes='' tpn='' wait=0 timeout=3600
extra=()
while (($#)); do
  case $1 in
    --mode) mode=${2:?}; shift 2 ;;
    --train) train=${2:?}; shift 2 ;;
    --valid) valid=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --tasks) tasks=${2:?}; shift 2 ;;
    --nodes) nodes=${2:?}; shift 2 ;;
    --tasks-per-node) tpn=${2:?}; shift 2 ;;
    --wait) wait=1; shift ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $mode == strong || $mode == weak ]] || die "--mode must be strong or weak"
[[ -n $train && -r $train ]] || die "--train '$train': no such readable file"
[[ -n $valid && -r $valid ]] || die "--valid '$valid': no such readable file"
[[ -n $out ]] || die "--out DIR is required"
[[ -n $tasks && -n $nodes ]] && die "give --tasks or --nodes, not both"
[[ -z $tasks && -z $nodes ]] && tasks="1 2 4"
[[ -n $nodes && -z $tpn ]] && die "--nodes needs --tasks-per-node (one task per GPU)"
command -v sbatch >/dev/null || die "no sbatch on PATH (for the local test cluster: source \$MNNH_SLURM_DIR/env)"

mkdir -p "$out"
out=$(cd "$out" && pwd)
train=$(realpath "$train")
valid=$(realpath "$valid")
name=mnnh-scaling-$mode-$(basename "$out")
ids=()
: >"$out/$mode-jobs.txt"
sizes=${tasks:-$nodes}
for s in $sizes; do
  [[ $s =~ ^[1-9][0-9]*$ ]] || die "size '$s' is not a positive integer"
  if [[ -n $tasks ]]; then
    alloc=(--ntasks="$s"); P=$s
  else
    alloc=(--nodes="$s" --ntasks-per-node="$tpn"); P=$((s * tpn))
  fi
  id=$(MNNH_TRAIN=$train MNNH_VALID=$valid MNNH_OUT=$out \
       sbatch --parsable --job-name="$name" --dependency=singleton "${alloc[@]}" \
         --output="$out/$mode-n$P.out" "${extra[@]}" "$JOBS/scaling-$mode.sbatch") \
    || die "sbatch refused the $P-task point"
  id=${id%%;*}
  ids+=("$id")
  echo "$P $id" >>"$out/$mode-jobs.txt"
  echo "submitted $mode scaling point: $P task(s), job $id, log $out/$mode-n$P.out"
done
((wait)) || exit 0

# ---- wait: scontrol while the job is known, sacct after (clusters with accounting) ----
job_state() {
  local s
  s=$(scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p' | head -n1)
  if [[ -z $s ]] && command -v sacct >/dev/null; then
    s=$(sacct -n -X -P -j "$1" -o State 2>/dev/null | head -n1 | awk '{print $1}')
  fi
  echo "${s:-UNKNOWN}"
}
t0=$SECONDS
failed=0
for id in "${ids[@]}"; do
  while :; do
    st=$(job_state "$id")
    case $st in
      COMPLETED) break ;;
      FAILED|CANCELLED*|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|UNKNOWN)
        echo "scaling/submit.sh: job $id ended $st (log in $out)" >&2; failed=1; break ;;
    esac
    if ((SECONDS - t0 > timeout)); then
      echo "scaling/submit.sh: job $id still $st after $timeout s" >&2; failed=1; break
    fi
    sleep 2
  done
done
((failed == 0)) || exit 1
"$PY" "$here/collect.py" "$out" --mode "$mode" --csv "$out/$mode.csv"
"$PY" "$here/plot.py" "$out/$mode.csv" --png "$out/$mode.png"
