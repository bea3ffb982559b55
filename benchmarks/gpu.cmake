# GPU benchmark (KS 2D training/inference samples/s, GPU vs CPU backend);
# without a GPU it benchmarks the CPU backend and says so.
add_executable(bench_gpu ${CMAKE_CURRENT_LIST_DIR}/gpu/bench_gpu.c)
target_link_libraries(bench_gpu PRIVATE mnnh_core)
