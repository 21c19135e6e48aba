# Training: the CPU backend's backward ops, cross-entropy and AdamW against finite differences
# of double-precision forwards written in the test (tests/test_train_ops.c), and the train
# workload (tests/test_train.c).
hb_test(test_train_ops SOURCES test_train_ops.c LABELS "unit;ref")
hb_test(test_train SOURCES test_train.c LABELS "unit;ref")
# The CLI: bad training input exits 2 before anything runs; a repeat run records its losses.
add_test(NAME test_train_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_train_cli.sh $<TARGET_FILE:hetbench>
         ${HB_H5PY_PYTHON})
set_tests_properties(test_train_cli PROPERTIES LABELS "unit" TIMEOUT 300)
# Data-parallel training under mpirun on CPU ranks: dp=2 batch B == dp=1 batch 2B.
find_program(HB_TRAIN_MPIRUN NAMES mpirun mpiexec)
if(HB_TRAIN_MPIRUN)
  add_test(NAME test_train_dp COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_train_dp.sh $<TARGET_FILE:hetbench>
           ${HB_TRAIN_MPIRUN})
  set_tests_properties(test_train_dp PROPERTIES LABELS "mpi" SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
endif()
