# The Python package onnxrun: python/onnxrun/*.py and the C extension
# onnxrun._onnxrun (python/_onnxrun.c, over the public C API and NumPy's C
# API, linked to libonnxrun.so). The build tree gets a ready package in
# build/python/onnxrun/, so `PYTHONPATH=build/python python3 -c "import
# onnxrun"` works; `cmake --install` puts it under
# P/${ONR_PYTHON_INSTALL_DIR}/onnxrun/.
#
# The interpreter is Debian's /usr/bin/python3 (the one python3-numpy and
# python3-dev belong to) unless -DPython3_EXECUTABLE names another: a
# python3 first on PATH (pyenv, a venv) often lacks NumPy.
if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
  set(Python3_EXECUTABLE /usr/bin/python3)
endif()
find_package(Python3 COMPONENTS Interpreter Development.Module NumPy)
set(_onr_py_default OFF)
if(Python3_FOUND AND Python3_Development.Module_FOUND AND Python3_NumPy_FOUND)
  set(_onr_py_default ON)
endif()
option(ONR_PYTHON "Build the Python package (needs python3-dev and python3-numpy)" ${_onr_py_default})
set(ONR_PYTHON_INSTALL_DIR lib/python3/dist-packages CACHE STRING
  "Where cmake --install puts the Python package, relative to the prefix")

if(ONR_PYTHON)
  if(NOT _onr_py_default)
    message(FATAL_ERROR "ONR_PYTHON is ON but Python 3 development files or NumPy were not found"
      " (Debian: tools/deps python)")
  endif()
  set(ONR_PYTHON_DIR ${CMAKE_BINARY_DIR}/python)
  Python3_add_library(onnxrun_python MODULE WITH_SOABI ${CMAKE_CURRENT_LIST_DIR}/_onnxrun.c)
  target_link_libraries(onnxrun_python PRIVATE onnxrun_shared Python3::NumPy)
  target_link_options(onnxrun_python PRIVATE ${ONR_SAN_SHARED_LINK})
  file(RELATIVE_PATH _onr_py_rpath /${ONR_PYTHON_INSTALL_DIR}/onnxrun /${CMAKE_INSTALL_LIBDIR})
  set_target_properties(onnxrun_python PROPERTIES OUTPUT_NAME _onnxrun
    LIBRARY_OUTPUT_DIRECTORY ${ONR_PYTHON_DIR}/onnxrun
    C_VISIBILITY_PRESET hidden
    INSTALL_RPATH "$ORIGIN/${_onr_py_rpath}")
  # onnxrun._spin: the spin count measured before libgomp loads (python/_spin.c)
  Python3_add_library(onnxrun_python_spin MODULE WITH_SOABI ${CMAKE_CURRENT_LIST_DIR}/_spin.c)
  target_include_directories(onnxrun_python_spin PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
  target_link_options(onnxrun_python_spin PRIVATE ${ONR_SAN_SHARED_LINK})
  set_target_properties(onnxrun_python_spin PROPERTIES OUTPUT_NAME _spin
    LIBRARY_OUTPUT_DIRECTORY ${ONR_PYTHON_DIR}/onnxrun
    C_VISIBILITY_PRESET hidden)
  add_dependencies(onnxrun_python onnxrun_python_spin)
  install(TARGETS onnxrun_python_spin LIBRARY DESTINATION ${ONR_PYTHON_INSTALL_DIR}/onnxrun)
  # the pure-Python files, copied beside the extension at build time
  file(GLOB _onr_py_files CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/onnxrun/*.py)
  set(_onr_py_out)
  foreach(f ${_onr_py_files})
    get_filename_component(n ${f} NAME)
    add_custom_command(OUTPUT ${ONR_PYTHON_DIR}/onnxrun/${n}
      COMMAND ${CMAKE_COMMAND} -E copy_if_different ${f} ${ONR_PYTHON_DIR}/onnxrun/${n}
      DEPENDS ${f})
    list(APPEND _onr_py_out ${ONR_PYTHON_DIR}/onnxrun/${n})
  endforeach()
  add_custom_target(onnxrun_python_files ALL DEPENDS ${_onr_py_out})
  add_dependencies(onnxrun_python onnxrun_python_files)
  install(TARGETS onnxrun_python LIBRARY DESTINATION ${ONR_PYTHON_INSTALL_DIR}/onnxrun)
  install(FILES ${_onr_py_files} DESTINATION ${ONR_PYTHON_INSTALL_DIR}/onnxrun)
endif()
