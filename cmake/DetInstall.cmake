# `cmake --install build --prefix P` installs:
#   P/bin: det, det-master, det-worker, det-trial (when built), det-fake-trial
#   P/include: the trial client's headers (worker/trial_api/, common/rpc/)
#              and the generated det/v1/*.pb.h they include
#   P/lib: the static libraries behind det::trial (and det::proto, det::rpc)
#   P/lib/cmake/det: detConfig.cmake, so an out-of-tree program does
#                    find_package(det) and links det::trial (gRPC, Protobuf
#                    and Abseil are found for it with find_dependency).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

foreach(bin det det-master det-worker det-trial det-fake-trial)
  if(TARGET ${bin})
    install(TARGETS ${bin} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

set_target_properties(det_trial_api PROPERTIES EXPORT_NAME trial)
set_target_properties(det_proto PROPERTIES EXPORT_NAME proto)
set_target_properties(det_rpc PROPERTIES EXPORT_NAME rpc)
install(TARGETS det_trial_api det_proto det_rpc EXPORT detTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES
  ${PROJECT_SOURCE_DIR}/worker/trial_api/trial_context.h
  ${PROJECT_SOURCE_DIR}/worker/trial_api/remote_trial_context.h
  ${PROJECT_SOURCE_DIR}/worker/trial_api/standalone_trial_context.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/worker/trial_api)
install(FILES
  ${PROJECT_SOURCE_DIR}/common/rpc/status_convert.h
  ${PROJECT_SOURCE_DIR}/common/rpc/states.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/common/rpc)
install(DIRECTORY ${PROJECT_BINARY_DIR}/proto/gen/det
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.pb.h")

install(EXPORT detTargets NAMESPACE det::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/det)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/detConfig.cmake.in
  ${PROJECT_BINARY_DIR}/detConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/det)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/detConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/detConfig.cmake
              ${PROJECT_BINARY_DIR}/detConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/det)
