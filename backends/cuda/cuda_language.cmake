# cuda_language.cmake - decides whether the CUDA backend is built (HB_CUDA = AUTO | ON | OFF) and
# enables the CUDA language at the top level (included from the top-level CMakeLists.txt: the
# language must be enabled there, since hbcore links the objects when HB_BACKEND_DL=OFF).
# Sets HB_WITH_CUDA.
set(HB_WITH_CUDA OFF)
if(NOT HB_CUDA STREQUAL "OFF")
  # A default CUDA install is not on PATH: look at /usr/local/cuda unless told otherwise.
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)
  endif()
  # Never "native" (CI has no GPU), never the compiler's default: the architectures we ship.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES ${HB_CUDA_ARCHS})
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit QUIET)
    if(TARGET CUDA::cublasLt)
      set(HB_WITH_CUDA ON)
    elseif(HB_CUDA STREQUAL "ON")
      message(FATAL_ERROR "HB_CUDA=ON: nvcc works but cuBLASLt (CUDA::cublasLt) was not found")
    else()
      message(STATUS "CUDA backend: not built (cuBLASLt not found)")
    endif()
  elseif(HB_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HB_CUDA=ON but no working CUDA compiler (set CUDACXX or CMAKE_CUDA_COMPILER)")
  else()
    message(STATUS "CUDA backend: not built (no nvcc found; HB_CUDA=AUTO)")
  endif()
endif()
