# Generator throughput (issue 4): benchmarks/bench_generate.c, run by
# benchmarks/bench_generate.sh on 1 and 2 ranks. Not a test.
add_executable(bench_generate ${CMAKE_CURRENT_LIST_DIR}/bench_generate.c)
target_link_libraries(bench_generate PRIVATE mnnh_mpi)
