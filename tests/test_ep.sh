#!/usr/bin/env bash
# test_ep.sh HETBENCH MPIRUN - expert parallelism through the CLI, 2 CPU ranks (one group of ep=2):
#  - decode and prefill of tiny-moe (GQA) and tiny-mla (MLA, sigmoid grouped routing) with ep=2 and
#    batch 2 per rank against ep=1 with batch 4 (the group's batch: rank r holds prompts 2r, 2r+1):
#    the generated tokens of the two ranks stacked are ep=1's exactly, the fingerprints of the
#    first step's logits add up to ep=1's (sum, sum |x|, L2 norm within f32 tolerance; rank 0's
#    first-row argmax equal), the expert_tokens of the two ranks add up to ep=1's exactly;
#  - memory: each rank holds half the routed experts (mem_bytes below ep=1's at the same batch 2
#    by at least half the bytes of the experts it no longer holds);
#  - communication counted: per MoE layer and step each rank sends E int32 counts, its N k rows
#    and the rows it computed back, so the group's bytes are n_moe x ep x (4 E + 2 N k C 4);
#  - /summary: group_rate = 2 x the slower rank's rate (each rank its own batch);
#  - tensor parallelism of a MoE model: tiny-moe with tp=2 (each expert's gate/up rows and down
#    columns split, the shared experts and dense layer as a dense model's, one all-reduce after
#    shared + routed experts) equals tp=1 on the same batch: tokens, fingerprints, expert_tokens;
#  - ep=2 and tp=2 with the weights of a Mixtral-shaped checkpoint: ep=1's and tp=1's tokens;
#  - bad input exits 2 before anything runs, naming the key.
source "$(dirname "$0")/mpi_preamble.sh" "$@"
FAST=(--min-seconds 0 --min-iters 3 --warmup 1 --no-ceilings --no-progress --power-hz 0 --backend cpu --share-devices
      --idle-seconds 0)
TF=(--workload decode,prefill --prompt 8 --gen 4)

for model in tiny-moe tiny-mla; do
  rm -f "$T"/ep*.h5
  checks=$((checks + 1))
  if "${MPI[@]}" -np 2 "$HB" run "${TF[@]}" --model $model --batch 2 --ep 2 "${FAST[@]}" --out "$T/ep2.h5" >"$T/o1" 2>"$T/e1" &&
     "$HB" run "${TF[@]}" --model $model --batch 4 "${FAST[@]}" --out "$T/ep1.h5" >"$T/o2" 2>"$T/e2" &&
     "$HB" run "${TF[@]}" --model $model --batch 2 "${FAST[@]}" --out "$T/ep1b2.h5" >"$T/o3" 2>"$T/e3"; then
    checks=$((checks + 1))
    "$PY" - "$T/ep2.h5" "$T/ep1.h5" "$T/ep1b2.h5" $model <<'PYEOF' || fail "$model ep=2 vs ep=1"
import sys, h5py, numpy as np
a, b, b2 = (h5py.File(f, "r") for f in sys.argv[1:4])
model = sys.argv[4]
ok = True
def bad(*m):
    global ok
    print(model, *m, file=sys.stderr); ok = False
