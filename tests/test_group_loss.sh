#!/usr/bin/env bash
# test_group_loss.sh HETBENCH MPIRUN - a rank lost inside a collective, 4 CPU ranks in 2 groups of
# tp=2 (ranks 0-1: group 0, with the coordinator; ranks 2-3: group 1):
#  - kind=comm_abort on rank 3 in case 0: rank 3 dies inside its first collective; rank 2 fails
#    its collective at the deadline; both rows of group 1 are `lost` for case 0 and for the
#    group's later case; group 0's rows and the group-less gemm case of ranks 0-2 are `ok`; the
#    file is `complete` and --resume re-runs exactly the lost pairs (all `ok` after it);
#  - kind=comm_hang on rank 1 in case 1: rank 1 blocks inside its first collective; rank 0 (the
#    coordinator, its group peer) fails its collective at the deadline instead of hanging, keeps
#    coordinating and writes the file: group 0 `lost` in case 1, rank 1 `lost` afterwards,
#    group 1 `ok` throughout; --resume completes it.
# Open MPI's --enable-recovery keeps the job alive when a rank dies (its exit code is 0 then:
# the file is what is checked, as in test_mpi.sh).
source "$(dirname "$0")/mpi_preamble.sh" "$@"
MPI_FT=("$MPIRUN" --oversubscribe --bind-to none --enable-recovery)
FAST=(--min-seconds 0 --min-iters 3 --warmup 1 --no-ceilings --no-progress --power-hz 0 --backend cpu --share-devices
      --idle-seconds 0)
CASES=(--workload decode,prefill,gemm --model tiny --batch 2 --prompt 8 --gen 4 --m 32 --n 32 --k 32 --tp 2)

# check FILE EXPECTED: EXPECTED maps (case, rank) to a status; every other pair must be ok
check() {
  checks=$((checks + 1))
  "$PY" - "$@" <<'PYEOF' || fail "check $1 ($2)"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
want = eval(sys.argv[2])
msgs = eval(sys.argv[3]) if len(sys.argv) > 3 else {}
s = f["summary"][:]
st = f.attrs["status"]; st = st.decode() if isinstance(st, bytes) else st
got = {(int(r["case_id"]), int(r["rank"])): r["status"].decode() for r in s}
exp = {(c, r): want.get((c, r), "ok") for c in range(3) for r in range(4)}
ok = st == "complete" and got == exp
for (c, r), m in msgs.items():
    e = f["cases/%04d/rank%d" % (c, r)].attrs["error"]
    e = e.decode() if isinstance(e, bytes) else e
    if m not in e: print("case", c, "rank", r, "error", repr(e), "lacks", repr(m), file=sys.stderr); ok = False
if not ok: print(st, {k: v for k, v in got.items() if v != "ok"}, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
}

resume() {
  checks=$((checks + 1))
  timeout 200 "${MPI[@]}" -np 4 "$HB" run --resume "$1" --backend cpu --share-devices --no-progress --idle-seconds 0 \
    --power-hz 0 --no-ceilings >"$T/ro" 2>"$T/re" || fail "resume $1: $(tail -c 400 "$T/re")"
  check "$1" "{}"
}

DEADLINE="not complete at the case deadline (--case-timeout): a rank of the group died or hangs inside it"
checks=$((checks + 1))
HETBENCH_FAULT="rank=3,case=0,kind=comm_abort" timeout 200 "${MPI_FT[@]}" -np 4 "$HB" run "${CASES[@]}" "${FAST[@]}" \
  --case-timeout 8 --out "$T/abort.h5" >"$T/o1" 2>"$T/e1"
grep -q "1 rank lost" "$T/e1" || fail "abort: no lost-rank message: $(tail -c 400 "$T/e1")"
check "$T/abort.h5" "{(0, 2): 'lost', (0, 3): 'lost', (1, 2): 'lost', (1, 3): 'lost', (2, 3): 'lost'}" \
  "{(0, 2): '$DEADLINE', (0, 3): 'rank 3 sent no record', (1, 2): 'communicator was lost earlier'}"
resume "$T/abort.h5"

checks=$((checks + 1))
HETBENCH_FAULT="rank=1,case=1,kind=comm_hang" timeout 200 "${MPI_FT[@]}" -np 4 "$HB" run "${CASES[@]}" "${FAST[@]}" \
  --case-timeout 8 --out "$T/hang.h5" >"$T/o2" 2>"$T/e2"
grep -q "1 rank lost" "$T/e2" || fail "hang: no lost-rank message: $(tail -c 400 "$T/e2")"
check "$T/hang.h5" "{(1, 0): 'lost', (1, 1): 'lost', (2, 1): 'lost'}" "{(1, 0): '$DEADLINE', (1, 1): 'rank 1 sent no record'}"
resume "$T/hang.h5"

# the new kinds are parsed; a typo is refused with the accepted list
checks=$((checks + 1))
HETBENCH_FAULT="rank=1,kind=comm_crash" "$HB" run --workload gemm --m 8 --n 8 --k 8 "${FAST[@]}" --out "$T/x.h5" \
  >"$T/o3" 2>"$T/e3"
rc=$?
[[ $rc -eq 2 ]] && grep -q "comm_abort, comm_hang" "$T/e3" || fail "kind=comm_crash: exit $rc: $(head -c 300 "$T/e3")"
echo "test_group_loss.sh: $checks checks, $fails failed" >&2
[[ $fails -eq 0 ]]
