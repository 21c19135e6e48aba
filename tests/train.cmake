# Training: the CPU backend's backward ops, cross-entropy and AdamW against finite differences
# of double-precision forwards written in the test (tests/test_train_ops.c), and the train
# workload (tests/test_train.c).
hb_test(test_train_ops SOURCES test_train_ops.c LABELS "unit;ref")
hb_test(test_train SOURCES test_train.c LABELS "unit;ref")
# The CLI: bad training input exits 2 before anything runs; a repeat run records its losses.
add_test(NAME test_train_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_train_cli.sh $<TARGET_FILE:hetbench>
         ${HB_H5PY_PYTHON})
set_tests_properties(test_train_cli PROPERTIES LABELS "unit" TIMEOUT 300)
