# Helpers shared by every CMakeLists.txt of the project.

# Adds every immediate subdirectory of the current source dir that has a
# CMakeLists.txt, in sorted order, so components can be added independently.
function(det_add_subdirectories)
  file(GLOB children RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*/CMakeLists.txt)
  list(SORT children)
  foreach(child ${children})
    get_filename_component(dir ${child} DIRECTORY)
    add_subdirectory(${dir})
  endforeach()
endfunction()

# det_library(NAME SOURCES a.cc b.cc DEPS lib1 lib2)
# A static library of our own code, warnings on, includes from the repo root.
function(det_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  # Installed libraries (cmake/DetInstall.cmake) find headers under include/.
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}> $<INSTALL_INTERFACE:include>)
  target_compile_options(${name} PRIVATE ${DET_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# det_binary(NAME SOURCES main.cc DEPS lib1)
function(det_binary name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE ${DET_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                           ${PROJECT_BINARY_DIR}/bin)
endfunction()

# det_test(NAME LABEL unit|integration SOURCES t.cc DEPS lib1 [TIMEOUT s])
# A GoogleTest binary registered with CTest under the given label.
# Tests find binaries in ${PROJECT_BINARY_DIR}/bin (DET_BIN_DIR) and data in
# DET_TEST_DATA_DIR (set by scripts/run-tests.sh; tests that need CIFAR-10
# skip with a message when it is unset).
function(det_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE ${DET_WARNINGS})
  target_compile_definitions(${name} PRIVATE
    DET_BIN_DIR="${PROJECT_BINARY_DIR}/bin"
    DET_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock
                                        GTest::gtest_main)
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()
