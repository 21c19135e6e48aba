#!/usr/bin/env bash
# test_collective.sh HETBENCH MPIRUN - the collective workload and hb_comm over MPI, 2 CPU ranks:
#  - every op (all_reduce, all_gather, reduce_scatter, all_to_all, broadcast), in and out of
#    place, f32 and bf16: status ok on both ranks, and each rank's output fingerprint (sum,
#    sum |x|) equal to the sums computed here from the definitions; algbw = size / time and
#    busbw = algbw x nccl-tests' factor; comm bytes per iteration = the op's send bytes;
#  - HETBENCH_FAULT kind=corrupt on one rank: the workload's element check fails that case on
#    both ranks of the group, with the wrong element in the message; the other cases stay ok;
#  - kind=comm_error (a collective that reports an error on one rank): the group fails the
#    case, the file is complete, --resume re-runs the group's pairs and they pass;
#  - bad input exits 2 before anything runs, naming the key.
source "$(dirname "$0")/mpi_preamble.sh" "$@"
FAST=(--min-seconds 0 --min-iters 3 --warmup 1 --no-ceilings --no-progress --power-hz 0 --backend cpu --share-devices
      --idle-seconds 0)
COLL=(--workload collective --collective all_reduce,all_gather,reduce_scatter,all_to_all,broadcast --in-place 0,1
      --dtype f32,bf16 --coll-bytes 96,4096)

checks=$((checks + 1))
if "${MPI[@]}" -np 2 "$HB" run "${COLL[@]}" "${FAST[@]}" --out "$T/c.h5" >"$T/o1" 2>"$T/e1"; then
  checks=$((checks + 1))
  "$PY" - "$T/c.h5" <<'PYEOF' || fail "collective results"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
s = f["summary"][:]
ok = True
def v(r, i): return 1 + (i * 7 + r * 3) % 16   # the workload's inputs (collective.c)
n = 2
factor = {"all_reduce": 2 * (n - 1) / n, "all_gather": (n - 1) / n, "reduce_scatter": (n - 1) / n,
          "all_to_all": (n - 1) / n, "broadcast": 1.0}
