# Model file I/O and the first commands (init, info, predict).
#   test_model_io           cmocka: round trip, layout by name, malformed files, predict loop
#   cli_<name>              bash scripts driving the mnnh program (tests/cli_*.sh)
mnnh_unit_test(test_model_io ${CMAKE_CURRENT_LIST_DIR}/test_model_io.c)

# CLI tests need /usr/bin/python3 with h5py (Debian python3-h5py) for the
# datasets they create and the files they check; without it they are skipped.
file(GLOB MNNH_CLI_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/cli_*.sh)
foreach(script IN LISTS MNNH_CLI_TESTS)
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME ${name} COMMAND bash ${script} $<TARGET_FILE:mnnh>)
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${MNNH_TEST_ENV}" LABELS cli SKIP_RETURN_CODE 77)
endforeach()
