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
# a rank lost (abort, hang) inside a collective: its group lost, the rest kept, --resume (4 ranks)
if(HB_MPIRUN)
  add_test(NAME test_group_loss COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_group_loss.sh $<TARGET_FILE:hetbench> ${HB_MPIRUN})
  set_tests_properties(test_group_loss PROPERTIES LABELS "mpi" SKIP_RETURN_CODE 77 TIMEOUT 600 RUN_SERIAL TRUE)
endif()
# hb_comm over NCCL (backends/comm_nccl.c) against a fake libnccl over MPI (tests/fake_nccl.c):
# loading, bootstrapping, every collective equal to the MPI implementation, the calls made, errors
add_library(fake_nccl SHARED fake_nccl.c)
target_link_libraries(fake_nccl PRIVATE MPI::MPI_C)
set_target_properties(fake_nccl PROPERTIES OUTPUT_NAME nccl SOVERSION 2 C_VISIBILITY_PRESET hidden
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fake_nccl)
add_executable(test_comm_nccl test_comm_nccl.c)
target_link_libraries(test_comm_nccl PRIVATE hbcore)
add_dependencies(test_comm_nccl fake_nccl)
if(HB_MPIRUN)
  add_test(NAME test_comm_nccl COMMAND ${CMAKE_COMMAND} -E env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
           OMP_NUM_THREADS=1 HETBENCH_NCCL_LIBRARY=$<TARGET_FILE:fake_nccl>
           FAKE_NCCL_LOG=${CMAKE_CURRENT_BINARY_DIR}/fake_nccl/calls
           ${HB_MPIRUN} --oversubscribe --bind-to none -np 3 $<TARGET_FILE:test_comm_nccl>)
  set_tests_properties(test_comm_nccl PROPERTIES LABELS "mpi;unit" SKIP_RETURN_CODE 77 TIMEOUT 120 RUN_SERIAL TRUE)
endif()
# tp=2 on 2 emulated CUDA ranks through the fake NCCL, against CPU tp=1 (needs test_gpu_emu's module)
if(HB_MPIRUN AND TEST test_gpu_emu)
  set_tests_properties(test_gpu_emu PROPERTIES FIXTURES_SETUP gpu_emu_module)
  add_test(NAME test_nccl_emu COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_nccl_emu.sh $<TARGET_FILE:hetbench> ${HB_MPIRUN}
           ${CMAKE_CURRENT_BINARY_DIR}/gpu_emu/lib $<TARGET_FILE:fake_nccl>)
  set_tests_properties(test_nccl_emu PROPERTIES LABELS "mpi;emu" FIXTURES_REQUIRED gpu_emu_module SKIP_RETURN_CODE 77
                       TIMEOUT 600 RUN_SERIAL TRUE)
endif()