seen = set()
for row in s:
    cid, r = int(row["case_id"]), int(row["rank"])
    a = f["cases/%04d" % cid].attrs
    op = a["collective"].decode() if isinstance(a["collective"], bytes) else str(a["collective"])
    dt = a["dtype"].decode() if isinstance(a["dtype"], bytes) else str(a["dtype"])
    size = int(a["coll_bytes"])
    es = 4 if dt == "f32" else 2
    count = size // es
    B = count // n
    if op == "all_reduce": out = [sum(v(q, i) for q in range(n)) for i in range(count)]; send = count
    elif op == "all_gather": out = [v(i // B, i % B) for i in range(B * n)]; send = B
    elif op == "reduce_scatter": out = [sum(v(q, r * B + i) for q in range(n)) for i in range(B)]; send = B * n
    elif op == "all_to_all": out = [v(i // B, r * B + i % B) for i in range(B * n)]; send = B * n
    else: out = [v(0, i) for i in range(count)]; send = count
    fp = f["cases/%04d/rank%d" % (cid, r)].attrs["fingerprint"]
    exp = max(send, len(out)) * es
    if row["status"] != b"ok": print("case", cid, r, row["status"], file=sys.stderr); ok = False; continue
    if fp[0] != sum(out) or fp[1] != sum(abs(x) for x in out):
        print("case", cid, op, dt, "rank", r, "fingerprint", fp[:2], "expected", sum(out), file=sys.stderr); ok = False
    if not (row["rate"] > 0 and abs(row["busbw"] - row["rate"] * factor[op]) <= 1e-9 * row["rate"]):
        print("case", cid, op, "rate", row["rate"], "busbw", row["busbw"], file=sys.stderr); ok = False
    if row["comm_bytes_per_iter"] != send * es or row["group_size"] != 2 or row["group_rank"] != r or row["group_id"] != 0:
        print("case", cid, op, "comm bytes", row["comm_bytes_per_iter"], "expected", send * es,
              row["group_size"], row["group_rank"], row["group_id"], file=sys.stderr); ok = False
    if not (row["latency_p50_s"] > 0 and 0 < row["comm_s_per_iter"]):
        print("case", cid, "latency", row["latency_p50_s"], row["comm_s_per_iter"], file=sys.stderr); ok = False
    seen.add((op, dt, size))
if len(s) != 2 * 40 or len(seen) != 20:
    print("rows", len(s), "distinct", len(seen), file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PYEOF
else
  fail "the run failed: $(head -c 600 "$T/e1")"
fi

# a wrong element on one rank fails the case on both ranks of its group, the others are kept
checks=$((checks + 1))
HETBENCH_FAULT="rank=1,case=1,kind=corrupt" "${MPI[@]}" -np 2 "$HB" run --workload collective \
  --collective all_reduce,all_gather,broadcast --dtype bf16 --coll-bytes 64 "${FAST[@]}" --out "$T/bad.h5" >"$T/o2" 2>"$T/e2"
rc=$?
[[ $rc -eq 1 ]] || fail "corrupt: exit $rc, expected 1: $(head -c 400 "$T/e2")"
checks=$((checks + 1))
"$PY" - "$T/bad.h5" <<'PYEOF' || fail "corrupt: file"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
s = f["summary"][:]
st = {(int(r["case_id"]), int(r["rank"])): r["status"] for r in s}
ok = st == {(0, 0): b"ok", (0, 1): b"ok", (1, 0): b"failed", (1, 1): b"failed", (2, 0): b"ok", (2, 1): b"ok"}
e1 = f["cases/0001/rank1"].attrs["error"]
e0 = f["cases/0001/rank0"].attrs["error"]
e1 = e1.decode() if isinstance(e1, bytes) else e1
e0 = e0.decode() if isinstance(e0, bytes) else e0
if "all_gather check 1 on group rank 1: 1 of 32 elements wrong; element 0" not in e1: ok = False
if "rank 1 of this rank's group" not in e0: ok = False
if not ok: print(st, e0, e1, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF

# an error inside a collective on one rank: the group fails that case together (the other
# rank names it), the run goes on and the file is complete; --resume re-runs the group's case
checks=$((checks + 1))
HETBENCH_FAULT="rank=1,case=1,kind=comm_error" "${MPI[@]}" -np 2 "$HB" run --workload collective \
  --collective all_reduce,all_to_all,broadcast --coll-bytes 256 "${FAST[@]}" --out "$T/ce.h5" >"$T/o3" 2>"$T/e3"
rc=$?
[[ $rc -eq 1 ]] || fail "comm_error: exit $rc, expected 1: $(head -c 400 "$T/e3")"
checks=$((checks + 1))
"$PY" - "$T/ce.h5" <<'PYEOF' || fail "comm_error: file"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
s = f["summary"][:]
st = {(int(r["case_id"]), int(r["rank"])): r["status"] for r in s}
ok = f.attrs["status"] in (b"complete", "complete")
ok = ok and st == {(0, 0): b"ok", (0, 1): b"ok", (1, 0): b"failed", (1, 1): b"failed", (2, 0): b"ok", (2, 1): b"ok"}
e1 = f["cases/0001/rank1"].attrs["error"]
e1 = e1.decode() if isinstance(e1, bytes) else e1
e0 = f["cases/0001/rank0"].attrs["error"]
e0 = e0.decode() if isinstance(e0, bytes) else e0
ok = ok and "mpi all_to_all: injected fault (HETBENCH_FAULT kind=comm_error)" in e1 and "rank 1 of this rank's group" in e0
if not ok: print(f.attrs["status"], st, e0, e1, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
checks=$((checks + 1))
"${MPI[@]}" -np 2 "$HB" run --resume "$T/ce.h5" --backend cpu --share-devices --no-progress --idle-seconds 0 \
  --power-hz 0 --no-ceilings >"$T/o4" 2>"$T/e4" || fail "resume: $(head -c 400 "$T/e4")"
checks=$((checks + 1))
"$PY" - "$T/ce.h5" <<'PYEOF' || fail "comm_error: resumed file"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
s = f["summary"][:]
st = {(int(r["case_id"]), int(r["rank"])): r["status"] for r in s}
ok = len(s) == 6 and all(v == b"ok" for v in st.values())
if not ok: print(st, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF

# bad input: exit 2, one line naming the key, before anything runs
expect2() {
  local np=$1 pat=$2; shift 2
  checks=$((checks + 1))
  "${MPI[@]}" -np "$np" "$HB" run --workload collective "$@" --out "$T/x.h5" "${FAST[@]}" >"$T/out" 2>"$T/err"
  local rc=$?
  [[ $rc -eq 2 ]] || { fail "np $np $* -> exit $rc, expected 2: $(head -c 400 "$T/err")"; return; }
  grep -Eq -- "$pat" "$T/err" || fail "np $np $* -> '$(head -c 400 "$T/err")' does not match '$pat'"
  [[ ! -e $T/x.h5 ]] || fail "np $np $* -> wrote a results file"
}
expect2 2 "coll_ranks 4 does not divide the 2 ranks of the run" --coll-ranks 4
expect2 2 "--coll-ranks: collective: coll_ranks 1 \(accepted: 2 to 16" --coll-ranks 1
expect2 2 "--dtype: collective: dtype fp8 \(accepted: f32, bf16, f16\)" --dtype fp8
expect2 2 "--coll-bytes: collective reduce_scatter: coll_bytes 6 is less than one f32 element per rank of 2" \
  --collective reduce_scatter --coll-bytes 6
expect2 2 "--in-place: collective all_reduce: in_place 2 \(accepted: 0 or 1\)" --in-place 2
expect2 2 "--collective: unknown value 'allreduce' \(accepted: all_reduce, all_gather, reduce_scatter, all_to_all, broadcast\)" \
  --collective allreduce
expect2 2 "coll_ranks 2 with --schedule serial" --schedule serial
echo "test_collective.sh: $checks checks, $fails failed" >&2
[[ $fails -eq 0 ]]
