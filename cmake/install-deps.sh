#!/bin/sh
# Installs the Debian 12 packages fuse-jit needs to build and test, only those missing.
# Runs apt-get through sudo when not root. Safe to run repeatedly.
set -eu

PACKAGES="cmake make pkg-config clang-19 llvm-19-dev lld-19 libclang-rt-19-dev libomp-19-dev
zlib1g-dev libzip-dev libminizip-dev libjansson-dev libedit-dev liblapacke-dev libopenblas-dev check
libopenmpi-dev openmpi-bin
python3 python3-numpy python3-dev python3-pytest libfuse-dev"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
