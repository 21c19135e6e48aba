#!/usr/bin/env bash
# test_nccl_emu.sh HETBENCH MPIRUN EMU_LIB_DIR FAKE_NCCL - tensor parallelism on GPU ranks through
# NCCL, without a GPU: 2 ranks of the emulated CUDA backend (test_gpu_emu's module: the GPU
# kernels executed on the CPU) sharing one synthetic H100 (h100x8-2socket.xml, its first GPU at
# the emulator's bus id), with tests/fake_nccl.c as libnccl.so.2:
#  - prefill and decode of tiny with tp=2 give the CPU tp=1 run's greedy tokens and first-step
#    logits' fingerprints within f32 tolerance; both ranks ok, one group; /devices coll_lib names
#    the fake (NCCL 2.21.5); the fake saw the bootstrap (one unique id, both ranks joining) and
#    the tp all-reduces (N x C f32 in place) and the vocab-parallel head's all-gathers (V/2);
#  - train with dp=2 over NCCL takes the CPU ranks' dp=2 steps (losses within f32 tolerance);
#  - ep=2 (tiny-moe) and serve with tp=2 and Poisson arrivals give the CPU's tokens; the fake saw the
#    serve clock's broadcasts;
#  - no loadable NCCL: exit 2 before anything runs, naming the case, the device and the library.
source "$(dirname "$0")/mpi_preamble.sh" "$1" "$2"
EMU=$3 FAKE=$4
[[ -f $EMU/libhetbench-cuda.so ]] || { echo "SKIP: no emulated CUDA module in $EMU (test_gpu_emu builds it)" >&2; exit 77; }
sed 's|pci_busid="0000:18:00.0"|pci_busid="0000:17:00.0"|' "$(dirname "$0")/topologies/h100x8-2socket.xml" >"$T/emu.xml"
export HETBENCH_TOPOLOGY=$T/emu.xml HETBENCH_BACKEND_PATH=$EMU CUDA_VISIBLE_DEVICES=0
FAST=(--min-seconds 0 --min-iters 2 --warmup 0 --no-ceilings --no-progress --power-hz 0 --share-devices --idle-seconds 0)
TF=(--workload decode,prefill --model tiny --batch 2 --prompt 8 --gen 3)

checks=$((checks + 1))
if "${MPI[@]}" -np 2 -x HETBENCH_NCCL_LIBRARY="$FAKE" -x FAKE_NCCL_LOG="$T/calls" "$HB" run --backend cuda "${TF[@]}" \
     --tp 2 "${FAST[@]}" --out "$T/nccl.h5" >"$T/o1" 2>"$T/e1" &&
   "$HB" run --backend cpu "${TF[@]}" "${FAST[@]}" --out "$T/cpu.h5" >"$T/o2" 2>"$T/e2"; then
  checks=$((checks + 1))
  "$PY" - "$T/nccl.h5" "$T/cpu.h5" <<'PYEOF' || fail "NCCL tp=2 vs CPU tp=1"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
ok = True
d = a["devices"][:]
if list(d["backend"]) != [b"cuda", b"cuda"] or not all(x.startswith(b"NCCL 2.21.5 (") for x in d["coll_lib"]):
    print("devices", d["backend"], d["coll_lib"], file=sys.stderr); ok = False
