#!/usr/bin/env bash
# bench-train-llmc.sh LLMC_DRIVER - CPU training throughput of hetbench's train workload beside
# karpathy/llm.c's train_gpt2.c: GPT-2 124M, B=4, T=64, f32, rounds interleaved (the machine
# may be shared: the ratio of neighbouring runs is the figure). Target: hetbench >= 3x llm.c.
#
# LLMC_DRIVER is a build of llm.c's train_gpt2.c functions (never part of this repository):
# fetch github:karpathy/llm.c outside the tree and build train_gpt2.c - or, without its
# gpt2_124M.bin checkpoint, a driver that #defines TESTING, includes train_gpt2.c, fills a
# GPT-2 124M model (Vp 50304) with random weights and times gpt2_forward + zero_grad +
# backward + update per step, printing "took X s" per step like train_gpt2.c's main - with
# gcc -O3 -march=native -fopenmp. Its first step (page faults) is dropped.
# Env: ROUNDS (2), STEPS (4 timed steps per run), HB_BUILD_DIR, OMP_NUM_THREADS (all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
LLMC=${1:?usage: bench-train-llmc.sh LLMC_DRIVER}
BUILD=${HB_BUILD_DIR:-build}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-4}
[[ -x $BUILD/hetbench ]] || bash scripts/setup.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
  /usr/bin/time -f "%M" -o "$T/llmc.rss" "$LLMC" $((STEPS + 1)) >"$T/llmc.out"
  llmc=$(awk '/took/ { for (i = 1; i <= NF; i++) if ($i == "(took") { n++; if (n > 1) { s += $(i + 1); k++ } } }
              END { printf "%.1f", 256 * k / s }' "$T/llmc.out")
  /usr/bin/time -f "%M" -o "$T/hb.rss" "$BUILD/hetbench" run --workload train --model gpt2-124m --batch 4 --seq 64 \
    --warmup 1 --min-iters "$STEPS" --min-seconds 0 --power-hz 0 --no-ceilings --no-progress --json \
    --out "$T/hb.h5" --force >"$T/hb.json"
  hb=$(python3 -c 'import json,sys; print("%.1f" % json.loads(open(sys.argv[1]).readline())["rate"])' "$T/hb.json")
  est=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["mem_bytes"])' "$T/hb.json")
  printf "round %d: llm.c %s tokens/s (peak RSS %d MiB)  hetbench %s tokens/s (peak RSS %d MiB, estimate %d MiB)  ratio %.2f\n" \
    "$r" "$llmc" $(($(cat "$T/llmc.rss") / 1024)) "$hb" $(($(cat "$T/hb.rss") / 1024)) $((est >> 20)) \
    "$(python3 -c "print($hb / $llmc)")"
done
