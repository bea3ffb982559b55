# The model benchmark (benchmarks/bench_model.c) as a smoke test: it runs,
# and its JSON figures are consistent (tests/bench_model.sh). Timings are
# never asserted: they belong to the benchmark, not to a test.
add_test(NAME bench_model_smoke
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/bench_model.sh $<TARGET_FILE:bench_model>)
set_tests_properties(bench_model_smoke PROPERTIES ENVIRONMENT "${MNNH_TEST_ENV}" TIMEOUT 120
  LABELS bench)

# bench_gpu's per-op profile (--op-times), on the cpu backend.
add_test(NAME bench_gpu_op_times
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/bench_gpu_op_times.sh $<TARGET_FILE:bench_gpu>)
set_tests_properties(bench_gpu_op_times PROPERTIES ENVIRONMENT "${MNNH_TEST_ENV}" TIMEOUT 120
  LABELS bench)
