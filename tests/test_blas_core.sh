#!/usr/bin/env bash
# test_blas_core.sh HETBENCH PYTHON - the OpenBLAS kernels `run` uses (harness/main.c): when
# OpenBLAS falls back to its generic Prescott kernels on a CPU with AVX-512 or AVX2 + FMA,
# hetbench sets OPENBLAS_CORETYPE (SkylakeX / Haswell) and says so in /devices runtime; the
# user's OPENBLAS_CORETYPE and HETBENCH_BLAS_CORETYPE=runtime are left alone; another value of
# HETBENCH_BLAS_CORETYPE is exit 2.
set -uo pipefail
HB=$1 PY=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
runtime() { # OUT [env...] -> /devices runtime of rank 0
  local out=$1; shift
  env "$@" "$HB" run --workload gemm --m 8 --n 8 --k 8 --min-seconds 0 --min-iters 1 --warmup 0 --no-ceilings \
    --no-progress --idle-seconds 0 --power-hz 0 --out "$out" >/dev/null 2>&1 || { echo "run failed: $*"; return 1; }
  "$PY" -c "import h5py; print(h5py.File('$out')['devices']['runtime'][0].decode())"
}
own=$(runtime "$T/own.h5" HETBENCH_BLAS_CORETYPE=runtime) || fail=1
def=$(runtime "$T/def.h5") || fail=1
usr=$(runtime "$T/usr.h5" OPENBLAS_CORETYPE=Haswell) || fail=1
echo "OpenBLAS's choice: $own"
echo "hetbench default:  $def"
echo "user's Haswell:    $usr"
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }
if [[ $own == *" Prescott "* ]] && has avx512f && has avx512bw && has avx512vl && has avx512dq && has avx512cd; then
  [[ $def == *" SkylakeX "*"core set by hetbench"* ]] || { echo "FAIL: expected SkylakeX set by hetbench"; fail=1; }
elif [[ $own == *" Prescott "* ]] && has avx2 && has fma; then
  [[ $def == *" Haswell "*"core set by hetbench"* ]] || { echo "FAIL: expected Haswell set by hetbench"; fail=1; }
else # OpenBLAS knew the CPU (or it has no AVX2): its choice stands
  [[ $def == "$own" ]] || { echo "FAIL: hetbench changed OpenBLAS's own choice"; fail=1; }
fi
[[ $own != *"core set by hetbench"* ]] || { echo "FAIL: HETBENCH_BLAS_CORETYPE=runtime was not honoured"; fail=1; }
if [[ $usr == *"DYNAMIC_ARCH"* ]]; then
  [[ $usr == *" Haswell "* && $usr != *"core set by hetbench"* ]] || { echo "FAIL: the user's OPENBLAS_CORETYPE was not kept"; fail=1; }
fi
HETBENCH_BLAS_CORETYPE=fast "$HB" run --workload gemm --m 8 --n 8 --k 8 --out "$T/bad.h5" >"$T/bad.log" 2>&1
rc=$?
if [[ $rc -ne 2 ]] || ! grep -q "HETBENCH_BLAS_CORETYPE='fast' (accepted: auto, runtime)" "$T/bad.log" || [[ -e $T/bad.h5 ]]; then
  echo "FAIL: bad HETBENCH_BLAS_CORETYPE: exit $rc: $(cat "$T/bad.log")"; fail=1
fi
exit $fail