if not b["devices"][0]["coll_lib"].startswith(b"MPI ("): print("cpu coll_lib", b["devices"][0]["coll_lib"], file=sys.stderr); ok = False
s = a["summary"][:]
for cid in (0, 1):
    for r in (0, 1):
        row = s[(s["case_id"] == cid) & (s["rank"] == r)][0]
        if (row["status"], row["group_size"], row["tp"]) != (b"ok", 2, 2):
            print("case", cid, "rank", r, row["status"], row["group_size"], row["tp"], file=sys.stderr); ok = False
    f2 = a["cases/%04d/rank0" % cid].attrs["fingerprint"]
    f1 = b["cases/%04d/rank0" % cid].attrs["fingerprint"]
    if not np.allclose(f2[:3], f1[:3], rtol=1e-4, atol=1e-3) or f2[3] != f1[3]:
        print("case", cid, "fingerprint NCCL tp=2", f2, "CPU tp=1", f1, file=sys.stderr); ok = False
    g2 = [a["cases/%04d/rank%d/generated" % (cid, r)][()] for r in (0, 1)]
    g1 = b["cases/%04d/rank0/generated" % cid][()]
    if not all(np.array_equal(g, g1) for g in g2):
        print("case", cid, "generated", [g.tolist() for g in g2], g1.tolist(), file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PYEOF
  for r in 0 1; do
    checks=$((checks + 1))
    L=$T/calls.$r
    grep -q "^ncclCommInitRank nranks=2 rank=$r$" "$L" || fail "rank $r did not join: $(head -3 "$L")"
    [[ $(grep -c "^ncclGetUniqueId$" "$L") -eq $((1 - r)) ]] || fail "rank $r: unique ids $(grep -c ncclGetUniqueId "$L")"
    # decode: N = B = 2 rows, prefill: N = B x P = 16; C = 64 (2 all-reduces per layer); V/2 = 128
    grep -q "^ncclAllReduce count=128 dt=7 op=0 inplace=1 " "$L" || fail "rank $r: no decode all-reduce of 2 x 64 f32"
    grep -q "^ncclAllReduce count=1024 dt=7 op=0 inplace=1 " "$L" || fail "rank $r: no prefill all-reduce of 16 x 64 f32"
    grep -q "^ncclAllGather sendcount=128 dt=7 inplace=0 " "$L" || fail "rank $r: no vocab-parallel all-gather"
    grep -q "^ncclCommDestroy$" "$L" || fail "rank $r: the communicator was not destroyed"
  done
else
  fail "the runs failed: $(cat "$T/e1" "$T/e2" | head -c 800)"
fi

# data-parallel training over NCCL: dp=2 on the 2 emulated CUDA ranks takes the CPU ranks' dp=2
# steps (the same token slices, gradients and loss summed over the group): the same losses
# within f32 tolerance, both ranks of the group the same; the fake saw the gradient all-reduce
# (every parameter, f32, in place) and the loss's (one f64)
TR=(--workload train --model tiny --batch 2 --seq 16 --dp 2 --data repeat)
checks=$((checks + 1))
if "${MPI[@]}" -np 2 -x HETBENCH_NCCL_LIBRARY="$FAKE" -x FAKE_NCCL_LOG="$T/tcalls" "$HB" run --backend cuda "${TR[@]}" \
     "${FAST[@]}" --out "$T/tdp.h5" >"$T/o4" 2>"$T/e4" &&
   "${MPI[@]}" -np 2 "$HB" run --backend cpu "${TR[@]}" "${FAST[@]}" --out "$T/tcpu.h5" >"$T/o5" 2>"$T/e5"; then
  checks=$((checks + 1))
  "$PY" - "$T/tdp.h5" "$T/tcpu.h5" <<'PYEOF' || fail "NCCL dp=2 vs CPU dp=2 training"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
ok = True
s = a["summary"][:]
for r in (0, 1):
    row = s[s["rank"] == r][0]
    if (row["status"], row["group_size"]) != (b"ok", 2): print("rank", r, row["status"], row["group_size"], file=sys.stderr); ok = False
la = [a["cases/0000/rank%d/loss" % r][()] for r in (0, 1)]
lb = b["cases/0000/rank0/loss"][()]
if not np.array_equal(la[0], la[1]): print("the group's ranks disagree", la, file=sys.stderr); ok = False
if len(la[0]) < 2 or not np.allclose(la[0], lb, rtol=1e-4, atol=0): print("losses NCCL", la[0], "CPU", lb, file=sys.stderr); ok = False
if not la[0][-1] < la[0][0]: print("data: repeat, the loss did not fall", la[0], file=sys.stderr); ok = False
print("dp=2 losses: NCCL %s, CPU %s" % (la[0], lb))
sys.exit(0 if ok else 1)
PYEOF
  for r in 0 1; do
    checks=$((checks + 1))
    L=$T/tcalls.$r
    grep -qE "^ncclAllReduce count=[0-9]{5,} dt=7 op=0 inplace=1 " "$L" || fail "rank $r: no gradient all-reduce: $(grep AllReduce "$L" | head -3)"
    grep -q "^ncclAllReduce count=1 dt=8 op=0 inplace=1 " "$L" || fail "rank $r: no f64 loss all-reduce"
  done
else
  fail "the dp runs failed: $(cat "$T/e4" "$T/e5" | head -c 800)"
fi

# expert parallelism over NCCL: tiny-moe with ep=2 on the 2 emulated CUDA ranks (batch 2 each)
# gives the CPU's ep=1 tokens at batch 4 (the group's prompts); and serve with tp=2 and Poisson
# arrivals (rank 0's clock broadcast before each iteration, the KV capacity agreed by a max of
# negated counts) gives the CPU's tp=1 tokens for every request
FAST1=(--min-seconds 0 --min-iters 1 --warmup 0 --no-ceilings --no-progress --power-hz 0 --share-devices --idle-seconds 0)
SV=(--workload serve --model tiny --isl 16 --osl 6 --arrival poisson:100 --requests 6 --max-seqs 3)
checks=$((checks + 1))
if "${MPI[@]}" -np 2 -x HETBENCH_NCCL_LIBRARY="$FAKE" "$HB" run --backend cuda --workload decode,prefill --model tiny-moe \
     --batch 2 --prompt 8 --gen 3 --ep 2 "${FAST1[@]}" --out "$T/ep2.h5" >"$T/o6" 2>"$T/e6" &&
   "$HB" run --backend cpu --workload decode,prefill --model tiny-moe --batch 4 --prompt 8 --gen 3 "${FAST1[@]}" \
     --out "$T/ep1.h5" >"$T/o7" 2>"$T/e7" &&
   "${MPI[@]}" -np 2 -x HETBENCH_NCCL_LIBRARY="$FAKE" -x FAKE_NCCL_LOG="$T/scalls" "$HB" run --backend cuda "${SV[@]}" --tp 2 \
     "${FAST1[@]}" --out "$T/sv2.h5" >"$T/o8" 2>"$T/e8" &&
   "$HB" run --backend cpu "${SV[@]}" "${FAST1[@]}" --out "$T/sv1.h5" >"$T/o9" 2>"$T/e9"; then
  checks=$((checks + 1))
  "$PY" - "$T" <<'PYEOF' || fail "NCCL ep=2 / serve tp=2 vs the CPU"
import sys, h5py, numpy as np
t = sys.argv[1]
ok = True
a, b = h5py.File(t + "/ep2.h5", "r"), h5py.File(t + "/ep1.h5", "r")
for cid in (0, 1):
    g = np.vstack([a["cases/%04d/rank%d/generated" % (cid, r)][()] for r in (0, 1)])
    if not np.array_equal(g, b["cases/%04d/rank0/generated" % cid][()]) or not all(a["summary"]["status"] == b"ok"):
        print("ep case", cid, g.tolist(), b["cases/%04d/rank0/generated" % cid][()].tolist(), file=sys.stderr); ok = False
a, b = h5py.File(t + "/sv2.h5", "r"), h5py.File(t + "/sv1.h5", "r")
for r in (0, 1):
    if not np.array_equal(a["cases/0000/rank%d/generated" % r][()], b["cases/0000/rank0/generated"][()]):
        print("serve rank", r, a["cases/0000/rank%d/generated" % r][()].tolist(), b["cases/0000/rank0/generated"][()].tolist(),
              file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PYEOF
  checks=$((checks + 1))
  grep -q "^ncclBroadcast count=1 dt=8 " "$T/scalls.1" || fail "serve tp=2: no clock broadcast: $(grep -c . "$T/scalls.1") calls"
else
  fail "the ep / serve runs failed: $(cat "$T/e6" "$T/e7" "$T/e8" "$T/e9" | head -c 800)"
fi

checks=$((checks + 1))
"${MPI[@]}" -np 2 -x HETBENCH_NCCL_LIBRARY=/nonexistent/libnccl.so.2 "$HB" run --backend cuda --workload prefill --model tiny \
  --tp 2 "${FAST[@]}" --out "$T/x.h5" >"$T/o3" 2>"$T/e3"
rc=$?
[[ $rc -eq 2 ]] || fail "no NCCL: exit $rc, expected 2: $(head -c 400 "$T/e3")"
grep -q "case 0 (prefill tiny f32 tp=2 B=1 P=128): tp 2 on cuda device 0000:17:00.0 (.*) needs its collective library: cannot load NCCL /nonexistent/libnccl.so.2" "$T/e3" ||
  fail "no NCCL: $(head -c 400 "$T/e3")"
[[ ! -e $T/x.h5 ]] || fail "no NCCL: a results file was written"
echo "test_nccl_emu.sh: $checks checks, $fails failed" >&2
[[ $fails -eq 0 ]]
