#!/usr/bin/env bash
# run.sh BUILD_DIR [SECONDS] - runs each fuzz target of an HB_FUZZ=ON build for SECONDS (default
# 60) from seed corpora made of the project's own files, and fails on the first finding (the
# reproducer is left in BUILD_DIR/fuzz-findings/). A longer run: `bash tests/fuzz/run.sh
# build-fuzz 3600`. Prints each target's executions and coverage.
set -euo pipefail
B=$(cd "$1" && pwd)
SECS=${2:-60}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
C=$B/fuzz-corpus F=$B/fuzz-findings
mkdir -p "$C/plan" "$C/yaml" "$C/results" "$C/safetensors" "$C/ckptjson" "$F"
cp "$SRC"/workloads/plans/*.yaml "$C/plan/"
cp "$SRC"/results/prices/*.yaml "$SRC"/results/claims/*.yaml "$C/yaml/"
# a small results file as the seed of the results reader (written by this build's hetbench)
if [[ ! -s $C/results/seed.h5 ]]; then
  OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0 "$B/hetbench" run --workload gemm,stream --m 8 --n 8 --k 8 \
    --stream-n 64 --min-seconds 0 --min-iters 2 --warmup 0 --no-ceilings --no-progress --backend cpu \
    --out "$C/results/seed.h5" >/dev/null 2>&1 || { echo "run.sh: could not write the seed results file" >&2; exit 1; }
fi
# a two-tensor safetensors file as the seed of the checkpoint reader
printf '%s' '{"model.norm.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}' >"$C/st.json"
{ "$SRC/tests/fuzz/le64.sh" "$(stat -c %s "$C/st.json")"; cat "$C/st.json"; printf '\000\000\200\077\000\000\000\100\200\077\000\100'; } \
  >"$C/safetensors/seed.safetensors"
rm -f "$C/st.json"
# the other checkpoint inputs (fuzz_ckptjson: the first byte picks index / config / token shard)
{ printf '\000'; printf '%s' '{"metadata":{},"weight_map":{"model.norm.weight":"a.safetensors","x":"b.safetensors"}}'; } >"$C/ckptjson/index"
for mt in llama qwen3_moe deepseek_v3 mixtral gpt2; do
  { printf '\001'; printf '{"model_type":"%s","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,' "$mt"
    printf '"intermediate_size":8,"vocab_size":4,"num_experts":4,"num_local_experts":4,"num_experts_per_tok":2,'
    printf '"moe_intermediate_size":4,"kv_lora_rank":4,"qk_nope_head_dim":2,"qk_rope_head_dim":2,"v_head_dim":2,'
    printf '"n_routed_experts":4,"n_group":2,"topk_group":1,"n_embd":8,"n_layer":1,"n_head":2}'; } >"$C/ckptjson/config-$mt"
done
{ printf '\002'; printf '\210\330\064\001\001\000\000\000\003\000\000\000'; head -c 1012 /dev/zero; printf '\001\000\002\000\003\000'; } >"$C/ckptjson/tokens"
fails=0
for t in plan yaml results safetensors ckptjson; do
  log=$B/fuzz-$t.log
  # -rss_limit_mb: a reader that allocates what the input claims is a finding too
  if ! (cd "$F" && ASAN_OPTIONS=allocator_may_return_null=1 "$B/tests/fuzz/fuzz_$t" -max_total_time="$SECS" \
        -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 "$C/$t" >"$log" 2>&1); then
    echo "FAIL: fuzz_$t found something (reproducer in $F; log $log):" >&2
    grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5 >&2
    fails=$((fails + 1))
  fi
  execs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$log" | tail -1 | grep -o "[0-9]*$" || echo "?")
  cov=$(grep -oE '(DONE|pulse|NEW|REDUCE) +cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || echo '?')
  echo "fuzz_$t: ${SECS}s, $execs executions, coverage $cov edges" >&2
done
[[ $fails -eq 0 ]]
