#!/usr/bin/env bash
# gpu-runner.sh - CI on a single-GPU runner (NVIDIA or AMD): build with the GPU backend(s), run
# the `gpu` tests (which must not skip here), `hetbench verify` (every op against the CPU), and
# the short benchmark plan workloads/plans/gpu-ci.yaml, whose HDF5 file is the artifact.
#   HB_BUILD_DIR   build directory                                   [build-gpu-ci]
#   HB_ARTIFACTS   where verify.txt and gpu-ci.h5 go                 [artifacts]
#   HB_CUDA_ARCHS  e.g. 90 to build only the runner's architecture   [80;90]
#   HB_HIP_ARCHS   e.g. gfx942                                       [gfx90a;gfx942]
#   HB_BASELINE    a previous gpu-ci.h5: fail on a regression > 5% (hetbench compare)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${HB_BUILD_DIR:-build-gpu-ci}
ART=${HB_ARTIFACTS:-artifacts}
mkdir -p "$ART"

# packages (scripts/setup.sh) and a build with every GPU backend whose compiler is here
HB_BUILD_DIR=$BUILD bash scripts/setup.sh
extra=()
[[ -n ${HB_CUDA_ARCHS:-} ]] && extra+=("-DHB_CUDA_ARCHS=$HB_CUDA_ARCHS")
[[ -n ${HB_HIP_ARCHS:-} ]] && extra+=("-DHB_HIP_ARCHS=$HB_HIP_ARCHS")
if ((${#extra[@]})); then
  cmake -S . -B "$BUILD" "${extra[@]}" >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" >/dev/null
fi

"$BUILD/hetbench" list backends | tee "$ART/backends.txt"
backend=$(awk '$1 ~ /^(cuda|hip)$/ && $2 == "available" {print $1; exit}' "$ART/backends.txt")
if [[ -z $backend ]]; then
  echo "gpu-runner: no GPU backend available on this runner (see above): the runner is broken" >&2
  exit 1
fi

# the gpu tests: on a GPU runner a skip is a failure
(cd "$BUILD" && ctest -L gpu --output-on-failure --no-tests=error) | tee "$ART/ctest-gpu.txt"
if grep -q "Skipped" "$ART/ctest-gpu.txt"; then
  echo "gpu-runner: a gpu test skipped on a GPU runner" >&2
  exit 1
fi

"$BUILD/hetbench" verify --backend "$backend" | tee "$ART/verify.txt"

"$BUILD/hetbench" run --plan workloads/plans/gpu-ci.yaml --backend "$backend" --no-progress \
  --out "$ART/gpu-ci.h5" --force
if [[ -n ${HB_BASELINE:-} ]]; then
  "$BUILD/hetbench" compare "$HB_BASELINE" "$ART/gpu-ci.h5" --max-regression 5
fi
echo "gpu-runner: ok ($backend); artifacts in $ART/" >&2
