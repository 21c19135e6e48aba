# Training: the CPU backend's backward ops, cross-entropy and AdamW against finite differences
# of double-precision forwards written in the test (tests/test_train_ops.c), and the train
# workload (tests/test_train.c).
hb_test(test_train_ops SOURCES test_train_ops.c LABELS "unit;ref")
hb_test(test_train SOURCES test_train.c LABELS "unit;ref")
