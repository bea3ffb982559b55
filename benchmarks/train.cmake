# One training step split into io / compute / allreduce (+ checkpoint write),
# issue 5: benchmarks/bench_step.c, run by benchmarks/bench_step.sh at 1 and 2
# ranks. Not a test.
add_executable(bench_step ${CMAKE_CURRENT_LIST_DIR}/bench_step.c)
target_link_libraries(bench_step PRIVATE mnnh_mpi)
