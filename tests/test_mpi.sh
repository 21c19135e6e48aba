#!/usr/bin/env bash
# test_mpi.sh HETBENCH MPIRUN - the distributed contract on the CPU backend:
#  - mpirun -np 4 writes one file with 4 ranks per case;
#  - an injected error fails that (case, rank) only; an aborted or hung rank is `lost` and
#    every other result is still written;
#  - SIGTERM mid-run leaves a valid `incomplete` file; --resume completes it; --resume with a
#    different plan is refused.
source "$(dirname "$0")/mpi_preamble.sh" "$@"

# Plain mpirun propagates exit codes but takes the whole job down when a rank dies;
# --enable-recovery keeps the other ranks alive but always exits 0 (Open MPI 4.1): the
# dead/hung-rank cases use it and check the file and the message instead (README "Clusters").
MPI_FT=("$MPIRUN" --oversubscribe --bind-to none --enable-recovery)
FAST=(--min-seconds 0 --min-iters 3 --warmup 0 --no-ceilings --no-progress --backend cpu --share-devices)
CASES=(--workload gemm,decode --model tiny --m 32 --n 32 --k 32 --prompt 8 --gen 4 --batch 1,2)

# check FILE PYTHON-ASSERTIONS: run assertions with f = h5py.File, s = summary, st = status
check() {
  checks=$((checks + 1))
  "$PY" - "$1" "$2" <<'PY' || fail "h5 check on $1: $2"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
s = f["summary"][:]
st = f.attrs["status"]; st = st.decode() if isinstance(st, bytes) else st
def status(case, rank):
    return [r["status"].decode() for r in s if r["case_id"] == case and r["rank"] == rank]
exec(sys.argv[2])
PY
}

run() { # run EXPECTED_RC OUT -- args
  local want=$1 out=$2; shift 3
  checks=$((checks + 1))
  timeout 300 "$@" >"$T/$out.out" 2>"$T/$out.err"
  local rc=$?
  [[ $want == any || $rc -eq $want ]] || fail "$out: exit $rc, expected $want: $(tail -5 "$T/$out.err")"
}

# ---- 4 ranks, one file ----
run 0 four -- "${MPI[@]}" -np 4 "$HB" run "${CASES[@]}" "${FAST[@]}" --out "$T/four.h5"
check "$T/four.h5" '
assert st == "complete", st
assert f.attrs["mpi_size"] == 4
assert len(f["devices"]) == 4 and sorted(f["devices"]["rank"]) == [0, 1, 2, 3]
assert len(s) == 4 * 3, len(s)
for c in range(3):
    assert sorted(r["rank"] for r in s if r["case_id"] == c) == [0, 1, 2, 3]
    assert all(status(c, r) == ["ok"] for r in range(4))
    assert len(f["cases/%04d" % c].keys()) == 4
# identical workloads: every rank computed the same function
fp = [f["cases/0001/rank%d" % r].attrs["fingerprint"] for r in range(4)]
assert all((x == fp[0]).all() for x in fp), fp
'

# ---- an injected error: that (case, rank) fails, the rest runs; exit 1 ----
HETBENCH_FAULT="rank=2,case=1,kind=error" run 1 err -- "${MPI[@]}" -np 4 "$HB" run "${CASES[@]}" "${FAST[@]}" --out "$T/err.h5"
check "$T/err.h5" '
assert st == "complete", st
assert status(1, 2) == ["failed"], status(1, 2)
assert all(status(c, r) == ["ok"] for c in range(3) for r in range(4) if (c, r) != (1, 2))
e = f["cases/0001/rank2"].attrs["error"]; e = e.decode() if isinstance(e, bytes) else e
assert "injected" in e, e
'

# ---- an aborted rank: lost from that case on, everything else written ----
HETBENCH_FAULT="rank=3,case=1,kind=abort" run any abort -- "${MPI_FT[@]}" -np 4 "$HB" run "${CASES[@]}" "${FAST[@]}" --case-timeout 20 --out "$T/abort.h5"
check "$T/abort.h5" '
assert st == "complete", st
assert status(0, 3) == ["ok"]
assert status(1, 3) == ["lost"] and status(2, 3) == ["lost"], (status(1, 3), status(2, 3))
assert all(status(c, r) == ["ok"] for c in range(3) for r in range(3))
'

# ---- a hung rank: lost after the deadline ----
HETBENCH_FAULT="rank=1,case=0,kind=hang" run any hang -- "${MPI_FT[@]}" -np 3 "$HB" run "${CASES[@]}" "${FAST[@]}" --case-timeout 4 --out "$T/hang.h5"
check "$T/hang.h5" '
assert [status(c, 1) for c in range(3)] == [["lost"]] * 3
assert all(status(c, r) == ["ok"] for c in range(3) for r in (0, 2))
e = f["cases/0000/rank1"].attrs["error"]; e = e.decode() if isinstance(e, bytes) else e
assert "deadline" in e, e
'
grep -q "1 rank lost" "$T/abort.err" || fail "no lost-rank message: $(cat "$T/abort.err")"
grep -q "1 rank lost" "$T/hang.err" || fail "no 'lost' message on stderr: $(cat "$T/hang.err")"

# ---- serial schedule: same file shape ----
run 0 serial -- "${MPI[@]}" -np 2 "$HB" run "${CASES[@]}" "${FAST[@]}" --schedule serial --out "$T/serial.h5"
check "$T/serial.h5" 'assert len(s) == 6 and all(x == b"ok" for x in s["status"])'

# ---- a signal mid-run: valid incomplete file; --resume finishes it ----
SLOW=(--workload gemm --m 128 --n 128 --k 128,96,64,48,32,24 --min-seconds 1 --min-iters 3 --warmup 0
      --no-ceilings --no-progress --backend cpu --share-devices --idle-seconds 0)