sa, sb2 = a["summary"][:], b2["summary"][:]
C, E, K, n_moe = 64, 8, 2, 2   # tiny-moe and tiny-mla: dim 64, 8 experts, top 2, layers 1..2 MoE
for cid in (0, 1):
    g = "cases/%04d" % cid
    f2 = [a[g + "/rank%d" % r].attrs["fingerprint"] for r in (0, 1)]
    f1 = b[g + "/rank0"].attrs["fingerprint"]
    if f2[0][0] == f2[1][0]: bad("case", cid, "both ranks computed the same logits (their batches should differ)")
    s2 = (f2[0][0] + f2[1][0], f2[0][1] + f2[1][1], np.hypot(f2[0][2], f2[1][2]))
    if not np.allclose(s2, f1[:3], rtol=1e-5, atol=1e-4) or f2[0][3] != f1[3]:
        bad("case", cid, "fingerprints ep=2", f2, "ep=1", f1)
    gen2 = np.vstack([a[g + "/rank%d/generated" % r][()] for r in (0, 1)])
    gen1 = b[g + "/rank0/generated"][()]
    if gen1.shape != ((4, 4) if cid == 0 else (4, 1)) or not np.array_equal(gen2, gen1):
        bad("case", cid, "generated ep=2", gen2.tolist(), "ep=1", gen1.tolist())
    et2 = sum(a[g + "/rank%d/expert_tokens" % r][()].astype(np.int64) for r in (0, 1))
    et1 = b[g + "/rank0/expert_tokens"][()]
    if et1.shape != (n_moe, E) or not np.array_equal(et2, et1):
        bad("case", cid, "expert_tokens ep=2 summed", et2.tolist(), "ep=1", et1.tolist())
    rows = sa[sa["case_id"] == cid]
    one = sb2[sb2["case_id"] == cid][0]
    N = 2 if cid == 0 else 16  # rows of a forward per rank: decode B, prefill B x P
    want = n_moe * 2 * (4 * E + 2 * N * K * C * 4)
    if rows["comm_bytes_per_iter"].sum() != want: bad("case", cid, "comm bytes", rows["comm_bytes_per_iter"], "want sum", want)
    # half of the routed experts' bytes (f32; up 2 Fe x C, down C x Fe, Fe = 32) per MoE layer
    half = n_moe * (E // 2) * (2 * 32 * C + C * 32) * 4
    for r in (0, 1):
        row = rows[rows["rank"] == r][0]
        if (row["status"], row["group_size"], row["group_rank"], row["ep"], row["tp"]) != (b"ok", 2, r, 2, 1):
            bad("case", cid, "rank", r, row["status"], row["group_size"], row["group_rank"], row["ep"], row["tp"])
        if not (0 < row["comm_frac"] < 1): bad("case", cid, "comm_frac", row["comm_frac"])
        if not one["mem_bytes"] - row["mem_bytes"] >= half // 2:
            bad("case", cid, "mem_bytes ep=2", row["mem_bytes"], "ep=1", one["mem_bytes"], "half the experts", half)
        if row["group_rate"] != 2 * min(rows["rate"]) or row["group_rate_per_device"] != min(rows["rate"]):
            bad("case", cid, "group rate", row["group_rate"], row["group_rate_per_device"], rows["rate"])
    if a[g].attrs["ep"] != 2: bad("case", cid, "attr ep", a[g].attrs["ep"])
sys.exit(0 if ok else 1)
PYEOF
  else
    fail "$model: the runs failed: $(cat "$T/e1" "$T/e2" "$T/e3" | head -c 600)"
  fi
done

# tp=2 of a MoE model against tp=1 on the same batch
checks=$((checks + 1))
if "${MPI[@]}" -np 2 "$HB" run "${TF[@]}" --model tiny-moe --batch 2 --tp 2 "${FAST[@]}" --out "$T/tp2.h5" >"$T/o1" 2>"$T/e1" &&
   "$HB" run "${TF[@]}" --model tiny-moe --batch 2 "${FAST[@]}" --out "$T/tp1.h5" >"$T/o2" 2>"$T/e2"; then
  checks=$((checks + 1))
  "$PY" - "$T/tp2.h5" "$T/tp1.h5" <<'PYEOF' || fail "tiny-moe tp=2 vs tp=1"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
ok = True
s = a["summary"][:]
for cid in (0, 1):
    g = "cases/%04d" % cid
    f1 = b[g + "/rank0"].attrs["fingerprint"]
    for r in (0, 1):
        f2 = a[g + "/rank%d" % r].attrs["fingerprint"]
        if not np.allclose(f2[:3], f1[:3], rtol=1e-5) or f2[3] != f1[3]: print(cid, r, "fingerprint", f2, f1, file=sys.stderr); ok = False
        if not np.array_equal(a[g + "/rank%d/generated" % r][()], b[g + "/rank0/generated"][()]): print(cid, r, "generated", file=sys.stderr); ok = False
        if not np.array_equal(a[g + "/rank%d/expert_tokens" % r][()], b[g + "/rank0/expert_tokens"][()]): print(cid, r, "expert_tokens", file=sys.stderr); ok = False
        row = s[(s["case_id"] == cid) & (s["rank"] == r)][0]
        one = b["summary"][:][b["summary"][:]["case_id"] == cid][0]
        if (row["status"], row["tp"], row["group_size"]) != (b"ok", 2, 2) or not row["mem_bytes"] < one["mem_bytes"]:
            print(cid, r, row["status"], row["tp"], row["group_size"], row["mem_bytes"], one["mem_bytes"], file=sys.stderr); ok = False
        # decode N = 2, prefill N = 16 rows; C = 64: the dense layer's 2 all-reduces, a MoE layer's 2
        # (attention; shared + routed experts), 3 layers; the vocab-parallel head's B all-gathers of V/2
        N = 2 if cid == 0 else 16
        if row["comm_bytes_per_iter"] != 3 * 2 * N * 64 * 4 + 2 * 128 * 4: print(cid, r, "comm", row["comm_bytes_per_iter"], file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PYEOF
else
  fail "tiny-moe tp=2 failed: $(cat "$T/e1" "$T/e2" | head -c 600)"
fi

# a prompt file holds the group's ep x batch prompts; rank r takes prompts r B ..
checks=$((checks + 1))
"$PY" -c "
import struct
ids = [(7 * i + 3) % 256 for i in range(4 * 8)]
open('$T/p.bin', 'wb').write(struct.pack('<%di' % len(ids), *ids))"
if "${MPI[@]}" -np 2 "$HB" run --workload prefill --model tiny-moe --batch 2 --prompt 8 --ep 2 --prompt-tokens "$T/p.bin" \
     "${FAST[@]}" --out "$T/pt2.h5" >"$T/o1" 2>"$T/e1" &&
   "$HB" run --workload prefill --model tiny-moe --batch 4 --prompt 8 --prompt-tokens "$T/p.bin" "${FAST[@]}" \
     --out "$T/pt1.h5" >"$T/o2" 2>"$T/e2"; then
  "$PY" - "$T/pt2.h5" "$T/pt1.h5" <<'PYEOF' || fail "prompt file with ep=2"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
g2 = np.vstack([a["cases/0000/rank%d/generated" % r][()] for r in (0, 1)])
sys.exit(0 if np.array_equal(g2, b["cases/0000/rank0/generated"][()]) else 1)
PYEOF
else
  fail "prompt file runs failed: $(cat "$T/e1" "$T/e2" | head -c 600)"
fi

# ep=2 and tp=2 from a Mixtral-shaped checkpoint (tests/make_checkpoint.py: 4 experts, top-2): each
# rank reads the whole expert stacks and keeps its experts (ep) or each expert's gate/up rows and
# down columns (tp); ep=2 (batch 2 a rank) gives ep=1's tokens for the group's 4 prompts and its
# expert_tokens, tp=2 gives tp=1's tokens and fingerprints
checks=$((checks + 1))
if "$PY" "$(dirname "$0")/make_checkpoint.py" "$T/mix" mixtral F32 single >"$T/mk.log" 2>&1 &&
   "${MPI[@]}" -np 2 "$HB" run "${TF[@]}" --weights "$T/mix" --batch 2 --ep 2 "${FAST[@]}" --out "$T/cke2.h5" >"$T/o1" 2>"$T/e1" &&
   "$HB" run "${TF[@]}" --weights "$T/mix" --batch 4 "${FAST[@]}" --out "$T/cke1.h5" >"$T/o2" 2>"$T/e2" &&
   "${MPI[@]}" -np 2 "$HB" run "${TF[@]}" --weights "$T/mix" --batch 2 --tp 2 "${FAST[@]}" --out "$T/ckt2.h5" >"$T/o3" 2>"$T/e3" &&
   "$HB" run "${TF[@]}" --weights "$T/mix" --batch 2 "${FAST[@]}" --out "$T/ckt1.h5" >"$T/o4" 2>"$T/e4"; then
  checks=$((checks + 1))
  "$PY" - "$T" <<'PYEOF' || fail "checkpoint ep=2 / tp=2"
import sys, h5py, numpy as np
t = sys.argv[1]
e2, e1, t2, t1 = (h5py.File("%s/%s.h5" % (t, n), "r") for n in ("cke2", "cke1", "ckt2", "ckt1"))
ok = True
for cid in (0, 1):
    c = "cases/%04d/rank%%d" % cid
    g = np.vstack([e2[c % r + "/generated"][()] for r in (0, 1)])
    x = sum(e2[c % r + "/expert_tokens"][()] for r in (0, 1))
    if not np.array_equal(g, e1[c % 0 + "/generated"][()]) or not np.array_equal(x, e1[c % 0 + "/expert_tokens"][()]):
        print("ep case", cid, g.tolist(), e1[c % 0 + "/generated"][()].tolist(), x.tolist(), file=sys.stderr); ok = False
    f2, f1 = t2[c % 0].attrs["fingerprint"], t1[c % 0].attrs["fingerprint"]
    if not np.array_equal(t2[c % 0 + "/generated"][()], t1[c % 0 + "/generated"][()]) or \
       not np.allclose(f2[:3], f1[:3], rtol=1e-5) or f2[3] != f1[3]:
        print("tp case", cid, list(f2), list(f1), file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PYEOF
else
  fail "checkpoint ep/tp runs failed: $(cat "$T/mk.log" "$T/e1" "$T/e2" "$T/e3" "$T/e4" 2>/dev/null | head -c 800)"
fi

expect2() {
  local np=$1 pat=$2; shift 2
  checks=$((checks + 1))
  "${MPI[@]}" -np "$np" "$HB" run "$@" --out "$T/x.h5" "${FAST[@]}" >"$T/out" 2>"$T/err"
  local rc=$?
  [[ $rc -eq 2 ]] || { fail "np $np $* -> exit $rc, expected 2: $(head -c 400 "$T/err")"; return; }
  grep -Eq -- "$pat" "$T/err" || fail "np $np $* -> '$(head -c 400 "$T/err")' does not match '$pat'"
  [[ ! -e $T/x.h5 ]] || fail "np $np $* -> wrote a results file"
}
expect2 2 "--ep: ep 2 on the dense model 'tiny'" --workload decode --model tiny --ep 2
expect2 2 "--ep: ep 3 does not divide the 8 experts of model 'tiny-moe'" --workload decode --model tiny-moe --ep 3
expect2 2 "ep 4 does not divide the 2 ranks of the run" --workload decode --model tiny-moe --ep 4
expect2 2 "--ep: ep 2 with tp 2: expert and tensor parallelism together are not implemented yet" \
  --workload decode --model tiny-moe --ep 2 --tp 2
expect2 2 "--dtype: dtype fp8 \(one scale per tensor\) with ep 2 is not implemented yet" \
  --workload decode --model tiny-moe --ep 2 --dtype fp8
expect2 2 "ep 2 with --schedule serial" --workload decode --model tiny-moe --ep 2 --schedule serial
# the prompt file must hold ep x batch prompts
"$PY" -c "
import struct
open('$T/short.bin', 'wb').write(struct.pack('<16i', *range(16)))"
expect2 2 "--prompt-tokens" --workload prefill --model tiny-moe --batch 2 --prompt 8 --ep 2 --prompt-tokens "$T/short.bin"
echo "test_ep.sh: $checks checks, $fails failed" >&2
[[ $fails -eq 0 ]]
