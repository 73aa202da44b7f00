# The ONNX 1.12 backend test suite (Debian libonnx-testdata), one ctest test
# per part, checked against tests/conformance/xfail.txt.
set(ONR_ONNX_TESTDATA /usr/share/libonnx-testdata/data CACHE PATH "ONNX backend test data")
foreach(part node pytorch-converted pytorch-operator simple)
  add_test(NAME conformance_${part}
    COMMAND ${CMAKE_SOURCE_DIR}/tools/conformance-check $<TARGET_FILE:onnx-run>
            ${ONR_ONNX_TESTDATA}/${part} ${CMAKE_SOURCE_DIR}/tests/conformance/xfail.txt ${part})
endforeach()
