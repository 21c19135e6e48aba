#!/usr/bin/env bash
# test_verify_cli.sh HETBENCH - `hetbench verify` without a GPU (label unit): the CPU against
# itself runs every case and matches exactly; the table has its header; usage errors exit 2;
# with no GPU backend available (this machine) it says so and exits 0.
set -uo pipefail
hb=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$hb" verify --backend cpu) || fail "verify --backend cpu exited $?"
grep -q '^# op ' <<<"$out" || fail "no '#'-headed table"
grep -qE '^  matmul +bf16 ' <<<"$out" || fail "no matmul bf16 row"
grep -qE '^  attention +f32 ' <<<"$out" || fail "no attention row"
grep -qE '^  model prefill +f32 .* ok$' <<<"$out" || fail "no tiny-model row"
grep -qE '^# cpu:0: [0-9]+ passed, 0 failed' <<<"$out" || fail "summary: $(tail -1 <<<"$out")"
if grep -qE ' FAIL' <<<"$out"; then fail "a FAIL row: $(grep ' FAIL' <<<"$out")"; fi

out=$("$hb" verify --backend cpu --dtype bf16) || fail "verify --dtype bf16 exited $?"
grep -qE '^  matmul +f32 ' <<<"$out" && fail "--dtype bf16 ran f32 matmul rows"

"$hb" verify --bogus >/dev/null 2>&1; [[ $? == 2 ]] || fail "unknown option: exit != 2"
"$hb" verify --backend opencl >/dev/null 2>&1; [[ $? == 2 ]] || fail "unknown backend: exit != 2"
"$hb" verify --dtype f64 >/dev/null 2>&1; [[ $? == 2 ]] || fail "unknown dtype: exit != 2"
"$hb" verify --help | grep -q "usage: hetbench verify" || fail "no --help"

# every GPU backend unavailable here: nothing verified, exit 0 (skip if this machine has a GPU)
out=$("$hb" verify 2>&1); rc=$?
if grep -q "nothing verified" <<<"$out"; then
  [[ $rc == 0 ]] || fail "nothing verified but exit $rc"
  grep -qE '^# (cuda|hip): unavailable: ' <<<"$out" || fail "no reasons listed: $out"
fi
echo "test_verify_cli: ok"
