# What `cmake --install` puts where, in three components, and the Debian packages `make deb` builds
# from them with CPack (docs/LIBRARY.md):
#   runtime  libm3vit.so.<major>: the inference runtime, no libtorch              -> libm3vit0
#   dev      headers, libm3vit.a, the .so link, CMake package, pkg-config file      -> libm3vit-dev
#   tools    the `m3vit` command line (training, export, infer, run, serve, hw): libtorch -> m3vit-tools
#   python   the module `import m3vit` over libm3vit (python/, docs/PYTHON.md)        -> python3-m3vit
include(CMakePackageConfigHelpers)
set(M3VIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/m3vit)

install(TARGETS m3vit_lib_shared EXPORT m3vitTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS m3vit_lib_static EXPORT m3vitTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(FILES ${CMAKE_SOURCE_DIR}/include/m3vit/m3vit.h ${CMAKE_SOURCE_DIR}/include/m3vit/m3vit.hpp
              ${CMAKE_BINARY_DIR}/include/m3vit/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/m3vit COMPONENT dev)
install(EXPORT m3vitTargets NAMESPACE m3vit:: DESTINATION ${M3VIT_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/m3vitConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/m3vitConfig.cmake INSTALL_DESTINATION ${M3VIT_CMAKE_DIR})
# 0.x: a minor version may change the API (docs/LIBRARY.md "ABI"), so only the same minor matches.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/m3vitConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/m3vitConfig.cmake ${CMAKE_BINARY_DIR}/m3vitConfigVersion.cmake
        DESTINATION ${M3VIT_CMAKE_DIR} COMPONENT dev)
file(RELATIVE_PATH M3VIT_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
configure_file(${CMAKE_SOURCE_DIR}/cmake/m3vit.pc.in ${CMAKE_BINARY_DIR}/m3vit.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/m3vit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

install(TARGETS m3vit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
# The libtorch subcommands' program, which `m3vit` runs for them (cli/torch_companion.h).
if(TARGET m3vit-torch)
  install(TARGETS m3vit-torch RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/m3vit COMPONENT tools)
endif()

# Debian packages: one per component; dpkg-shlibdeps fills in the Debian libraries each needs.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME m3vit)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "m3vit developers <m3vit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "M3ViT mixture-of-experts vision transformer for multi-task dense prediction")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_COMPONENTS_ALL runtime dev tools python)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libm3vit0)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_GENERATE_SHLIBS ON)  # the shlibs file and the ldconfig trigger
# (CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY first and indents each line of these itself.)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "The inference runtime library (oneDNN, no libtorch): runs one task of an
exported M3ViT model on the CPU, the backbone with that task's routers and its
head, experts resident or streamed from the model file.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libm3vit-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The static archive needs the libraries the shared one links (their -dev packages: .so links, headers).
# (An explicit Depends replaces CPack's component dependency, so libm3vit0 is named here.)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libm3vit0 (= ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}), libdnnl-dev, libyaml-cpp-dev, libstb-dev, pkg-config")
set(CPACK_COMPONENT_DEV_DESCRIPTION "Development files of the inference runtime: C and C++ headers, the static
library, the CMake package (find_package(m3vit), m3vit::runtime) and the
pkg-config file.")
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME m3vit-tools)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "The m3vit command line: training, evaluation, export, inference (libtorch
and the runtime), routing traces and the FPGA model. m3vit run and m3vit serve
load no libtorch; the other subcommands run in m3vit-torch, which links it.")
set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME python3-m3vit)
set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION python)
# dpkg-shlibdeps cannot see libm3vit.so.0 (another component's staging folder): Depends by hand.
set(CPACK_DEBIAN_PYTHON_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS
    "libm3vit0 (= ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}), python3 (>= 3.11), python3 (<< 3.12), python3-numpy, libc6, libstdc++6, libgcc-s1")
set(CPACK_COMPONENT_PYTHON_DESCRIPTION "The Python module (import m3vit) over the inference runtime: numpy arrays
in and out, no libtorch.")
include(CPack)
