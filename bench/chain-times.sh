#!/bin/sh
# chain-times.sh FUSE_JIT [N...]: cold-cache compile times of the bench/chain.py
# programs. For every kind and N, writes the chain, runs
# `FUSE_JIT run PROGRAM --time` with an empty FUSE_JIT_CACHE_DIR and prints the
# wall time of the whole process and fuse-jit's own compile phase (lower +
# compile). KINDS (environment) picks the kinds, default
# "copy relu relu:--distinct two:--distinct contract:--distinct";
# TIMEOUT (seconds, default 300) stops a run that takes longer.
set -eu
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
jit=$1
shift
[ $# -gt 0 ] || set -- 50 100 200 400 1000
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-22s %7s %10s %12s\n' kind N wall_s compile_ms
for spec in ${KINDS:-copy relu relu:--distinct two:--distinct contract:--distinct}; do
    kind=${spec%%:*}
    extra=$(echo "$spec" | grep -q : && echo "${spec#*:}" | tr : ' ' || true)
    for n in "$@"; do
        # shellcheck disable=SC2086
        python3 "$here/chain.py" "$n" --kind "$kind" $extra > "$tmp/chain.fuse"
        rm -rf "$tmp/cache"
        mkdir "$tmp/cache"
        t0=$(date +%s.%N)
        if FUSE_JIT_CACHE_DIR="$tmp/cache" timeout "${TIMEOUT:-300}" \
            "$jit" run "$tmp/chain.fuse" --time > /dev/null 2> "$tmp/err"; then
            t1=$(date +%s.%N)
            ms=$(awk '/^time: (lower|compile)/ {s += $3} END {printf "%.1f", s}' "$tmp/err")
            printf '%-22s %7s %10.2f %12s\n' "$spec" "$n" "$(echo "$t1 - $t0" | bc)" "$ms"
        else
            printf '%-22s %7s %10s %12s\n' "$spec" "$n" "timeout" "-"
        fi
    done
done
