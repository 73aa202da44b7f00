#!/usr/bin/env bash
# install_check.sh - what `cmake --install` gives a user, checked from the
# outside: install the build into a temporary prefix, check the files and
# the shared library's exports (exactly the functions include/onnxrun.h
# declares), build tests/example_embed.c against the installed tree with
# pkg-config and with a small CMake project using find_package(onnxrun)
# (shared and static), run each on a bundled model, run the installed CLI,
# and import the installed Python package and run the model with it.
#
# Environment (set by tests/install.cmake): ONR_BUILD, ONR_SOURCE_DIR,
# ONR_PYTHON (the interpreter, empty when the package is not built),
# ONR_SAN_CFLAGS (the sanitizer flags of a sanitizer build, for the
# programs built here) and ONR_ASAN_LIB (the ASan runtime python3 needs
# preloaded in such a build).
set -euo pipefail
build=${ONR_BUILD:?} src=${ONR_SOURCE_DIR:?}
cflags=${ONR_SAN_CFLAGS:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
P=$tmp/prefix
fail() { echo "install_check: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$P" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install failed"; }
for f in include/onnxrun.h lib/libonnxrun.a lib/libonnxrun.so bin/onnx-run \
         lib/pkgconfig/onnxrun.pc lib/cmake/onnxrun/onnxrunConfig.cmake; do
    [ -e "$P/$f" ] || fail "$f is not installed"
done
soname=$(readelf -d "$P/lib/libonnxrun.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libonnxrun.so.0 ] || fail "soname is '$soname', expected libonnxrun.so.0"

# exports: the header's functions, nothing else
nm -D --defined-only "$P/lib/libonnxrun.so" | awk '$2 ~ /[TDBR]/ {print $3}' | sort -u >"$tmp/exported"
grep -vE '^\s*(/?\*|//)' "$src/include/onnxrun.h" | grep -oE '\bonr_[a-z0-9_]+\s*\(' |
    sed 's/\s*($//' | sort -u >"$tmp/declared"
if ! diff "$tmp/declared" "$tmp/exported" >"$tmp/exports.diff"; then
    cat "$tmp/exports.diff" >&2
    fail "libonnxrun.so exports differ from include/onnxrun.h ('<' declared only, '>' exported only)"
fi

model=$src/testdata/tiny_bert_op17/model.onnx
check_run() { # PROGRAM: runs the embedding example on the bundled model
    "$@" "$model" 2 >"$tmp/run.out" || { cat "$tmp/run.out"; fail "$1 failed"; }
    grep -q "^output last_hidden_state: float32, 512 elements" "$tmp/run.out" ||
        { cat "$tmp/run.out"; fail "$1 printed something unexpected"; }
}

# 1. pkg-config
export PKG_CONFIG_PATH=$P/lib/pkgconfig
# shellcheck disable=SC2046,SC2086
cc $cflags -o "$tmp/embed_pc" "$src/tests/example_embed.c" $(pkg-config --cflags --libs onnxrun) \
    -Wl,-rpath,"$P/lib"
# (grep -q on a pipe could cut ldd off with SIGPIPE, which pipefail reports: read a file)
uses() { ldd "$1" >"$tmp/ldd.out" && grep -q "$2" "$tmp/ldd.out"; }
uses "$tmp/embed_pc" "libonnxrun.so.0 => $P/lib/" || fail "embed_pc does not use the installed libonnxrun.so"
check_run "$tmp/embed_pc"

# 2. find_package(onnxrun): the shared and the static library
mkdir -p "$tmp/proj"
cat >"$tmp/proj/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(embed C)
find_package(onnxrun 0.1 REQUIRED)
add_executable(embed_shared $src/tests/example_embed.c)
target_link_libraries(embed_shared PRIVATE onnxrun::onnxrun)
add_executable(embed_static $src/tests/example_embed.c)
target_link_libraries(embed_static PRIVATE onnxrun::onnxrun_static)
CMAKE
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$cflags" \
    >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "find_package project: configure failed"; }
cmake --build "$tmp/proj/build" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "find_package project: build failed"; }
uses "$tmp/proj/build/embed_shared" "libonnxrun.so.0 => $P/lib/" ||
    fail "embed_shared does not use the installed libonnxrun.so"
if uses "$tmp/proj/build/embed_static" libonnxrun; then fail "embed_static links libonnxrun.so"; fi
check_run "$tmp/proj/build/embed_shared"
check_run "$tmp/proj/build/embed_static"

# 3. the installed CLI
"$P/bin/onnx-run" run "$model" >/dev/null 2>&1 || fail "the installed onnx-run cannot run $model"

# 4. the Python package
if [ -n "${ONR_PYTHON:-}" ]; then
    pkg=$P/lib/python3/dist-packages/onnxrun
    [ -e "$pkg/__init__.py" ] && [ -e "$pkg/dask.py" ] || fail "the Python package is not installed under $pkg"
    (cd "$tmp" && PYTHONPATH=$P/lib/python3/dist-packages LD_PRELOAD=${ONR_ASAN_LIB:-} \
        ASAN_OPTIONS=detect_leaks=0 "$ONR_PYTHON" -c "
import os, sys, numpy as np, onnxrun
assert onnxrun.__file__.startswith('$P/'), onnxrun.__file__
s = onnxrun.Session(sys.argv[1], threads=1)
feed = {i.name: np.ones([d if isinstance(d, int) else 1 for d in i.shape], i.dtype) for i in s.inputs}
y = s.run(None, feed)
assert y[0].shape == (1, 16, 32), y[0].shape
" "$model") || fail "the installed Python package does not run $model"
fi
echo "install_check: ok ($P)"
