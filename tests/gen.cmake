# Tests of the dataset generator (issue 4): KS and NLSE solvers, the dataset
# file module, `mnnh generate` across 1, 2 and 3 ranks, and the CLI's errors.
mnnh_unit_test(test_ks      ${CMAKE_CURRENT_LIST_DIR}/test_ks.c)
mnnh_unit_test(test_nlse    ${CMAKE_CURRENT_LIST_DIR}/test_nlse.c)
mnnh_unit_test(test_dataset ${CMAKE_CURRENT_LIST_DIR}/test_dataset.c)
mnnh_mpi_test(test_generate_mpi "1;2;3" ${CMAKE_CURRENT_LIST_DIR}/test_generate_mpi.c)
# The real program under mpirun: 1- vs 3-rank files identical (h5diff), exit codes.
add_test(NAME generate_cli COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/generate_cli.sh $<TARGET_FILE:mnnh> ${MPIEXEC_EXECUTABLE})
set_tests_properties(generate_cli PROPERTIES ENVIRONMENT "${MNNH_TEST_ENV}" LABELS "mpi;cli" PROCESSORS 3)
