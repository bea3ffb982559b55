# The core's unit tests (cmocka), written from DESIGN.md and the headers.
mnnh_unit_test(test_layers  ${CMAKE_CURRENT_LIST_DIR}/test_layers.c)
mnnh_unit_test(test_arch    ${CMAKE_CURRENT_LIST_DIR}/test_arch.c)
mnnh_unit_test(test_model   ${CMAKE_CURRENT_LIST_DIR}/test_model.c)
mnnh_unit_test(test_nadam   ${CMAKE_CURRENT_LIST_DIR}/test_nadam.c)
mnnh_unit_test(test_rng     ${CMAKE_CURRENT_LIST_DIR}/test_rng.c)
mnnh_unit_test(test_backend ${CMAKE_CURRENT_LIST_DIR}/test_backend.c)
