# Tests of the distributed training service (mpi/comm, shard, train,
# checkpoint, validate, signals; `mnnh train` / `mnnh validate`).
mnnh_mpi_test(test_train_mpi "1;2;4" ${CMAKE_CURRENT_LIST_DIR}/test_train_mpi.c)
foreach(np 1 2 4)
  set_tests_properties(test_train_mpi_np${np} PROPERTIES TIMEOUT 60 LABELS "mpi;train")
endforeach()
