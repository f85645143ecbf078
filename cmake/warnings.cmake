# Warnings, set once for every target. CI builds with FUSE_WERROR=ON (the Makefile
# passes it), so anything the compiler warns about fails CI; a user's build with
# another compiler version only warns.
option(FUSE_WERROR "Treat compiler warnings as errors" OFF)
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes
                    -Wmissing-prototypes -Wno-unused-parameter)
if(FUSE_WERROR)
  add_compile_options(-Werror)
endif()

# A GNU build ID in every binary: it is part of the code cache's key (runtime/buildid.c).
add_link_options(-Wl,--build-id=sha1)
