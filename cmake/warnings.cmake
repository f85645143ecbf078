# Warnings, set once for every target: anything the compiler warns about is an error.
add_compile_options(-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
                    -Wmissing-prototypes -Wno-unused-parameter)
