# Weights from Hugging Face checkpoints (safetensors + config.json) and prompt token files,
# checked against a numpy forward of the same checkpoint; bad files refused before any run.
# ckpt_fp8_probe: compares the e4m3 weights a case holds with the file's bytes (the script runs it).
add_executable(ckpt_fp8_probe ckpt_fp8_probe.c)
target_link_libraries(ckpt_fp8_probe PRIVATE hbcore)
if(HB_H5PY_PYTHON)
  add_test(NAME test_checkpoint COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint.sh $<TARGET_FILE:hetbench>
           ${HB_H5PY_PYTHON} ${CMAKE_SOURCE_DIR} $<TARGET_FILE:ckpt_fp8_probe>)
  set_tests_properties(test_checkpoint PROPERTIES LABELS "unit" TIMEOUT 300)
else()
  message(STATUS "test_checkpoint: no python3 with h5py and numpy, test not added")
endif()
