# hip_language.cmake - decides whether the HIP backend is built (HB_HIP = AUTO | ON | OFF), picks
# the offload architectures the compiler accepts, and enables the HIP language at the top level.
# Sets HB_WITH_HIP and HB_HIP_ARCHS_USED.
#
# Upstream ROCm (/opt/rocm, or ROCM_PATH, or a compiler given by HIPCXX / CMAKE_HIP_COMPILER) is
# CMake's own case: nothing is changed. Debian's packages (hipcc, libamdhip64-dev: ROCm 5.2 with
# clang-15) put things where CMake 3.25's enable_language(HIP) does not look
# (<rocm>/lib/cmake/hip-lang, the device libraries, the include dir), so a ROCm-root shim of
# symbolic links is made in the build tree and the compiler is told where the rest is.
set(HB_WITH_HIP OFF)
set(HB_HIP_ARCHS_USED "")

function(hb_hip_probe compiler flags arch result)
  set(src ${CMAKE_BINARY_DIR}/CMakeFiles/hb_hip_probe.hip)
  file(WRITE ${src} "#include <hip/hip_runtime.h>\n__global__ void k(float *x) { x[threadIdx.x] = warpSize; }\n")
  execute_process(COMMAND ${compiler} -x hip ${flags} --offload-arch=${arch} -c ${src}
                          -o ${CMAKE_BINARY_DIR}/CMakeFiles/hb_hip_probe.o
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(rc EQUAL 0)
    set(${result} ON PARENT_SCOPE)
  else()
    string(REGEX REPLACE "\n.*" "" err "${err}")
    if(err STREQUAL "")
      set(err "cannot run it")
    endif()
    set(${result} OFF PARENT_SCOPE)
    set(HB_HIP_PROBE_ERROR "${err}" PARENT_SCOPE)
  endif()
endfunction()

if(NOT HB_HIP STREQUAL "OFF")
  set(_hb_hip_compiler "")
  set(_hb_hip_flags "")
  set(_hb_rocm "")
  if(DEFINED ENV{ROCM_PATH})
    set(_hb_rocm "$ENV{ROCM_PATH}")
  elseif(EXISTS /opt/rocm/lib/cmake/hip-lang/hip-lang-config.cmake)
    set(_hb_rocm /opt/rocm)
  endif()
  set(_hb_debian_lang /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/hip-lang)
  set(_hb_bitcode /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/amdgcn/bitcode)
  set(_hb_debian OFF)
  if(NOT _hb_rocm AND EXISTS ${_hb_debian_lang}/hip-lang-config.cmake
     AND EXISTS /usr/include/hip/hip_runtime.h AND EXISTS ${_hb_bitcode})
    set(_hb_debian ON)
  endif()
  if(DEFINED CMAKE_HIP_COMPILER)
    set(_hb_hip_compiler ${CMAKE_HIP_COMPILER})
  elseif(DEFINED ENV{HIPCXX})
    set(_hb_hip_compiler $ENV{HIPCXX})
  elseif(_hb_rocm AND EXISTS ${_hb_rocm}/llvm/bin/clang++)
    set(_hb_hip_compiler ${_hb_rocm}/llvm/bin/clang++)
  elseif(_hb_debian)
    find_program(HB_HIP_CLANG NAMES clang++-15 clang++-16 clang++-17 clang++) # what hipcc uses
    if(HB_HIP_CLANG)
      set(_hb_hip_compiler ${HB_HIP_CLANG})
    endif()
  endif()
  if(_hb_hip_compiler AND _hb_debian)
    # Debian: the device libraries, and the shim where CMake looks for hip-lang
    set(_hb_hip_flags --rocm-path=/usr --hip-device-lib-path=${_hb_bitcode})
    set(_hb_shim ${CMAKE_BINARY_DIR}/rocm-shim)
    file(MAKE_DIRECTORY ${_hb_shim}/lib/cmake)
    foreach(link lib/cmake/hip-lang:${_hb_debian_lang} bin:/usr/bin include:/usr/include)
      string(REPLACE ":" ";" pair ${link})
      list(GET pair 0 name)
      list(GET pair 1 target)
      if(NOT EXISTS ${_hb_shim}/${name})
        file(CREATE_LINK ${target} ${_hb_shim}/${name} SYMBOLIC)
      endif()
    endforeach()
  endif()

  if(_hb_hip_compiler)
    # Offload architectures: keep those this compiler accepts (Debian's 5.2 rejects gfx942).
    foreach(arch ${HB_HIP_ARCHS})
      hb_hip_probe("${_hb_hip_compiler}" "${_hb_hip_flags}" ${arch} ok)
      if(ok)
        list(APPEND HB_HIP_ARCHS_USED ${arch})
      else()
        message(STATUS "HIP backend: offload arch ${arch} dropped: ${_hb_hip_compiler} rejects it "
                       "(${HB_HIP_PROBE_ERROR})")
      endif()
    endforeach()
  endif()

  if(HB_HIP_ARCHS_USED)
    set(CMAKE_HIP_COMPILER ${_hb_hip_compiler})
    set(CMAKE_HIP_ARCHITECTURES ${HB_HIP_ARCHS_USED})
    if(_hb_shim)
      set(CMAKE_HIP_COMPILER_ROCM_ROOT ${_hb_shim})
      list(JOIN _hb_hip_flags " " _hb_flags_str)
      set(CMAKE_HIP_FLAGS "${CMAKE_HIP_FLAGS} ${_hb_flags_str}")
      # try_compile (the compiler checks) sees the package path only through the environment
      # (a ':'-separated list there)
      if(DEFINED ENV{CMAKE_PREFIX_PATH} AND NOT "$ENV{CMAKE_PREFIX_PATH}" STREQUAL "")
        set(ENV{CMAKE_PREFIX_PATH} "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake:$ENV{CMAKE_PREFIX_PATH}")
      else()
        set(ENV{CMAKE_PREFIX_PATH} "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake")
      endif()
    endif()
    enable_language(HIP)
    set(HB_WITH_HIP ON)
  elseif(HB_HIP STREQUAL "ON")
    message(FATAL_ERROR "HB_HIP=ON but no HIP compiler accepts any of HB_HIP_ARCHS (${HB_HIP_ARCHS}); "
                        "install hipcc and libamdhip64-dev, or set ROCM_PATH / HIPCXX")
  else()
    message(STATUS "HIP backend: not built (no working HIP compiler; HB_HIP=AUTO)")
  endif()
endif()
