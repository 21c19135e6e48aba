hb_test(test_transformer SOURCES test_transformer.c LABELS "unit;ref")
hb_test(test_models SOURCES test_models.c LABELS unit)
# Tensor parallelism under mpirun (4 CPU ranks: tp = 2 and 4) against the model run alone.
find_program(HB_TP_MPIRUN NAMES mpirun mpiexec)
if(HB_TP_MPIRUN)
  add_executable(test_tp test_tp.c)
  target_link_libraries(test_tp PRIVATE hbcore)
  add_test(NAME test_tp COMMAND ${CMAKE_COMMAND} -E env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
           OMP_NUM_THREADS=1 ${HB_TP_MPIRUN} --oversubscribe --bind-to none -np 4 $<TARGET_FILE:test_tp>)
  set_tests_properties(test_tp PROPERTIES LABELS "mpi;ref" SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
endif()
