# results/: HDF5 writer/reader round trip (test_results) and, when a python3 with h5py is
# found at configure time, the /summary table as h5py/numpy see it (test_summary_h5py), on the
# file test_results leaves in the build tree.
set(HB_RESULTS_H5 ${CMAKE_CURRENT_BINARY_DIR}/test_results_known.h5)
hb_test(test_results SOURCES test_results.c LABELS unit ARGS ${HB_RESULTS_H5})
set_tests_properties(test_results PROPERTIES FIXTURES_SETUP results_h5)

# The python3 first on PATH may lack h5py (pyenv, venv) while the distribution's has it:
# take the first candidate that imports h5py. -DHB_H5PY_PYTHON=... overrides.
if(NOT HB_H5PY_PYTHON)
  find_program(HB_PATH_PYTHON3 python3)
  set(HB_H5PY_PYTHON "")
  foreach(py ${HB_PATH_PYTHON3} /usr/bin/python3)
    if(EXISTS "${py}" AND NOT HB_H5PY_PYTHON)
      execute_process(COMMAND "${py}" -c "import h5py, numpy" RESULT_VARIABLE rv
        OUTPUT_QUIET ERROR_QUIET)
      if(rv EQUAL 0)
        set(HB_H5PY_PYTHON "${py}")
      endif()
    endif()
  endforeach()
  set(HB_H5PY_PYTHON "${HB_H5PY_PYTHON}" CACHE FILEPATH "python3 with h5py for test_summary_h5py")
endif()
if(HB_H5PY_PYTHON)
  message(STATUS "test_summary_h5py: ${HB_H5PY_PYTHON}")
  add_test(NAME test_summary_h5py
    COMMAND ${HB_H5PY_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/check_summary.py ${HB_RESULTS_H5})
  set_tests_properties(test_summary_h5py PROPERTIES LABELS unit FIXTURES_REQUIRED results_h5
    SKIP_RETURN_CODE 77)
else()
  message(STATUS "test_summary_h5py: no python3 with h5py found, test not added")
endif()
