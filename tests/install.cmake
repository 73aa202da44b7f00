# install_check: cmake --install into a temporary prefix, then build and run
# tests/example_embed.c against it with pkg-config and find_package, and
# the installed CLI and Python package (tests/install_check.sh).
set(_onr_inst_env "ONR_BUILD=${CMAKE_BINARY_DIR}" "ONR_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
if(ONR_PYTHON)
  list(APPEND _onr_inst_env "ONR_PYTHON=${Python3_EXECUTABLE}")
endif()
if(ONR_SANITIZE)
  list(APPEND _onr_inst_env "ONR_SAN_CFLAGS=-fsanitize=address,undefined" "ONR_ASAN_LIB=${ONR_ASAN_LIB}")
endif()
add_test(NAME install_check COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install_check.sh)
set_tests_properties(install_check PROPERTIES ENVIRONMENT "${_onr_inst_env}" TIMEOUT 300)
