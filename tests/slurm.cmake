# A real single-node Slurm cluster (munged + slurmctld + two slurmd, started and stopped by the
# test) runs scripts/slurm/*.sbatch on the CPU backend: plain, heterogeneous and array jobs,
# SIGUSR1, hung and aborted ranks, and the per-rank Slurm fields in the HDF5 file.
# Skips (77) only where Slurm/munge are absent and cannot be installed.
add_test(NAME test_slurm COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_slurm.sh $<TARGET_FILE:hetbench>
         ${PROJECT_SOURCE_DIR} ${HB_H5PY_PYTHON})
set_tests_properties(test_slurm PROPERTIES LABELS "slurm" SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
