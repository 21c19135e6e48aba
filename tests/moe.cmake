# Mixture-of-Experts ops of the CPU backend (router with ties and group-limited selection,
# permutation, grouped GEMM, combine) against double-precision references and a second
# implementation (tests/test_moe.c)
hb_test(test_moe SOURCES test_moe.c LABELS "unit;ref")

# --interleave on a MoE case keeps the first window's expert counts (tests/test_interleave_moe.sh)
if(HB_H5PY_PYTHON)
  add_test(NAME test_interleave_moe COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_interleave_moe.sh
           $<TARGET_FILE:hetbench> ${HB_H5PY_PYTHON})
  set_tests_properties(test_interleave_moe PROPERTIES LABELS "unit" TIMEOUT 120)
endif()

# the grouped GEMM against one dense GEMM of the same FLOPs (scripts/bench-moe-gpu.sh): a
# program that prints figures, not a test
add_executable(bench_grouped bench_grouped.c)
target_link_libraries(bench_grouped PRIVATE hbcore)
