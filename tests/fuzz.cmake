# Mutation tests: the bundled models with damaged bytes (fuzz_bytes) and with
# hostile contents that still parse (fuzz_structured: boundary attributes,
# shape constants, dims, rewired nodes). Every run must end with exit 0, 1
# or 3 and no sanitizer report. Fixed seeds, so a failure replays with
# `tests/fuzz_models.py ONNX_RUN testdata [--structured] --replay SEED:INDEX`.
set(ONR_SYSTEM_PYTHON /usr/bin/python3 CACHE FILEPATH "Debian's python3 (with python3-onnx) for the mutation tests")
add_test(NAME fuzz_bytes
  COMMAND ${ONR_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_models.py $<TARGET_FILE:onnx-run>
          ${CMAKE_SOURCE_DIR}/testdata --cases 400 --seed 1)
add_test(NAME fuzz_structured
  COMMAND ${ONR_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_models.py $<TARGET_FILE:onnx-run>
          ${CMAKE_SOURCE_DIR}/testdata --structured --cases 400 --seed 1)
