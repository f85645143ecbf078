# package.cmake: the installable library. libfusejit.a and libfusejit.so are
# built from the object files of the stage libraries (frontend, ir, lower, jit,
# runtime); the shared library exports only the fuse_* API (everything is compiled
# with hidden visibility, and fusejit.h marks its functions visible). `cmake --install`
# puts fusejit.h, both libraries, the tools and fusejit.pc (pkg-config) under the
# prefix. The names are not libfuse/fuse.h/fuse.pc: Debian's libfuse-dev (the FUSE
# filesystem library) installs those, and ours would shadow it.
include(GNUInstallDirs)

set(FUSE_STAGES fuse_support fuse_frontend fuse_ir fuse_lower fuse_dist fuse_jit fuse_io fuse_runtime fuse_api)
set(FUSE_OBJECTS "")
foreach(stage ${FUSE_STAGES})
  list(APPEND FUSE_OBJECTS $<TARGET_OBJECTS:${stage}>)
endforeach()

add_library(fuse_static STATIC ${FUSE_OBJECTS})
set_target_properties(fuse_static PROPERTIES OUTPUT_NAME fusejit
                      ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)

add_library(fuse_shared SHARED ${FUSE_OBJECTS})
target_link_libraries(fuse_shared PRIVATE fuse_llvm PkgConfig::JANSSON PkgConfig::MINIZIP
                      ZLIB::ZLIB OpenMP::OpenMP_C ${M_LIBRARY} ${CMAKE_DL_LIBS})
target_link_options(fuse_shared PRIVATE -Wl,--exclude-libs,ALL)
fuse_llvm_static(fuse_shared) # LLVM inside, hidden: no libLLVM.so to load and relocate
if(NOT FUSE_SANITIZE)
  # with sanitizers the runtime comes from the executable, so it stays undefined here
  target_link_options(fuse_shared PRIVATE -Wl,--no-undefined)
endif()
set_target_properties(fuse_shared PROPERTIES OUTPUT_NAME fusejit
                      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)

install(TARGETS fuse_static fuse_shared
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

# fusejit.pc: a host compiles with `pkg-config --cflags --libs fusejit` (the shared
# library); `--static` adds what libfusejit.a needs. The prefix is found relative to
# fusejit.pc itself, so `cmake --install build --prefix DIR` works for any DIR.
set(FUSE_PC_LLVM_LIBDIR ${LLVM_LIBRARY_DIRS})
file(RELATIVE_PATH FUSE_PC_UP /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
string(REGEX REPLACE "/$" "" FUSE_PC_UP "${FUSE_PC_UP}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/fusejit.pc.in ${CMAKE_BINARY_DIR}/fusejit.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/fusejit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The embedding example, built from an installed copy of the build tree.
if(BUILD_TESTING)
  set(FUSE_EXAMPLE_FLAGS "-O1 -Wall -Wextra -Werror")
  if(FUSE_SANITIZE)
    string(APPEND FUSE_EXAMPLE_FLAGS " -fsanitize=address,undefined -fno-sanitize=function")
  endif()
  add_test(NAME embed_example
           COMMAND sh ${CMAKE_SOURCE_DIR}/examples/embed/check-installed.sh
                   ${CMAKE_COMMAND} ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR}/examples/embed
                   ${CMAKE_C_COMPILER} "${FUSE_EXAMPLE_FLAGS}")
  # the example's code cache stays in the build tree, never in ~/.cache
  set_tests_properties(embed_example PROPERTIES TIMEOUT 300 ENVIRONMENT
    "FUSE_JIT_CACHE_DIR=${CMAKE_BINARY_DIR}/test/fuse-jit-cache")
endif()
