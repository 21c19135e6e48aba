#!/usr/bin/env bash
# test_timing_run.sh HETBENCH - the timing verdict end to end: `hetbench run` of a tiny decode
# case, quiet and with three busy loops pinned to its CPU (started and killed by PID), in the
# run table, --json and the HDF5 file.
#
# The quiet run reads a fake, unchanging /proc (HETBENCH_PROC_ROOT), so steal and foreign CPU
# time are 0 by construction whatever else the CI machine runs; its own CPU share is real, so
# the test checks that the interference flag agrees with cpu_util and that the injected run
# got clearly less CPU and is flagged. A synthetic topology (32 MiB L3 per core group) makes
# fits_in_cache deterministic.
set -u
HB=$1
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
KIDS=()
cleanup() { for p in "${KIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
command -v taskset >/dev/null || { echo "SKIP: no taskset" >&2; exit 77; }
command -v h5dump >/dev/null || { echo "SKIP: no h5dump" >&2; exit 77; }

export OMP_NUM_THREADS=1
RUN=(run --workload decode --model tiny --min-seconds 0.25 --warmup 2 --no-ceilings --no-progress --backend cpu)
CPU=$(taskset -pc $$ | sed 's/.*: *//; s/[,-].*//')   # the first CPU we may use

mkdir -p "$T/proc"
printf 'cpu  10 0 10 1000 0 0 0 0 0 0\n' >"$T/proc/stat"
for c in $(seq 0 255); do printf 'cpu%d 10 0 10 1000 0 0 0 0 0 0\n' "$c" >>"$T/proc/stat"; done
printf '0.10 0.10 0.10 1/100 1234\n' >"$T/proc/loadavg"

# field NAME FILE: the JSON value of NAME (a number, or a string without quotes) in FILE's first line
field() { head -1 "$2" | grep -o "\"$1\":\(\"[^\"]*\"\|[^,}]*\)" | head -1 | sed "s/^\"$1\"://; s/\"//g"; }

# ---- quiet ----
HETBENCH_PROC_ROOT=$T/proc HETBENCH_TOPOLOGY=$HERE/topologies/cpu-2socket.xml \
  taskset -c "$CPU" "$HB" "${RUN[@]}" --json --out "$T/q.h5" >"$T/q.json" 2>"$T/q.err" || fail "quiet run: $(cat "$T/q.err")"
qv=$(field timing_valid "$T/q.json"); qf=$(field timing_reasons "$T/q.json"); qu=$(field cpu_util "$T/q.json")
echo "quiet:    timing_valid=$qv reasons='$qf' cpu_util=$qu rate=$(field rate "$T/q.json") other_cpu_s=$(field other_cpu_s "$T/q.json") steal_s=$(field steal_s "$T/q.json")" >&2
[[ -n $qv && -n $qu ]] || fail "quiet: no timing_valid / cpu_util in --json: $(cat "$T/q.json")"
for bad in steal cpu_contention short_window rate_over_ceiling not_measured no_evidence; do
  [[ ,$qf, == *,$bad,* ]] && fail "quiet run flagged $bad (fake /proc: nothing else ran): $qf"
done
[[ ,$qf, == *,fits_in_cache,* ]] || fail "quiet: tiny (a few MiB) in 512 MiB of L3 not flagged fits_in_cache: $qf"
if awk "BEGIN{exit !($qu < 0.5)}"; then
  [[ ,$qf, == *,interference,* ]] || fail "quiet: cpu_util $qu < 0.5 but no interference flag"
else
  [[ ,$qf, == *,interference,* ]] && fail "quiet: cpu_util $qu >= 0.5 yet flagged interference"
fi
[[ ,$qf, == *,interference,* || ,$qf, == *,high_cv,* ]] || [[ $qv == 1 ]] || fail "quiet: invalid without a reason: $qf"
# the HDF5 file: evidence with the window, verdict in /summary, LLC and reference loop in /devices
h5dump -a /cases/0000/rank0/cpu_util "$T/q.h5" >/dev/null 2>&1 || fail "quiet: no cpu_util attribute in rank0"
h5dump -a /cases/0000/rank0/ref_loop_s_end "$T/q.h5" 2>/dev/null | grep -Eq '\(0\): [0-9.e-]+$' ||
  fail "quiet: the last case has no finite ref_loop_s_end"
h5dump -d /devices "$T/q.h5" 2>/dev/null | grep -q '"llc_bytes"' || fail "quiet: /devices has no llc_bytes"
h5dump -d /summary "$T/q.h5" 2>/dev/null | grep -q '"timing_flags"' || fail "quiet: /summary has no timing_flags"

# ---- injected: three busy loops on our CPU ----
for i in 1 2 3; do
  taskset -c "$CPU" sh -c 'while :; do :; done' &
  KIDS+=($!)
done
sleep 0.1
# a synthetic topology: hetbench never binds, so taskset's single CPU holds (a real topology
# would rebind the rank to every core, and on an idle machine it would escape to a free one)
SYN=$HERE/topologies/cpu-2socket.xml
HETBENCH_TOPOLOGY=$SYN taskset -c "$CPU" "$HB" "${RUN[@]}" --out "$T/i.h5" >"$T/i.txt" 2>"$T/i.err" ||
  fail "injected run: $(cat "$T/i.err")"
HETBENCH_TOPOLOGY=$SYN HETBENCH_PROC_ROOT=$T/proc taskset -c "$CPU" "$HB" "${RUN[@]}" --json --out "$T/j.h5" >"$T/i.json" 2>>"$T/i.err" ||
  fail "injected run (json): $(cat "$T/i.err")"
for p in "${KIDS[@]}"; do kill -9 "$p"; wait "$p" 2>/dev/null; done
KIDS=()
iv=$(field timing_valid "$T/i.json"); iflags=$(field timing_reasons "$T/i.json"); iu=$(field cpu_util "$T/i.json")
echo "injected: timing_valid=$iv reasons='$iflags' cpu_util=$iu rate=$(field rate "$T/i.json")" >&2
grep -E '^ +0 +0 ' "$T/i.txt" | grep -q 'interference' || fail "injected: the run table does not say interference: $(cat "$T/i.txt")"
grep -E '^ +0 +0 ' "$T/i.txt" | grep -q 'cpu_contention' || fail "injected (real /proc): no cpu_contention in the table: $(cat "$T/i.txt")"
[[ $iv == 0 ]] || fail "injected: timing_valid=$iv"
[[ ,$iflags, == *,interference,* ]] || fail "injected: reasons '$iflags' lack interference"
# with k other runnable tasks on our CPU the quiet share is 1/(1+k), the injected 1/(4+k): at most 0.8x for k <= 11
awk "BEGIN{exit !($iu < 0.5 && $iu < 0.8 * $qu)}" || fail "injected cpu_util $iu not clearly below quiet $qu"

# ---- --repeat: windows, the median of their rates, an interval from them ----
HETBENCH_PROC_ROOT=$T/proc "$HB" run --workload decode --model tiny --min-seconds 0.05 --warmup 1 --no-ceilings \
  --no-progress --backend cpu --repeat 3 --json --out "$T/r.h5" >"$T/r.json" 2>"$T/r.err" || fail "--repeat run: $(cat "$T/r.err")"
[[ $(field n_reps "$T/r.json") == 3 ]] || fail "--repeat 3: n_reps $(field n_reps "$T/r.json")"
awk "BEGIN{r=$(field rate "$T/r.json"); a=$(field rep_rate_min "$T/r.json"); b=$(field rep_rate_max "$T/r.json");
     l=$(field rate_ci_lo "$T/r.json"); h=$(field rate_ci_hi "$T/r.json"); exit !(a <= r && r <= b && l <= r && r <= h && l < h)}" ||
  fail "--repeat 3: rate outside the windows' range or its interval: $(cat "$T/r.json")"
