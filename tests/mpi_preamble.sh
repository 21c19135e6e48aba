# mpi_preamble.sh - sourced by the MPI test scripts (test_mpi, test_train_dp, test_groups,
# test_collective) with their arguments HETBENCH MPIRUN: sets HB, MPIRUN, a temporary folder T
# removed on exit, Open MPI as root with oversubscription, one OpenMP thread per rank, the
# fails/checks counters with fail(), PY (a python3 with h5py, else the test skips: exit 77) and
# MPI (mpirun with hetbench's own binding).
set -u
HB=$1
MPIRUN=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
fails=0 checks=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
PY=""
for p in python3 /usr/bin/python3; do "$p" -c "import h5py" 2>/dev/null && { PY=$p; break; }; done
[[ -n $PY ]] || { echo "SKIP: no python3 with h5py" >&2; exit 77; }
MPI=("$MPIRUN" --oversubscribe --bind-to none)
