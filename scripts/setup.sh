#!/usr/bin/env bash
# setup.sh [--tests] - make sure the Debian packages hetbench builds (and, with --tests, is
# tested) with are installed, then configure and build into ${HB_BUILD_DIR:-build}.
#
# As root on Debian/Ubuntu, missing packages are installed with apt-get. Otherwise the script
# lists exactly the missing packages and the command to install them, and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# package: what it brings
PACKAGES=(
  cmake gcc g++ make pkg-config       # toolchain (g++: nvcc's host compiler for the CUDA module)
  libopenmpi-dev openmpi-bin           # MPI (coordinator; a single rank runs as an MPI singleton)
  libhwloc-dev hwloc                   # topology
  libhdf5-dev hdf5-tools               # results files (h5dump for inspection)
  libopenblas-openmp-dev               # CPU GEMMs (OpenMP build: one thread pool with our ops)
  libyaml-dev                          # plans
  libjansson-dev                       # checkpoints (safetensors headers, config.json)
  python3-h5py python3-numpy           # the summary table loads in h5py; scripts/bench-*.sh
)
if [[ ${1:-} == --tests ]]; then
  PACKAGES+=(
    slurm-wlm munge libpmix-dev        # the slurm test starts a real local cluster (pmix for srun)
    iproute2 util-linux procps         # ip + unshare (a private network namespace), pgrep
    valgrind                           # the sampler's leak check
    hipcc libamdhip64-dev              # CI compiles the HIP module too (built-in GEMM: no hipBLAS in Debian)
  )
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

BUILD=${HB_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHB_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
echo "setup: built $BUILD/hetbench" >&2
