# Spec-derived cases (testdata/spec/, written by tools/spec_cases/*.py with
# numpy-computed expected outputs) for operators and opsets newer than the
# Debian ONNX 1.12 suite: one ctest test running them all, with the ONNX
# backend runner's tolerances.
file(GLOB ONR_SPEC_CASES LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/testdata/spec/*)
set(ONR_SPEC_DIRS "")
foreach(case ${ONR_SPEC_CASES})
  if(EXISTS ${case}/model.onnx)
    list(APPEND ONR_SPEC_DIRS ${case})
  endif()
endforeach()
if(ONR_SPEC_DIRS)
  add_test(NAME spec_cases COMMAND onnx-run test ${ONR_SPEC_DIRS})
endif()
