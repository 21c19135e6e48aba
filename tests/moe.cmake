# Mixture-of-Experts ops of the CPU backend (router with ties and group-limited selection,
# permutation, grouped GEMM, combine) against double-precision references and a second
# implementation (tests/test_moe.c)
hb_test(test_moe SOURCES test_moe.c LABELS "unit;ref")
