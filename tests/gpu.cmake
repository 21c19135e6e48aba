# GPU backends (issue 5; backends/GPU.md).
#   unit: the one-source rule (every CUDA name has a HIP alias), the peaks table, module loading
#         with fake modules, `hetbench verify` on the CPU against itself, `list backends`, and
#         the kernels themselves on a CPU emulator (test_gpu_emu)
#   gpu:  op by op against the CPU on an available GPU backend; they skip (exit 77, with the
#         reason) on a machine without one
add_test(NAME test_hip_aliases COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_hip_aliases.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(test_hip_aliases PROPERTIES LABELS "unit")

hb_test(test_peaks SOURCES test_peaks.c LABELS "unit")

add_test(NAME test_verify_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_verify_cli.sh $<TARGET_FILE:hetbench>)
set_tests_properties(test_verify_cli PROPERTIES LABELS "unit" TIMEOUT 300)

add_test(NAME test_list_backends COMMAND hetbench list backends)
set_tests_properties(test_list_backends PROPERTIES LABELS "unit"
  PASS_REGULAR_EXPRESSION "cuda +(available|unavailable).*hip +(available|unavailable)")

if(HB_BACKEND_DL)
  # fake modules standing in for libhetbench-cuda.so (fake_backend_module.c)
  add_library(hb_fake_vendor SHARED fake_vendor.c)
  set_target_properties(hb_fake_vendor PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fake-vendor)
  foreach(kind ok badver novendor)
    add_library(fake_cuda_${kind} MODULE fake_backend_module.c)
    target_include_directories(fake_cuda_${kind} PRIVATE ${PROJECT_SOURCE_DIR})
    set_target_properties(fake_cuda_${kind} PROPERTIES OUTPUT_NAME hetbench-cuda PREFIX lib
      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fakemod-${kind} C_VISIBILITY_PRESET hidden)
  endforeach()
  target_compile_definitions(fake_cuda_badver PRIVATE FAKE_API_VERSION=999)
  target_compile_definitions(fake_cuda_novendor PRIVATE FAKE_NEEDS_VENDOR)
  target_link_libraries(fake_cuda_novendor PRIVATE hb_fake_vendor)
  # no rpath: at run time the "vendor runtime" is missing, as on a node of the other vendor
  set_target_properties(fake_cuda_novendor PROPERTIES SKIP_BUILD_RPATH ON)
  hb_test(test_backend_modules SOURCES test_backend_modules.c LABELS "unit"
          ARGS ${CMAKE_CURRENT_BINARY_DIR})
  add_dependencies(test_backend_modules fake_cuda_ok fake_cuda_badver fake_cuda_novendor)
endif()

# the GPU kernels executed on the CPU (tests/gpu_emu/cuda.h): every op through `verify`, as a
# warp-32 H100-shaped device and a wave-64 AMD-shaped one; ~3-4 min per device on a loaded
# 2-core machine (the MoE/MLA rows and models included), no GPU needed
find_program(HB_PERL perl)
find_program(HB_CXX NAMES c++ g++ clang++)
if(HB_BACKEND_DL AND HB_PERL AND HB_CXX)
  add_test(NAME test_gpu_emu COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_gpu_emu.sh ${PROJECT_SOURCE_DIR}
           ${CMAKE_CURRENT_BINARY_DIR} $<TARGET_FILE:hetbench> ${HB_CXX} $<TARGET_FILE:test_serve>)
  set_tests_properties(test_gpu_emu PROPERTIES LABELS "unit;emu" TIMEOUT 1500)
endif()

hb_test(test_gpu_ops SOURCES test_gpu_ops.c LABELS "gpu")
set_tests_properties(test_gpu_ops PROPERTIES TIMEOUT 900)
add_test(NAME test_gpu_verify COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_gpu_verify.sh $<TARGET_FILE:hetbench>)
set_tests_properties(test_gpu_verify PROPERTIES LABELS "gpu" SKIP_RETURN_CODE 77 TIMEOUT 900)

# the direct cuBLASLt yardstick of scripts/bench-gpu.sh (a program that prints figures, not a test)
if(HB_WITH_CUDA)
  add_executable(bench_cublaslt bench_cublaslt.cu)
  set_property(TARGET bench_cublaslt PROPERTY COMPILE_OPTIONS "") # the C flags are not nvcc's
  target_compile_options(bench_cublaslt PRIVATE -Xcompiler=-Wall,-Wextra)
  set_target_properties(bench_cublaslt PROPERTIES CUDA_STANDARD 17 CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  target_link_libraries(bench_cublaslt PRIVATE CUDA::cublasLt)
endif()
