#!/usr/bin/env bash
# test_run_paths.sh HETBENCH - output paths checked before anything runs (a folder, a missing or
# unwritable folder, too little free space: exit 2, one line, no HDF5 dump, nothing written), a
# full disk found again before each case (the case's row says so, the file stays a valid
# incomplete file that --resume finishes), --resume restoring the first run's options,
# --dry-run (cases, memory, fit, duration; nothing written), the progress line (on a terminal
# only), `help COMMAND` and `verify --require-device`.
set -u
HB=$1
T=$(mktemp -d)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
fails=0 checks=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
BASE=(--model tiny --layers 1 --prompt 8 --gen 4 --min-iters 2 --warmup 0 --idle-seconds 0 --power-hz 0 --backend cpu)
FAST=(--workload decode "${BASE[@]}" --min-seconds 0 --max-iters 2 --no-progress)

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { checks=$((checks + 1)); }

# expect CODE PATTERN -- args...: exit code, stderr matching PATTERN; for 2: one line, no HDF5 dump
expect() {
  local code=$1 pat=$2; shift 3
  ok
  "$HB" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [[ $rc -ne $code ]]; then fail "hetbench $* -> exit $rc, expected $code; stderr: $(head -c 400 "$T/err")"; return; fi
  if [[ -n $pat ]] && ! grep -Eq -- "$pat" "$T/err"; then fail "hetbench $* -> stderr '$(head -c 400 "$T/err")' does not match '$pat'"; fi
  if [[ $code -eq 2 ]] && [[ $(wc -l <"$T/err") -ne 1 ]]; then fail "hetbench $* -> expected one line on stderr, got: $(cat "$T/err")"; fi
  if grep -q "HDF5-DIAG" "$T/err"; then fail "hetbench $* -> a raw HDF5 error dump on stderr"; fi
}

# the folder's listing must not change (nothing written, no debris)
listing() { ls -A "$1" | sort; }

# ---- output paths: before anything runs ----
mkdir -p "$T/w" "$T/w/sub"
before=$(listing "$T/w")
expect 2 "^hetbench run: --out $T/w/sub: is a folder \(name a file in it" -- run "${FAST[@]}" --no-ceilings --out "$T/w/sub"
expect 2 "folder '$T/w/none' does not exist" -- run "${FAST[@]}" --no-ceilings --out "$T/w/none/r.h5"
touch "$T/w/sub/f.h5"
expect 2 "'$T/w/sub/f.h5' is not a folder" -- run "${FAST[@]}" --no-ceilings --out "$T/w/sub/f.h5/r.h5"
rm -f "$T/w/sub/f.h5"
expect 2 "cannot create files in '/proc'" -- run "${FAST[@]}" --no-ceilings --out /proc/hetbench-test.h5
if [[ $(id -u) -ne 0 ]]; then # root writes anywhere: a read-only folder is no obstacle to it
  mkdir "$T/ro" && chmod 0555 "$T/ro"
  expect 2 "cannot create files in '$T/ro'" -- run "${FAST[@]}" --no-ceilings --out "$T/ro/r.h5"
fi
HETBENCH_FREE_BYTES=4096 expect 2 "--out $T/w/r.h5: only 4 KiB free on the file system of '$T/w' \(at least 1.0 MiB needed\)" \
  -- run "${FAST[@]}" --no-ceilings --out "$T/w/r.h5"
expect 2 "$T/w/none.h5: cannot open: No such file" -- run --resume "$T/w/none.h5" --no-progress
[[ "$(listing "$T/w")" == "$before" ]] || fail "an output-path error left files: $(listing "$T/w")"
ok

# ---- a full disk before case 2 (of 3): the row says so, the file stays valid ----
HETBENCH_FAULT="rank=0,case=1,kind=disk-full" expect 1 "disk full before case 2 of 3 was written.*--resume $T/w/full.h5" \
  -- run "${FAST[@]}" --batch 1,2,4 --no-ceilings --out "$T/w/full.h5"
grep -q "^# case 1 (decode tiny\[1/2L\] f32 B=2 P=8 G=4): NOT WRITTEN: disk full" "$T/out" ||
  fail "no NOT WRITTEN row for case 1: $(cat "$T/out")"
ok
"$HB" report "$T/w/full.h5" --format csv >"$T/full.csv" 2>"$T/err" || fail "report cannot read the file left by a full disk: $(cat "$T/err")"
n_rows=$(grep -c "^decode" "$T/full.csv" || true)
[[ $n_rows -eq 1 ]] || fail "the file left by a full disk has $n_rows cases, expected 1: $(cat "$T/full.csv")"
ok
ls -A "$T/w" | grep -q partial && fail "a work file was left: $(listing "$T/w")"
ok

