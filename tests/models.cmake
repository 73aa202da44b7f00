# End-to-end: every bundled model in testdata/ (exported from PyTorch by
# tools/export_models.py, with PyTorch's outputs) must match within
# rtol 1e-3 / atol 1e-4, with 1 and 2 threads; and the embedding example
# runs on one of them.
file(GLOB ONR_MODEL_CASES LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/testdata/*)
foreach(case ${ONR_MODEL_CASES})
  if(EXISTS ${case}/model.onnx)
    get_filename_component(name ${case} NAME)
    foreach(threads 1 2)
      add_test(NAME model_${name}_t${threads}
        COMMAND onnx-run test ${case} --threads ${threads} --rtol 1e-3 --atol 1e-4)
    endforeach()
  endif()
endforeach()

add_executable(example_embed example_embed.c)
target_link_libraries(example_embed PRIVATE onnxrun)
if(EXISTS ${CMAKE_SOURCE_DIR}/testdata/tiny_bert_op17/model.onnx)
  add_test(NAME example_embed COMMAND example_embed ${CMAKE_SOURCE_DIR}/testdata/tiny_bert_op17/model.onnx 2)
endif()
