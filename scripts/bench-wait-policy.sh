#!/usr/bin/env bash
# bench-wait-policy.sh - the OpenMP wait policy under contention (figures, not assertions):
# B=1 decode of tiny and llama-110m, f32 and bf16 (workloads/plans/bench-wait-policy.yaml,
# --repeat 5 --interleave), for each policy in POLICIES (default "default runtime PASSIVE ACTIVE"),
# alone and with one competing busy loop that this script starts and stops by its PID:
#   default   OMP_WAIT_POLICY and GOMP_SPINCOUNT unset: what hetbench itself picks
#   runtime   HETBENCH_WAIT_POLICY=runtime: the OpenMP runtime's own default (libgomp: spin, then sleep)
#   PASSIVE, ACTIVE   OMP_WAIT_POLICY=<that>
#   spin=N    GOMP_SPINCOUNT=N (libgomp: spin N iterations, then sleep)
# Prints rate (median of the 5 windows), the windows' range and the timing flags, with the
# machine's load average before and after (other users' jobs show there, not in "alone").
# Extra arguments go to `hetbench run` (e.g. --min-seconds 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${HB_BUILD_DIR:-build}
POLICIES=${POLICIES:-"default runtime PASSIVE ACTIVE"}
TMP=$(mktemp -d)
busy=""
cleanup() { [[ -n $busy ]] && kill "$busy" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
[[ -x $BUILD/hetbench ]] || { echo "bench-wait-policy: build $BUILD/hetbench first (bash scripts/setup.sh)" >&2; exit 2; }
echo "# hetbench OpenMP wait policy benchmark: $(nproc) CPUs; $(uptime | sed 's/.*load/load/')"
printf '# %-12s %-6s %-34s %12s %24s  %s\n' policy load case "tokens/s" "range of 5 windows" "timing"
for load in alone busy; do
  for pol in $POLICIES; do
    if [[ $load == busy ]]; then sh -c 'while :; do :; done' & busy=$!; fi
    case $pol in
      default) env_args=() ;;
      runtime) env_args=(HETBENCH_WAIT_POLICY=runtime) ;;
      spin=*) env_args=(GOMP_SPINCOUNT="${pol#spin=}") ;;
      *) env_args=(OMP_WAIT_POLICY="$pol") ;;
    esac
    env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u HETBENCH_WAIT_POLICY -u HETBENCH_WAIT_POLICY_BY "${env_args[@]}" "$BUILD/hetbench" run \
      --plan workloads/plans/bench-wait-policy.yaml --backend cpu --no-ceilings --interleave --json --no-progress \
      --out "$TMP/$pol-$load.h5" --force "$@" > "$TMP/$pol-$load.jsonl"
    if [[ -n $busy ]]; then kill "$busy"; wait "$busy" 2>/dev/null || true; busy=""; fi
    python3 - "$TMP/$pol-$load.jsonl" "$pol" "$load" <<'PY'
import json, sys
path, pol, load = sys.argv[1:4]
for l in open(path):
    r = json.loads(l)
    rng = "[%.4g, %.4g]" % (r["rep_rate_min"], r["rep_rate_max"]) if r["rep_rate_min"] is not None else "-"
    print("  %-12s %-6s %-34s %12.5g %24s  %s" % (pol, load, r["label"][:34], r["rate"], rng,
          r["timing_reasons"] or "valid"))
PY
  done
done
echo "# after: $(uptime | sed 's/.*load/load/')"
