# libFuzzer harnesses (tests/fuzz/fuzz_<what>.c, each defining
# LLVMFuzzerTestOneInput). Every build makes replay_<what> (the harness with
# tests/fuzz/replay.c as main) and the test fuzz_regress_<what>, which feeds
# it every file of tests/fuzz/regress/<what>/ (the findings of past fuzzing,
# kept fixed). With ONR_FUZZ=ON (clang) also fuzz_<what>, the libFuzzer
# binary, and the test fuzz_smoke: a short fixed-seed run of each harness
# on the seed corpus tests/fuzz/make-corpus builds from testdata/.
file(GLOB ONR_FUZZ_HARNESSES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_*.c)
set(ONR_FUZZ_TARGETS "")
foreach(h ${ONR_FUZZ_HARNESSES})
  get_filename_component(name ${h} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" what ${name})
  add_executable(replay_${what} ${h} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay.c)
  target_include_directories(replay_${what} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_BINARY_DIR}/proto)
  target_link_libraries(replay_${what} PRIVATE onnxrun)
  add_test(NAME fuzz_regress_${what}
    COMMAND replay_${what} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/regress/${what})
  if(ONR_FUZZ)
    add_executable(fuzz_${what} ${h})
    target_include_directories(fuzz_${what} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_BINARY_DIR}/proto)
    target_compile_options(fuzz_${what} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${what} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${what} PRIVATE onnxrun)
    list(APPEND ONR_FUZZ_TARGETS fuzz_${what})
  endif()
endforeach()
if(ONR_FUZZ)
  add_test(NAME fuzz_smoke
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/smoke ${CMAKE_CURRENT_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(fuzz_smoke PROPERTIES TIMEOUT 300)
endif()
