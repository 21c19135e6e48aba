# End-to-end command-line tests: exit codes and one-line messages for bad input, and a real
# small run whose HDF5 file is checked with h5py.
add_test(NAME test_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:hetbench>
         ${CMAKE_CURRENT_SOURCE_DIR})
set_tests_properties(test_cli PROPERTIES LABELS "unit" SKIP_RETURN_CODE 77 TIMEOUT 300)

# The OpenBLAS kernels run picks when OpenBLAS falls back to its generic ones (harness/main.c).
if(HB_H5PY_PYTHON)
  add_test(NAME test_blas_core COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_blas_core.sh $<TARGET_FILE:hetbench>
           ${HB_H5PY_PYTHON})
  set_tests_properties(test_blas_core PROPERTIES LABELS "unit" TIMEOUT 120)
endif()

# Output paths checked before a run (folder, unwritable, no space), a full disk before a case,
# --resume restoring options, --dry-run, the progress line on a terminal, help COMMAND and
# verify --require-device.
add_test(NAME test_run_paths COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_run_paths.sh $<TARGET_FILE:hetbench>)
set_tests_properties(test_run_paths PROPERTIES LABELS "unit" TIMEOUT 180)

# The duration estimate of --dry-run and of the progress line's ETA (harness/dryrun.c), and the
# output-path checks and free-space accounting (harness/outpath.c).
hb_test(test_dryrun SOURCES test_dryrun.c LABELS unit)