h5dump -a /cases/0000/rank0/rep_iters "$T/r.h5" 2>/dev/null | grep -Eq '\(0\): [0-9]+, [0-9]+, [0-9]+$' || fail "--repeat 3: no rep_iters[3]"
"$HB" run --workload decode --model tiny --repeat 65 --out "$T/r65.h5" >/dev/null 2>"$T/r65.err"
[[ $? -eq 2 ]] && grep -q 'repeat.*65' "$T/r65.err" || fail "--repeat 65 accepted: $(cat "$T/r65.err")"

# ---- --interleave: window k of every case before window k+1 of any ----
"$HB" run --workload decode --model tiny --dtype f32,bf16 --min-seconds 0.02 --warmup 1 --no-ceilings --no-progress \
  --backend cpu --repeat 3 --interleave --json --out "$T/il.h5" >"$T/il.json" 2>"$T/il.err" || fail "--interleave run: $(cat "$T/il.err")"
[[ $(grep -c '"n_reps":3' "$T/il.json") == 2 ]] || fail "--interleave: not 3 windows for both cases: $(cat "$T/il.json")"
# case 1 ends the process the first time it runs: back to back that is after case 0's three
# windows (case 0 is in the file), interleaved before case 0's second one (no case complete)
for mode in back-to-back --interleave; do
  HETBENCH_FAULT='rank=0,case=1,kind=exit' "$HB" run --workload decode --model tiny --dtype f32,bf16 --min-seconds 0.02 \
    --warmup 1 --no-ceilings --no-progress --backend cpu --repeat 3 ${mode/back-to-back/} --out "$T/f$mode.h5" \
    >/dev/null 2>&1
  rc=$?
  n=$(h5ls -r "$T/f$mode.h5" 2>/dev/null | grep -c '^/cases/[0-9]* ')
  echo "$mode: exit $rc, cases in the file: $n" >&2
  want=$([[ $mode == back-to-back ]] && echo 1 || echo 0)
  [[ $rc == 3 && $n == "$want" ]] || fail "$mode with case 1 exiting: exit $rc, $n cases in the file (want $want)"
