# Slurm tests (label slurm): a real single-node Slurm (jobs/localcluster) started
# once for all of them (fixture slurm_cluster) and stopped at the end, with the
# real job scripts of jobs/ submitted by sbatch. They need root (slurmd, munged)
# and the Debian packages slurmctld slurmd slurm-client munge (start.sh installs
# them with apt-get when missing). Run them alone with `ctest -L slurm`.
# They share the one cluster, so they run one at a time (RESOURCE_LOCK).
set(MNNH_SLURM_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/slurm)
set(MNNH_SLURM_WORK ${CMAKE_CURRENT_BINARY_DIR}/slurm-work)
set(MNNH_SLURM_ENV "MNNH_BIN=$<TARGET_FILE:mnnh>;MNNH_TEST_WORK=${MNNH_SLURM_WORK}")

add_executable(mnnh_mpi_hello ${MNNH_SLURM_TESTS}/mpi_hello.c)
target_link_libraries(mnnh_mpi_hello PRIVATE MPI::MPI_C)

add_test(NAME slurm_cluster_start COMMAND ${CMAKE_SOURCE_DIR}/jobs/localcluster/start.sh)
set_tests_properties(slurm_cluster_start PROPERTIES FIXTURES_SETUP slurm_cluster)
add_test(NAME slurm_cluster_stop COMMAND ${MNNH_SLURM_TESTS}/stop_test.sh)
set_tests_properties(slurm_cluster_stop PROPERTIES FIXTURES_CLEANUP slurm_cluster)

add_test(NAME slurm_mpi_hello COMMAND ${MNNH_SLURM_TESTS}/cluster_test.sh $<TARGET_FILE:mnnh_mpi_hello>)
set_tests_properties(slurm_mpi_hello PROPERTIES FIXTURES_REQUIRED slurm_cluster TIMEOUT 90)

set_tests_properties(slurm_cluster_start slurm_cluster_stop slurm_mpi_hello PROPERTIES
  LABELS slurm RESOURCE_LOCK slurm_cluster ENVIRONMENT "${MNNH_SLURM_ENV}")

# generate -> train -> validate; leaves the datasets for the tests below (slurm_data)
add_test(NAME slurm_e2e COMMAND ${MNNH_SLURM_TESTS}/e2e_test.sh)
set_tests_properties(slurm_e2e PROPERTIES FIXTURES_REQUIRED slurm_cluster FIXTURES_SETUP slurm_data TIMEOUT 300)
add_test(NAME slurm_preempt COMMAND ${MNNH_SLURM_TESTS}/preempt_test.sh)
add_test(NAME slurm_bad_config COMMAND ${MNNH_SLURM_TESTS}/badconfig_test.sh)
add_test(NAME slurm_scaling COMMAND ${MNNH_SLURM_TESTS}/scaling_test.sh)
set_tests_properties(slurm_preempt slurm_bad_config slurm_scaling PROPERTIES
  FIXTURES_REQUIRED "slurm_cluster;slurm_data" TIMEOUT 300)
set_tests_properties(slurm_e2e slurm_preempt slurm_bad_config slurm_scaling PROPERTIES
  LABELS slurm RESOURCE_LOCK slurm_cluster ENVIRONMENT "${MNNH_SLURM_ENV}")