"${MPI[@]}" -np 2 "$HB" run "${SLOW[@]}" --out "$T/sig.h5" >"$T/sig.out" 2>"$T/sig.err" &
pid=$!
sleep 3.5
kill -USR1 "$pid"   # mpirun forwards SIGUSR1 to the ranks (as srun --signal does)
wait "$pid"
rc=$?
checks=$((checks + 1))
[[ $rc -ne 0 ]] || fail "an interrupted run exited 0"
grep -q "stopped by a signal" "$T/sig.err" || fail "no 'stopped by a signal' message: $(cat "$T/sig.err")"
check "$T/sig.h5" '
assert st == "incomplete", st
done = sorted(set(int(c) for c in s["case_id"]))
assert 1 <= len(done) < 6, done
assert all(x == b"ok" for x in s["status"])
'
HETBENCH_FAULT="rank=1,case=5,kind=error" run 1 resume1 -- "${MPI[@]}" -np 2 "$HB" run --resume "$T/sig.h5" --backend cpu --share-devices --no-progress --idle-seconds 0
check "$T/sig.h5" '
assert st == "complete", st
assert len(s) == 12, len(s)
assert status(5, 1) == ["failed"]
assert all(status(c, r) == ["ok"] for c in range(6) for r in range(2) if (c, r) != (5, 1))
assert b"--resume" in f.attrs["resumed"].encode() if isinstance(f.attrs["resumed"], str) else f.attrs["resumed"]
'
# the failed pair only runs again
run 0 resume2 -- "${MPI[@]}" -np 2 "$HB" run --resume "$T/sig.h5" --backend cpu --share-devices --no-progress --idle-seconds 0
check "$T/sig.h5" 'assert len(s) == 12 and all(x == b"ok" for x in s["status"]), s["status"]'
[[ $(grep -c " ok$" "$T/resume2.out") -eq 1 ]] || fail "resume ran more than the failed pair: $(cat "$T/resume2.out")"
# a different plan, or different devices (rank count), is refused and the file is untouched
cp "$T/sig.h5" "$T/sig-before.h5"
run 2 resume3 -- "${MPI[@]}" -np 2 "$HB" run --resume "$T/sig.h5" --backend cpu --share-devices --min-seconds 2
grep -q "plan differs" "$T/resume3.err" || fail "no 'plan differs' message: $(cat "$T/resume3.err")"
run 2 resume4 -- "${MPI[@]}" -np 3 "$HB" run --resume "$T/sig.h5" --backend cpu --share-devices --idle-seconds 0
grep -q "has 2 ranks, this job has 3" "$T/resume4.err" || fail "no device-set message: $(cat "$T/resume4.err")"
cmp -s "$T/sig.h5" "$T/sig-before.h5" || fail "a refused --resume modified the file"

# ---- info: every rank's placement on a synthetic 8x H100 node ----
checks=$((checks + 1))
HETBENCH_TOPOLOGY="$(dirname "$0")/topologies/h100x8-2socket.xml" "${MPI[@]}" -np 4 "$HB" info --json >"$T/info.json" 2>"$T/info.err" \
  || fail "info under mpirun: $(cat "$T/info.err")"
"$PY" - "$T/info.json" <<'PY' || fail "info --json ranks: $(cat "$T/info.json")"
import json, sys
d = json.load(open(sys.argv[1]))
r = d["ranks"]
assert [x["rank"] for x in r] == [0, 1, 2, 3]
assert [x["pci_bus_id"] for x in r] == ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0"], r
assert all(x["backend"] == "cuda" and x["numa_node"] == 0 for x in r)
assert len(set(x["cpuset"] for x in r)) == 4
PY

# ---- kill -9 at random moments: the file opens with h5dump and holds whole cases ----
# trivial cases, so most kills land inside the writer
KS=$(printf '8%.0s,' $(seq 1 3000)); KS=${KS%,}
for i in 1 2 3 4 5 6 7 8; do
  rm -f "$T/k.h5"
  if (( i % 2 )); then # rank 0 (a singleton)
    "$HB" run --workload gemm --m 8 --n 8 --k "$KS" --min-iters 1 --min-seconds 0 --warmup 0 --no-ceilings \
      --no-progress --idle-seconds 0 --power-hz 0 --json --out "$T/k.h5" >/dev/null 2>&1 &
    pid=$!
    sleep "1.$((RANDOM % 9))"
    kill -9 "$pid"
  else # a worker rank of a 3-rank job: the job goes down with it, the file stays whole
    "${MPI[@]}" -np 3 "$HB" run --workload gemm --m 8 --n 8 --k "$KS" --min-iters 1 --min-seconds 0 --warmup 0 \
      --no-ceilings --no-progress --idle-seconds 0 --power-hz 0 --share-devices --json --out "$T/k.h5" >/dev/null 2>&1 &
    pid=$!
    sleep "2.$((RANDOM % 9))"
    w=$(pgrep -f -- "--out $T/k.h5" | while read -r p; do [[ $(ps -o comm= -p "$p") == hetbench ]] && echo "$p"; done | tail -1)
    [[ -n $w ]] && kill -9 "$w"
  fi
  wait "$pid" 2>/dev/null
  [[ -f $T/k.h5 ]] || continue
  checks=$((checks + 1))
  h5dump -H "$T/k.h5" >/dev/null 2>&1 || fail "kill -9 trial $i: h5dump cannot open the file"
  check "$T/k.h5" '
n = len(f["cases"].keys())
assert n * f.attrs["mpi_size"] == len(s) and n >= 1, (n, len(s))
assert all(x == b"ok" for x in s["status"])
'
done

echo "test_mpi.sh: $checks checks, $fails failed" >&2
[[ $fails -eq 0 ]]