done

# ---- the OpenMP wait policy: GOMP_SPINCOUNT=10000 unless the user chose (harness/main.c) ----
# libgomp itself says what it runs with (OMP_DISPLAY_ENV=verbose, the last display is after
# hetbench re-executed itself): PASSIVE spins 0 times, its unset default 300000
wp() { # wp NAME [VAR=VALUE...]: a tiny run; the runtime's last GOMP_SPINCOUNT and /devices omp_wait_policy
  local name=$1; shift
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u HETBENCH_WAIT_POLICY -u HETBENCH_WAIT_POLICY_BY "$@" OMP_DISPLAY_ENV=verbose \
    "$HB" run --workload decode --model tiny --min-seconds 0 --min-iters 2 --warmup 0 --no-ceilings --no-progress \
    --backend cpu --idle-seconds 0 --out "$T/wp-$name.h5" >/dev/null 2>"$T/wp-$name.err"
  echo "rc=$? spin=$(grep -o "GOMP_SPINCOUNT = '[0-9]*'" "$T/wp-$name.err" | tail -1 | grep -o "[0-9]*")" \
    "policy=$(h5dump -d /devices "$T/wp-$name.h5" 2>/dev/null | grep -o '"\(PASSIVE\|ACTIVE\|GOMP_SPINCOUNT\|runtime default\)[^"]*"' | tr -d '"')"
}
got=$(wp default); echo "wait policy, nothing set: $got" >&2
[[ $got == "rc=0 spin=10000 policy=GOMP_SPINCOUNT=10000 (hetbench default)" ]] || fail "default wait policy: $got"
got=$(wp passive HETBENCH_WAIT_POLICY=passive)
[[ $got == "rc=0 spin=0 policy=PASSIVE (hetbench default)" ]] || fail "HETBENCH_WAIT_POLICY=passive: $got"
got=$(wp active OMP_WAIT_POLICY=ACTIVE)
[[ $got == "rc=0 spin=30000000000 policy=ACTIVE (user)" ]] || fail "OMP_WAIT_POLICY=ACTIVE overridden: $got"
got=$(wp spin GOMP_SPINCOUNT=1000)
[[ $got == "rc=0 spin=1000 policy=GOMP_SPINCOUNT=1000 (user)" ]] || fail "GOMP_SPINCOUNT=1000 overridden: $got"
got=$(wp runtime HETBENCH_WAIT_POLICY=runtime)
[[ $got == "rc=0 spin=300000 policy=runtime default" ]] || fail "HETBENCH_WAIT_POLICY=runtime: $got"
got=$(wp bogus HETBENCH_WAIT_POLICY=spin)
[[ $got == rc=2* ]] && grep -q "HETBENCH_WAIT_POLICY='spin' (accepted: bounded, passive, runtime)" "$T/wp-bogus.err" ||
  fail "HETBENCH_WAIT_POLICY=spin accepted: $got $(cat "$T/wp-bogus.err")"

# ---- the STREAM ceiling: arrays >= 4 x the LLC ----
# the synthetic node with 8 MiB per L3 (16 of them, 128 MiB): 3 x 128 MiB arrays are too small,
# the triad must use 3 x 256 MiB; --json has no header, so the table run shows peak_source
sed 's/type="L3Cache"\(.*\)cache_size="33554432"/type="L3Cache"\1cache_size="8388608"/' \
  "$HERE/topologies/cpu-2socket.xml" >"$T/llc128.xml"
HETBENCH_TOPOLOGY=$T/llc128.xml "$HB" run --workload stream --stream-n 1024 --min-seconds 0 --min-iters 2 \
  --warmup 0 --no-progress --backend cpu --out "$T/s.h5" >"$T/s.txt" 2>"$T/s.err" || fail "stream run: $(cat "$T/s.err")"
grep -q 'stream triad 3x256MiB' "$T/s.txt" || fail "LLC 128 MiB: the ceiling is not a 3 x 256 MiB triad: $(grep ceilings "$T/s.txt")"
grep -E '^ +0 +0 ' "$T/s.txt" | grep -q 'llc' || fail "a 12 KiB stream case is not shown as fitting in the LLC: $(cat "$T/s.txt")"
grep ceilings "$T/s.txt" >&2

[[ $fails -eq 0 ]] && echo "test_timing_run: ok" >&2
exit $((fails > 0))
