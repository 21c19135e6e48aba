# Plans (harness/plan.c); the argument is the directory of the shipped plans.
hb_test(test_plan SOURCES test_plan.c LABELS unit ARGS ${CMAKE_SOURCE_DIR}/workloads/plans)
