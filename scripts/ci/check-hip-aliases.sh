#!/usr/bin/env bash
# check-hip-aliases.sh [GPU_SOURCE_DIR] - the one-source rule of backends/gpu/: every CUDA name
# (cuda*, cublas*, CUDA_*, CUBLAS*) used in the kernel sources must have a HIP alias, a
# `#define NAME ...` in vendor/hip.h, unless it sits inside a CUDA-only region
# (`#if defined(HB_GPU_CUDA)` / `#ifdef HB_GPU_CUDA` ... `#else`/`#endif`).
# Comments and string literals are ignored. Exit 0 when every name is covered, 1 otherwise
# (listing each missing name and the files using it), 2 on a usage error.
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")/../.." && pwd)/backends/gpu}
hip=$dir/vendor/hip.h
if [[ ! -f $hip ]]; then
  echo "check-hip-aliases: no $hip" >&2
  exit 2
fi

# names that have an alias
aliased=$(sed -nE 's/^[[:space:]]*#[[:space:]]*define[[:space:]]+([A-Za-z_][A-Za-z0-9_]*).*/\1/p' "$hip" | sort -u)

# source without comments and strings, then without CUDA-only regions
strip() {
  perl -0777 -pe 's{("(?:[^"\\\n]|\\.)*")|(/\*.*?\*/)|(//[^\n]*)}{defined $1 ? q("") : q( )}gse' "$1" |
    awk '
      function cuda_only(   i) { for (i = 1; i <= depth; i++) if (only[i]) return 1; return 0 }
      /^[[:space:]]*#[[:space:]]*(if|ifdef|ifndef)([[:space:](]|$)/ {
        depth++
        only[depth] = ($0 ~ /HB_GPU_CUDA/ && $0 !~ /!/ && $0 !~ /ifndef/ && $0 !~ /\|\|/)
        next
      }
      /^[[:space:]]*#[[:space:]]*elif/ {
        only[depth] = ($0 ~ /HB_GPU_CUDA/ && $0 !~ /!/ && $0 !~ /\|\|/)
        next
      }
      /^[[:space:]]*#[[:space:]]*else/ { only[depth] = 0; next }
      /^[[:space:]]*#[[:space:]]*endif/ { if (depth > 0) depth--; next }
      { if (!cuda_only()) print }
    '
}

status=0
declare -A users=()
for f in "$dir"/*.cu "$dir"/*.cuh "$dir"/*.h; do
  [[ -f $f ]] || continue
  for name in $(strip "$f" | grep -oE '\b(cuda[A-Z_][A-Za-z0-9_]*|cublas[A-Za-z0-9_]*|CUDA_[A-Za-z0-9_]*|CUBLAS[A-Za-z0-9_]*)\b' | sort -u); do
    if ! grep -qx "$name" <<<"$aliased"; then
      users[$name]="${users[$name]:-} $(basename "$f")"
      status=1
    fi
  done
done
for name in "${!users[@]}"; do
  echo "check-hip-aliases: $name (used in${users[$name]}) has no HIP alias in vendor/hip.h;" \
       "add '#define $name hip...' there or move the use into an '#if defined(HB_GPU_CUDA)' region" >&2
done
if ((status == 0)); then
  echo "check-hip-aliases: every CUDA name used in $dir has a HIP alias"
fi
exit $status
