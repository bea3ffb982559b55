# Tests of the distributed training service (mpi/comm, shard, train,
# checkpoint, validate, signals; `mnnh train` / `mnnh validate`).
# The MPI unit test runs at 1, 2 and 4 ranks; the end-to-end shell tests
# (tests/train_*.sh, datasets made with /usr/bin/python3 + h5py) at the rank
# counts given after the script name. All carry the label "train".
mnnh_mpi_test(test_train_mpi "1;2;4" ${CMAKE_CURRENT_LIST_DIR}/test_train_mpi.c)
foreach(np 1 2 4)
  set_tests_properties(test_train_mpi_np${np} PROPERTIES TIMEOUT 60 LABELS "mpi;train")
endforeach()

# mnnh_train_sh(name script args...): bash tests/<script> MNNH MPIEXEC args...
function(mnnh_train_sh name script)
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${script} $<TARGET_FILE:mnnh> ${MPIEXEC_EXECUTABLE} ${ARGN})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${MNNH_TEST_ENV}" TIMEOUT 180
    LABELS "mpi;train" PROCESSORS 2)
endfunction()

mnnh_train_sh(train_resume_np1 train_resume.sh 1 2)
mnnh_train_sh(train_resume_np2 train_resume.sh 2 1)
mnnh_train_sh(train_resume_np4 train_resume.sh 4 2)
mnnh_train_sh(train_signal_np2 train_signal.sh)
mnnh_train_sh(train_faults_np1 train_faults.sh 1)
mnnh_train_sh(train_faults_np2 train_faults.sh 2)
mnnh_train_sh(train_badinput_np4 train_badinput.sh 4)
mnnh_train_sh(train_e2e_np2 train_e2e.sh)
mnnh_train_sh(train_configs_np1 train_configs.sh)
mnnh_train_sh(train_torch_np1 train_torch.sh)
