# Warnings, set once for every target: anything the compiler warns about is an error.
add_compile_options(-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
                    -Wmissing-prototypes -Wno-unused-parameter)

# A GNU build ID in every binary: it is part of the code cache's key (runtime/buildid.c).
add_link_options(-Wl,--build-id=sha1)
