# The README's operator table is generated (tools/gen-ops-table) from
# `onnx-run info --ops`; this test fails when it no longer matches the build.
add_test(NAME ops_table
  COMMAND ${CMAKE_SOURCE_DIR}/tools/gen-ops-table --check $<TARGET_FILE:onnx-run>
          ${CMAKE_SOURCE_DIR}/README.md)
