# The CLI starts OpenMP with sleeping workers (OMP_WAIT_POLICY=passive)
# unless the user chose a policy (see set_wait_policy in tools/onnx-run.c).
# libgomp's verbose display shows the spin count it took: 0 when passive.
# Built against another OpenMP runtime (clang's libomp), the test is skipped.
add_test(NAME cli_wait_policy
  COMMAND sh -c "out=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose \"$1\" info --ops 2>&1) &&
                 { echo \"$out\" | grep -q GOMP_SPINCOUNT || { echo 'not libgomp: skipped'; exit 77; }; } &&
                 echo \"$out\" | grep -q \"GOMP_SPINCOUNT = '0'\" &&
                 out=$(env OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose \"$1\" info --ops 2>&1) &&
                 ! echo \"$out\" | grep -q \"GOMP_SPINCOUNT = '0'\"" sh $<TARGET_FILE:onnx-run>)
set_tests_properties(cli_wait_policy PROPERTIES SKIP_RETURN_CODE 77)
