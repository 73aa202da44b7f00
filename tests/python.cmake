# The Python package's tests (tests/python/, pytest): python_session (the
# bundled models vs their expected outputs and the CLI's, errors, no-copy,
# threads) and python_dask (a 2-worker LocalCluster). Registered when the
# package is built and pytest (and, for python_dask, Dask's distributed) can
# be imported; tools/deps python installs them.
#
# Sanitizer builds: libonnxrun.so is built with ASan, and the ASan runtime
# must be the first library of the process, which python3 is not built
# with: the tests run with LD_PRELOAD=libasan.so. Leak detection is off
# there (the interpreter keeps its objects at exit, which LeakSanitizer
# reports by the thousand); the C tests check leaks, and the extension's
# ownership of outputs is checked by test_session.py through the capsules.
if(ONR_PYTHON)
  execute_process(COMMAND ${Python3_EXECUTABLE} -c "import pytest"
    RESULT_VARIABLE _onr_no_pytest OUTPUT_QUIET ERROR_QUIET)
  execute_process(COMMAND ${Python3_EXECUTABLE} -c "import distributed"
    RESULT_VARIABLE _onr_no_dask OUTPUT_QUIET ERROR_QUIET)
  set(_onr_py_env "PYTHONPATH=${CMAKE_BINARY_DIR}/python" "ONR_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    "ONR_CLI=$<TARGET_FILE:onnx-run>" "PYTHONDONTWRITEBYTECODE=1")
  if(ONR_SANITIZE)
    list(APPEND _onr_py_env "LD_PRELOAD=${ONR_ASAN_LIB}"
      "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1" "UBSAN_OPTIONS=print_stacktrace=1")
  endif()
  set(_onr_pytest ${Python3_EXECUTABLE} -m pytest -q -p no:cacheprovider)
  if(_onr_no_pytest)
    message(WARNING "pytest is missing: the Python tests are not registered (tools/deps python)")
  else()
    add_test(NAME python_session COMMAND ${_onr_pytest} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_session.py)
    set_tests_properties(python_session PROPERTIES ENVIRONMENT "${_onr_py_env}" TIMEOUT 300)
    if(_onr_no_dask)
      message(WARNING "Dask's distributed is missing: python_dask is not registered (tools/deps python)")
    else()
      add_test(NAME python_dask COMMAND ${_onr_pytest} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_dask.py)
      set_tests_properties(python_dask PROPERTIES ENVIRONMENT "${_onr_py_env}" TIMEOUT 300
        PROCESSORS 2)
    endif()
  endif()
endif()
