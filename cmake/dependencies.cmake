# Finds the libraries fuse-jit builds on. cmake/install-deps.sh installs them.
find_package(LLVM 19.1 CONFIG REQUIRED HINTS /usr/lib/llvm-19/lib/cmake/llvm)
message(STATUS "LLVM ${LLVM_PACKAGE_VERSION} from ${LLVM_DIR}")
add_library(fuse_llvm INTERFACE)
target_include_directories(fuse_llvm SYSTEM INTERFACE ${LLVM_INCLUDE_DIRS})
target_link_directories(fuse_llvm INTERFACE ${LLVM_LIBRARY_DIRS})
# Process start: loading and relocating libLLVM.so and its dependencies (z3, ICU,
# libxml2...) made most of a cached run's 30 ms. A target whose property
# FUSE_LLVM_STATIC is set (fuse_llvm_static(): fuse-jit, fuse-bench,
# libfusejit.so) links LLVM's static component libraries instead, only the
# components used and only the sections reached (--gc-sections), through lld when
# it is there (GNU ld takes about 2.5 times longer). Every other executable (the
# test suites) keeps the shared libLLVM, which links in a moment.
# FUSE_LLVM_STATIC=OFF: shared everywhere. bench/RESULTS.md has the numbers.
option(FUSE_LLVM_STATIC "Link LLVM statically into fuse-jit, fuse-bench and libfusejit.so" ON)
# LLVMSupport's link interface names zstd's imported target, which LLVMConfig
# does not define here.
if(NOT TARGET zstd::libzstd_shared)
  find_library(FUSE_ZSTD_LIBRARY NAMES zstd libzstd.so.1 REQUIRED) # libzstd1: no -dev needed
  add_library(zstd::libzstd_shared UNKNOWN IMPORTED)
  set_target_properties(zstd::libzstd_shared PROPERTIES IMPORTED_LOCATION ${FUSE_ZSTD_LIBRARY})
endif()
llvm_map_components_to_libnames(FUSE_LLVM_COMPONENT_LIBS
  orcjit passes x86codegen x86asmparser x86desc x86info)
set(fuse_llvm_is_static "$<BOOL:$<TARGET_PROPERTY:FUSE_LLVM_STATIC>>")
target_link_libraries(fuse_llvm INTERFACE
  "$<IF:${fuse_llvm_is_static},${FUSE_LLVM_COMPONENT_LIBS};stdc++,LLVM>")
find_program(FUSE_LLD NAMES ld.lld-19 ld.lld)
function(fuse_llvm_static target)
  if(NOT FUSE_LLVM_STATIC)
    return()
  endif()
  set_target_properties(${target} PROPERTIES FUSE_LLVM_STATIC ON)
  target_link_options(${target} PRIVATE -Wl,--gc-sections -Wl,--as-needed)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    # not position-independent: LLVM's tables need no relocation at start
    # (120,000 relative relocations and 300 copied pages less)
    target_link_options(${target} PRIVATE -no-pie)
  endif()
  if(FUSE_LLD AND CMAKE_C_COMPILER_ID MATCHES "Clang")
    target_link_options(${target} PRIVATE --ld-path=${FUSE_LLD})
  endif()
endfunction()

find_package(ZLIB REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS C)
find_package(PkgConfig REQUIRED)
# libzip: its headers only; runtime/io/zip_dl.c loads the library with dlopen on
# the first .npz read (test_runtime and test_cli link it to build archives themselves)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)
# minizip (zlib's ZIP writer) writes .npz archives: linked, it needs only zlib
pkg_check_modules(MINIZIP REQUIRED IMPORTED_TARGET minizip)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(CHECK REQUIRED IMPORTED_TARGET check)
pkg_check_modules(LIBEDIT REQUIRED IMPORTED_TARGET libedit) # the REPL (tools/repl.c)
find_library(M_LIBRARY m)
# tucker: LAPACK's SVD through LAPACKE, for tucker_dense (runtime/tucker.c, which
# loads it with dlopen on first use; test_tucker links it for its reference SVD)
find_library(LAPACKE_LIBRARY lapacke REQUIRED)
