# results/: HDF5 writer/reader round trip (test_results) and, when a python3 with h5py is
# found at configure time, the /summary table as h5py/numpy see it (test_summary_h5py), on the
# file test_results leaves in the build tree.
set(HB_RESULTS_H5 ${CMAKE_CURRENT_BINARY_DIR}/test_results_known.h5)
hb_test(test_results SOURCES test_results.c LABELS unit ARGS ${HB_RESULTS_H5})
set_tests_properties(test_results PROPERTIES FIXTURES_SETUP results_h5)

if(HB_H5PY_PYTHON)
  message(STATUS "test_summary_h5py: ${HB_H5PY_PYTHON}")
  add_test(NAME test_summary_h5py
    COMMAND ${HB_H5PY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/check_summary.py ${HB_RESULTS_H5})
  set_tests_properties(test_summary_h5py PROPERTIES LABELS unit FIXTURES_REQUIRED results_h5
    SKIP_RETURN_CODE 77)
else()
  # scripts/setup.sh installs python3-h5py: its absence is a broken setup, not a skip
  add_test(NAME test_summary_h5py COMMAND sh -c "echo 'no python3 with h5py (install python3-h5py)'; exit 1")
  set_tests_properties(test_summary_h5py PROPERTIES LABELS unit)
endif()
