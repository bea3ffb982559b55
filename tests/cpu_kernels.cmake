# The cpu backend's fast kernels against the reference (issue 7).
mnnh_unit_test(test_cpu_kernels ${CMAKE_CURRENT_LIST_DIR}/test_cpu_kernels.c)
