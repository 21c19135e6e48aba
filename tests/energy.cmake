# Energy (label meter): the pure computation (test_energy), the sampler thread (test_sampler,
# and again under valgrind), the RAPL meter on fake powercap trees (test_meter_rapl), the NVML
# and ROCm SMI meters against scripted fake libraries (test_meter_nvml, test_meter_rsmi),
# `hetbench power` with every fake at once (test_power_cli) and a CPU run with a live fake
# powercap tree whose HDF5 file must hold the energy (test_energy_run).
#
# The fakes are shared libraries with the real sonames, found through HETBENCH_NVML_LIBRARY /
# HETBENCH_RSMI_LIBRARY (never by the default search: nothing points the loader at tests/).
add_library(fake_nvml SHARED fake_nvml.c)
set_target_properties(fake_nvml PROPERTIES OUTPUT_NAME nvidia-ml SOVERSION 1)   # libnvidia-ml.so.1
add_library(fake_nvml_noenergy SHARED fake_nvml.c)    # lacks nvmlDeviceGetTotalEnergyConsumption
target_compile_definitions(fake_nvml_noenergy PRIVATE FAKE_NVML_NO_ENERGY)
set_target_properties(fake_nvml_noenergy PROPERTIES OUTPUT_NAME fake-nvml-noenergy)
add_library(fake_rsmi SHARED fake_rsmi.c)
set_target_properties(fake_rsmi PROPERTIES OUTPUT_NAME rocm_smi64 SOVERSION 1)  # librocm_smi64.so.1
add_library(fake_rsmi52 SHARED fake_rsmi.c)           # the ROCm 5.2 shape
target_compile_definitions(fake_rsmi52 PRIVATE FAKE_RSMI_52)
set_target_properties(fake_rsmi52 PROPERTIES OUTPUT_NAME fake-rsmi52)
add_executable(fake_powercap fake_powercap.c)         # a live fake RAPL tree (tests, benchmark)
target_link_libraries(fake_powercap PRIVATE ${M_LIB})

set(HB_METER_ENV "OMP_NUM_THREADS=1")
hb_test(test_energy SOURCES test_energy.c LABELS meter)
hb_test(test_sampler SOURCES test_sampler.c LABELS meter)
hb_test(test_meter_rapl SOURCES test_meter_rapl.c LABELS meter)
hb_test(test_meter_nvml SOURCES test_meter_nvml.c LABELS meter ARGS $<TARGET_FILE:fake_nvml_noenergy>)
hb_test(test_meter_rsmi SOURCES test_meter_rsmi.c LABELS meter ARGS $<TARGET_FILE:fake_rsmi52>)
add_dependencies(test_meter_nvml fake_nvml fake_nvml_noenergy)
add_dependencies(test_meter_rsmi fake_rsmi fake_rsmi52)
set_tests_properties(test_meter_nvml PROPERTIES
  ENVIRONMENT "${HB_METER_ENV};HETBENCH_NVML_LIBRARY=$<TARGET_FILE:fake_nvml>" TIMEOUT 120)
set_tests_properties(test_meter_rsmi PROPERTIES
  ENVIRONMENT "${HB_METER_ENV};HETBENCH_RSMI_LIBRARY=$<TARGET_FILE:fake_rsmi>" TIMEOUT 120)
set_tests_properties(test_meter_rapl test_sampler PROPERTIES ENVIRONMENT "${HB_METER_ENV}" TIMEOUT 120)

# The sampler under valgrind: no leak, no invalid access (timing checks relaxed there).
find_program(HB_VALGRIND valgrind)
if(HB_VALGRIND)
  add_test(NAME test_sampler_valgrind COMMAND ${HB_VALGRIND} --error-exitcode=1 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
    $<TARGET_FILE:test_sampler>)
else()
  add_test(NAME test_sampler_valgrind COMMAND sh -c "echo 'SKIP: valgrind not installed'; exit 77")
endif()
set_tests_properties(test_sampler_valgrind PROPERTIES LABELS meter SKIP_RETURN_CODE 77 TIMEOUT 300
  ENVIRONMENT "${HB_METER_ENV};HB_TEST_UNDER_VALGRIND=1")

find_program(HB_ANY_PYTHON3 python3)
set(HB_JSON_PYTHON "${HB_H5PY_PYTHON}")
if(NOT HB_JSON_PYTHON)
  set(HB_JSON_PYTHON "${HB_ANY_PYTHON3}")
endif()

add_test(NAME test_power_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_power_cli.sh
  $<TARGET_FILE:hetbench> $<TARGET_FILE:fake_powercap> $<TARGET_FILE:fake_nvml>
  $<TARGET_FILE:fake_rsmi> "${HB_JSON_PYTHON}")
add_test(NAME test_energy_run COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_energy_run.sh
  $<TARGET_FILE:hetbench> $<TARGET_FILE:fake_powercap> "${HB_H5PY_PYTHON}")
set_tests_properties(test_power_cli test_energy_run PROPERTIES LABELS meter SKIP_RETURN_CODE 77
  TIMEOUT 300 ENVIRONMENT "${HB_METER_ENV}")
# the fake powercap tree is rewritten every 5 ms by another process: keep other tests off
# the 2 cores while it runs, or the writer lags and the 5% energy bounds fail
set_tests_properties(test_energy_run PROPERTIES RUN_SERIAL TRUE)
# ... and the run's OpenMP threads sleep at barriers (PASSIVE) rather than spin (run's default
# bounded spin): on 2 cores spinning threads delay the fake writer and the power sampler, and
# the counter/integral ratio left its 2 % bound (0.976 in CI); this test checks the meter's
# arithmetic, not the wait policy (backends/WAIT_POLICY.md)
set_property(TEST test_energy_run APPEND PROPERTY ENVIRONMENT "HETBENCH_WAIT_POLICY=passive")
# test_meter_rapl's and test_power_cli's live fake counters (writer threads) lag when the other CI job starves it
# (seen beside test_gpu_emu): alone, like test_energy_run
set_tests_properties(test_meter_rapl test_power_cli PROPERTIES RUN_SERIAL TRUE)

# The sampler's overhead benchmark (scripts/bench-sampler.sh): figures, not a test.
add_executable(bench_sampler bench_sampler.c)
target_link_libraries(bench_sampler PRIVATE hbcore)
