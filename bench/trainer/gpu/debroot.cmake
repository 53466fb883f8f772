# Included after project() by bench/trainer/gpu/run.sh
# (-DCMAKE_PROJECT_INCLUDE=...) when building against Debian packages
# unpacked into DET_DEBROOT rather than installed. Debian's libre2-dev has no
# CMake config, so gRPC's Findre2 would fall back on pkg-config, whose re2.pc
# names /usr/include and /usr/lib (absent there): define the target from the
# unpacked tree instead (Findre2 keeps an existing re2::re2).
if(NOT DET_DEBROOT)
  message(FATAL_ERROR "debroot.cmake: set DET_DEBROOT")
endif()
set(_det_libdir "${DET_DEBROOT}/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}")
if(NOT CMAKE_LIBRARY_ARCHITECTURE)
  set(_det_libdir "${DET_DEBROOT}/usr/lib/x86_64-linux-gnu")
endif()
if(NOT EXISTS "${_det_libdir}/libre2.so")
  message(FATAL_ERROR "debroot.cmake: no ${_det_libdir}/libre2.so")
endif()
add_library(re2::re2 SHARED IMPORTED GLOBAL)
set_target_properties(re2::re2 PROPERTIES
  IMPORTED_LOCATION "${_det_libdir}/libre2.so"
  INTERFACE_INCLUDE_DIRECTORIES "${DET_DEBROOT}/usr/include")
