# CUDA backend tests (src/cuda/): every GPU op against the CPU reference on the
# KS 1D / KS 2D layer shapes, a training step GPU vs CPU, bit-exact resume.
# Built in every configuration; without a GPU (or without CUDA) each GPU test
# is skipped with the reason printed and the program exits 77, which ctest
# reports as "Skipped" (the check that --backend cuda fails clearly still runs).
mnnh_unit_test(test_cuda ${CMAKE_CURRENT_LIST_DIR}/test_cuda.c)
set_tests_properties(test_cuda PROPERTIES SKIP_RETURN_CODE 77 LABELS "unit;cuda" TIMEOUT 900)
