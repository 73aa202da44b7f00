# tools/ab-lib (two builds' libonnxrun.so in one process, runs alternating):
# an A/A run of this build's shared library on the bundled tiny ResNet-18,
# which must print a ratio per session pair and a positive median. Not a
# bound on the ratio: runs of 0.12 ms beside the other tests (ctest -j2)
# once gave a median outside 0.5 .. 2 for the same code. Sanitized builds
# are skipped: their libraries need the sanitizer's runtime loaded first.
if(NOT ONR_SANITIZE AND NOT ONR_TSAN)
  add_test(NAME tool_ab_lib
    COMMAND sh -c "out=$(\"$1\" \"$2\" \"$2\" \"$3\" 2 4 2) && echo \"$out\" &&
                   [ $(echo \"$out\" | grep -c '^pair ') -eq 2 ] &&
                   r=$(echo \"$out\" | sed -n 's/^B \\/ A: median \\([0-9.]*\\) over 2 session pairs.*/\\1/p') &&
                   awk -v r=\"$r\" 'BEGIN { exit !(r > 0) }'"
            sh ${CMAKE_SOURCE_DIR}/tools/ab-lib $<TARGET_FILE:onnxrun_shared>
            ${CMAKE_SOURCE_DIR}/testdata/tiny_resnet18)
endif()
