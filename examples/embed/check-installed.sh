#!/bin/sh
# check-installed.sh CMAKE BUILD_DIR EXAMPLE_DIR CC CFLAGS: installs the build tree
# into a temporary prefix, builds the embedding example there with pkg-config,
# runs it and checks its output. Used by ctest (embed_example).
set -eu
cmake="$1" build="$2" example="$3" cc="$4" cflags="$5"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$cmake" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
libdir="$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n 1)"
export PKG_CONFIG_PATH="$libdir"
# only the public API leaves the shared library
if nm -D --defined-only "$tmp"/prefix/lib*/libfusejit.so | awk '{print $3}' \
        | grep -v '^fuse_' | grep -v '^$' | grep -v '^_init$\|^_fini$\|^_edata$\|^_end$\|^__bss_start$\|^__start_\|^__stop_' >"$tmp/extra"; then
    echo "libfusejit.so exports more than fuse_*:" >&2
    cat "$tmp/extra" >&2
    exit 1
fi
make -s -C "$example" OUT="$tmp" CC="$cc" CFLAGS="$cflags"
"$tmp/embed" | tee "$tmp/out.txt"
grep -q '^run 1: H = \[' "$tmp/out.txt"
grep -q '^run 2: H = \[' "$tmp/out.txt"
if grep -q WRONG "$tmp/out.txt"; then exit 1; fi
# Beside the FUSE filesystem library (libfuse-dev), when it is installed: the
# prefix holds none of its names, and a host including and linking both works.
for name in "$tmp"/prefix/include/fuse.h "$tmp"/prefix/lib*/libfuse.so "$tmp"/prefix/lib*/pkgconfig/fuse.pc; do
    if [ -e "$name" ]; then
        echo "the install would shadow libfuse-dev: $name" >&2
        exit 1
    fi
done
if pkg-config --exists fuse; then
    make -s -B -C "$example" OUT="$tmp" CC="$cc" CFLAGS="$cflags" WITH_LIBFUSE=1
    "$tmp/embed" >"$tmp/both.txt"
    grep -q '^libfuse [0-9]' "$tmp/both.txt"
    grep -q '^run 2: H = \[' "$tmp/both.txt"
    if grep -q WRONG "$tmp/both.txt"; then exit 1; fi
    echo "embed example beside libfuse-dev: ok"
else
    echo "embed example beside libfuse-dev: skipped (libfuse-dev not installed)"
fi
echo "embed example: ok"
