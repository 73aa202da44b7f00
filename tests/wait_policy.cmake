# The CLI starts OpenMP with a short bounded spin (GOMP_SPINCOUNT =
# ONR_GOMP_SPINCOUNT, read from include/onnxrun.h into ONR_TEST_SPINCOUNT by
# tests/CMakeLists.txt) unless the user chose a policy (see
# set_wait_policy in tools/onnx-run.c): libgomp's verbose display shows the
# spin count it took; a policy the user set is kept.
# Built against another OpenMP runtime (clang's libomp), the test is skipped.
add_test(NAME cli_wait_policy
  COMMAND sh -c "out=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose \"$1\" info --ops 2>&1) &&
                 { echo \"$out\" | grep -q GOMP_SPINCOUNT || { echo 'not libgomp: skipped'; exit 77; }; } &&
                 echo \"$out\" | grep -q \"GOMP_SPINCOUNT = '${ONR_TEST_SPINCOUNT}'\" &&
                 out=$(env OMP_WAIT_POLICY=passive OMP_DISPLAY_ENV=verbose \"$1\" info --ops 2>&1) &&
                 echo \"$out\" | grep -q \"GOMP_SPINCOUNT = '0'\"" sh $<TARGET_FILE:onnx-run>)
set_tests_properties(cli_wait_policy PROPERTIES SKIP_RETURN_CODE 77)
# The Python package sets the same spin count as the header's (and the CLI's).
add_test(NAME python_wait_policy_matches_header
  COMMAND sh -c "grep -q \"GOMP_SPINCOUNT\\\"\\] = \\\"$1\\\"\" \"$2/python/onnxrun/__init__.py\""
          sh ${ONR_TEST_SPINCOUNT} ${CMAKE_SOURCE_DIR})
