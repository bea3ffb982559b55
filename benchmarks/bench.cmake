# Model throughput benchmark (issue 3 / 7): see benchmarks/bench_model.c and
# docs/performance.md. Not a test: run it by hand or through benchmarks/peer/.
add_executable(bench_model ${CMAKE_CURRENT_LIST_DIR}/bench_model.c)
target_link_libraries(bench_model PRIVATE mnnh_core)
