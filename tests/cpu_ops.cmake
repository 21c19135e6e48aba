# CPU backend: every op against a naive double-precision reference (tests/test_cpu_ops.c),
# and the matmul benchmark (a program that prints figures, not a test).
hb_test(test_cpu_ops SOURCES test_cpu_ops.c LABELS "unit;ref")
add_executable(bench_cpu_matmul bench_cpu_matmul.c)
target_link_libraries(bench_cpu_matmul PRIVATE hbcore)
