# CUDA backend tests (src/cuda/): every GPU op against the CPU reference on the
# KS 1D / KS 2D layer shapes, a training step GPU vs CPU, bit-exact resume.
# Built in every configuration; without a GPU (or without CUDA) each GPU test
# is skipped with the reason printed and the program exits 77, which ctest
# reports as "Skipped" (the check that --backend cuda fails clearly still runs).
mnnh_unit_test(test_cuda ${CMAKE_CURRENT_LIST_DIR}/test_cuda.c)
set_tests_properties(test_cuda PROPERTIES SKIP_RETURN_CODE 77 LABELS "unit;cuda" TIMEOUT 900)

# benchmarks/gpu/run.sh builds without CMake on a bare GPU machine, from its own
# list of core sources. Its build step runs here so that the list cannot fall
# behind the core again (session 10 found it without src/parts.c only on the GPU
# machine). Needs nvcc and the Random123 / cmocka headers, as the CUDA build does.
if(MNNH_HAVE_CUDA)
  add_test(NAME gpu_script_build
           COMMAND ${CMAKE_COMMAND} -E env BUILD_ONLY=1 BUILD_DIR=${CMAKE_CURRENT_BINARY_DIR}/gpu_script
                   MNNH_CUDA_ARCH=80 bash ${CMAKE_SOURCE_DIR}/benchmarks/gpu/run.sh)
  set_tests_properties(gpu_script_build PROPERTIES LABELS "build" TIMEOUT 600)
endif()
