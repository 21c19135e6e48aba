# Timing integrity (label unit): the verdict on synthetic evidence, the /proc readers on fake
# files, and interference injected by busy children pinned to this test's CPU (test_timing);
# the run table / --json / HDF5 of a quiet and an injected `hetbench run` (test_timing_run).
# Both inject load (busy children on a CPU): RUN_SERIAL keeps them from disturbing the timing-
# sensitive meter tests that ctest -j would otherwise run beside them.
hb_test(test_timing SOURCES test_timing.c LABELS unit)
set_tests_properties(test_timing PROPERTIES RUN_SERIAL TRUE)
add_test(NAME test_timing_run COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_timing_run.sh $<TARGET_FILE:hetbench>)
set_tests_properties(test_timing_run PROPERTIES LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 120 RUN_SERIAL TRUE)