# ---- --resume restores the first run's options (--no-ceilings, --idle-seconds, --power-hz) ----
expect 0 "" -- run --resume "$T/w/full.h5" --no-progress
grep -q "^# ceilings: nan TFLOP/s" "$T/out" || fail "--resume measured ceilings the first run (--no-ceilings) did not: $(head -3 "$T/out")"
ok
"$HB" report "$T/w/full.h5" --format csv >"$T/full.csv" 2>"$T/err"
n_rows=$(grep -c "^decode" "$T/full.csv" || true)
[[ $n_rows -eq 3 ]] || fail "after --resume the file has $n_rows cases, expected 3"
ok

# ---- --dry-run: every case with memory, fit and time; exit 0; nothing written ----
touch "$T/w/exists.h5"
before=$(listing "$T/w")
expect 0 "" -- run "${BASE[@]}" --no-ceilings --batch 1,8 --workload decode,prefill --min-seconds 0.1 --dry-run \
  --no-progress --out "$T/w/exists.h5"
grep -q "^# dry run: 4 cases on 1 rank (concurrent schedule); rank 0: .* free of " "$T/out" || fail "dry run header: $(cat "$T/out")"
# (the first flag outermost: --batch)
for c in "0 +decode tiny\[1/2L\] f32 B=1 P=8 G=4" "1 +prefill tiny\[1/2L\] f32 B=1 P=8" "2 +decode tiny\[1/2L\] f32 B=8 P=8 G=4" \
         "3 +prefill tiny\[1/2L\] f32 B=8 P=8"; do
  grep -Eq "^  $c +[0-9.]+ (KiB|MiB) +yes +[0-9.]+ s" "$T/out" || fail "dry run lacks case '$c': $(cat "$T/out")"
  ok
done
grep -q "^# estimated duration: at least " "$T/out" || fail "dry run: no duration: $(cat "$T/out")"
grep -q "^# nothing was run and nothing was written" "$T/out" || fail "dry run: no closing line"
[[ "$(listing "$T/w")" == "$before" ]] || fail "--dry-run wrote: $(listing "$T/w")"
[[ ! -s "$T/w/exists.h5" ]] || fail "--dry-run changed an existing file"
ok
# a case too large for the device is reported as not fitting, still exit 0
expect 0 "" -- run --workload decode --model llama3-70b --batch 64 --prompt 4096 --dry-run --no-progress --out "$T/w/big.h5"
grep -Eq "^  0 +decode llama3-70b .* GiB +NO " "$T/out" || fail "dry run: llama3-70b fits? $(cat "$T/out")"
grep -q "do not fit rank 0's device" "$T/out" || fail "dry run: no note about the case that does not fit"
ok

# ---- progress: on a terminal only ----
"$HB" run --workload decode "${BASE[@]}" --no-ceilings --min-seconds 1.2 --out "$T/w/p1.h5" \
  >/dev/null 2>"$T/err" || fail "run for the progress check failed: $(cat "$T/err")"
grep -q "ETA" "$T/err" && fail "a progress line on a stderr that is not a terminal: $(cat -v "$T/err")"
ok
if command -v script >/dev/null 2>&1; then
  script -qfc "'$HB' run --workload decode ${BASE[*]} --no-ceilings --min-seconds 1.5 --out '$T/w/p2.h5' >/dev/null" \
    "$T/tty" >/dev/null 2>&1 || fail "run under script(1) failed"
  # redrawn during the case (at least twice a second): several lines of one case, rising counts
  n=$(tr '\r' '\n' <"$T/tty" | grep -ac "^.\[K\[1/1\] decode tiny.* iterations · 0:0[0-9] elapsed · ETA ")
  ((n >= 3)) || fail "progress line drawn $n times in 1.5 s: $(tr '\r' '\n' <"$T/tty" | cat -v | head -5)"
  last=$(tr '\r' '\n' <"$T/tty" | grep -ao "· [0-9]* iterations" | tail -1 | tr -dc 0-9)
  ((last > 0)) || fail "the progress line's iteration count never moved"
  ok
else
  echo "note: script(1) not installed: progress on a terminal not checked"
fi

# ---- help COMMAND, verify --require-device ----
expect 0 "" -- help run
grep -q "^usage: hetbench run " "$T/out" || fail "help run printed: $(head -2 "$T/out")"
grep -q -- "--dry-run" "$T/out" || fail "help run does not document --dry-run"
expect 0 "" -- help compare
grep -q "^usage: hetbench compare " "$T/out" || fail "help compare printed: $(head -2 "$T/out")"
expect 2 "help: unknown command 'frob'" -- help frob
"$HB" verify >"$T/out" 2>"$T/err"
plain=$?
"$HB" verify --require-device >"$T/out2" 2>"$T/err2"
req=$?
if grep -q "nothing verified" "$T/out"; then
  [[ $plain -eq 0 && $req -eq 1 ]] || fail "no GPU: verify -> $plain (expected 0), --require-device -> $req (expected 1)"
  grep -q -- "--require-device: no GPU backend has a device" "$T/err2" || fail "verify --require-device: $(cat "$T/err2")"
else
  [[ $req -eq $plain ]] || fail "with a GPU, --require-device changed the exit code ($plain -> $req)"
fi
ok

echo "$checks checks, $fails failed"
((fails == 0))
