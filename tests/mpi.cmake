# Multi-rank runs under mpirun on the CPU backend: one file with every rank, fault isolation
# (error / abort / hang), signals and --resume.
find_program(HB_MPIRUN NAMES mpirun mpiexec)
if(HB_MPIRUN)
  add_test(NAME test_mpi COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_mpi.sh $<TARGET_FILE:hetbench> ${HB_MPIRUN})
  set_tests_properties(test_mpi PROPERTIES LABELS "mpi" SKIP_RETURN_CODE 77 TIMEOUT 600 RUN_SERIAL TRUE)
endif()
# benchmark of the 1024-rank write (scripts/bench-coordinator.sh), not a test
add_executable(bench_h5write bench_h5write.c)
target_link_libraries(bench_h5write PRIVATE hbcore)
# rank groups: the collective workload over hb_comm's MPI implementation (2 ranks)
if(HB_MPIRUN)
  add_test(NAME test_collective COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_collective.sh $<TARGET_FILE:hetbench> ${HB_MPIRUN})
  set_tests_properties(test_collective PROPERTIES LABELS "mpi" SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
endif()
# rank groups through the CLI: tensor parallelism (2 ranks) and its bad input
if(HB_MPIRUN)
  add_test(NAME test_groups COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_groups.sh $<TARGET_FILE:hetbench> ${HB_MPIRUN})
  set_tests_properties(test_groups PROPERTIES LABELS "mpi" SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
endif()
# expert parallelism through the CLI (2 ranks, one group of ep=2) against ep=1, and its bad input
if(HB_MPIRUN)
  add_test(NAME test_ep COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_ep.sh $<TARGET_FILE:hetbench> ${HB_MPIRUN})
  set_tests_properties(test_ep PROPERTIES LABELS "mpi" SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
endif()
