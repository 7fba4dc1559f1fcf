#!/usr/bin/env bash
# What the tap itself costs, counted in instructions: a load-proof companion
# to `make bench` for comparing two builds of scptrace.
#
#   bash scripts/bench-instructions.sh BIN [BIN...]
#
# Wall time on a shared 2-core machine spreads too much to tell a 5% change
# (make bench's ratios spread 0.6-3.5 while builds run). valgrind's callgrind
# counts the instructions the stand-in process executes, the same count for
# the same binary and input whatever else the machine does. Only the stand-in
# is counted (no --trace-children): the real scp it runs, and the client, are
# the same program in every run, so they are left out.
#
# Same arrangement as make bench: OpenSSH's scp client with `-S
# tests/clients/local-ssh`, whose "remote" scp is the stand-in (or, for the
# SFTP cases, `scptrace sftp-server` around the real sftp-server), run under
# callgrind. Cases: up and down (one INSTR_MB MiB file, default 64), small
# (INSTR_SMALL_N files of 1 KiB with -r, default 1000), and sup, sdown, ssmall,
# the same in SFTP mode (skipped for a binary without `sftp-server`).
# Every transfer is checked (exit status, cmp / diff -r).
#
# The `plain` column counts the plain server (the real scp -t/-f, or the real
# sftp-server) the same way, and `last/plain` divides the last binary's count
# by it: the tap's user-space work per unit of the server's own, comparable
# between the legacy and the SFTP cases (issue 12's "SFTP through the tap
# costs no more than SCP does").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
local_ssh=$here/tests/clients/local-ssh
sftp_server=/usr/lib/openssh/sftp-server
mb=${INSTR_MB:-64}
small_n=${INSTR_SMALL_N:-1000}
cases=${INSTR_CASES:-up down small sup sdown ssmall}

die() { printf 'bench-instructions: %s\n' "$*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: $0 BIN [BIN...]"
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"

work=$(mktemp -d "${TMPDIR:-/tmp}/scptrace-instr.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/small"
head -c "$((mb * 1024 * 1024))" /dev/urandom >"$work/data/big"
head -c "$((small_n * 1024))" /dev/urandom | split -a 5 -d -b 1024 - "$work/data/small/f"

export SCPTRACE_REAL_SCP=/usr/bin/scp XDG_CONFIG_HOME=$work/cfg
unset SCPTRACE_DATA SCPTRACE_MAX_LOG_BYTES

# count BIN CASE -> the instructions callgrind counted in the stand-in
# (BIN "plain": in the real scp or sftp-server, untraced)
count() {
    local bin=$1 case=$2 legacy=-O
    local d=$work/run
    rm -rf "$d" && mkdir -p "$d/wrap" "$d/standin" "$d/dst" "$d/logs"
    local vg="valgrind --tool=callgrind --callgrind-out-file=$d/cg.out -q"
    if [ "$bin" = plain ]; then
        printf '#!/bin/sh\nexec %s /usr/bin/scp "$@"\n' "$vg" >"$d/wrap/scp"
        printf '#!/bin/sh\nexec %s %s\n' "$vg" "$sftp_server" >"$d/sftp"
    else
        cp "$bin" "$d/standin/scptrace"
        ln -s "$d/standin/scptrace" "$d/standin/scp"
        printf '#!/bin/sh\nexec %s %s "$@"\n' "$vg" "$d/standin/scp" >"$d/wrap/scp"
        printf '#!/bin/sh\nexec %s %s sftp-server -- %s\n' "$vg" "$d/standin/scptrace" "$sftp_server" >"$d/sftp"
    fi
    chmod +x "$d/wrap/scp" "$d/sftp"
    local -a args
    case $case in
        up | sup) args=("$work/data/big" "localhost:$d/dst/big") ;;
        down | sdown) args=("localhost:$work/data/big" "$d/dst/big") ;;
        small | ssmall) args=(-r "$work/data/small" "localhost:$d/dst/") ;;
    esac
    case $case in sup | sdown | ssmall) legacy= ;; esac
    SCPTRACE_LOG_DIR=$d/logs LOCAL_SSH_PATH=$d/wrap:/usr/bin:/bin LOCAL_SSH_SFTP_SERVER=$d/sftp \
        timeout 600 scp $legacy -q -S "$local_ssh" "${args[@]}" </dev/null >"$d/client.out" 2>&1 ||
        die "$case with $bin: scp failed: $(head -c 300 "$d/client.out")"
    case $case in
        small | ssmall) diff -r -q "$work/data/small" "$d/dst/small" >/dev/null || die "$case: files differ" ;;
        *) cmp -s "$work/data/big" "$d/dst/big" || die "$case: file differs" ;;
    esac
    [ "$bin" = plain ] || [ -n "$(ls -A "$d/logs")" ] || die "$case with $bin: no transcript written"
    awk '/^summary:|^totals:/ {print $2; exit}' "$d/cg.out"
}

printf '%-8s %14s' case plain
for b; do printf ' %16s' "$(basename "$b")"; done
[ $# -ge 2 ] && printf ' %10s' "last/first"
printf ' %10s\n' "last/plain"
for c in $cases; do
    printf '%-8s' "$c"
    p=$(count plain "$c")
    printf ' %14s' "$p"
    vals=()
    for b; do
        case $c in sup | sdown | ssmall)
            if ! "$b" sftp-server --help >/dev/null 2>&1; then printf ' %16s' "-"; continue; fi ;;
        esac
        n=$(count "$b" "$c")
        printf ' %16s' "$n"
        vals+=("$n")
    done
    if [ "${#vals[@]}" -ge 2 ]; then
        awk -v a="${vals[-1]}" -v b="${vals[0]}" 'BEGIN {printf " %10.3f", a / b}'
    elif [ $# -ge 2 ]; then
        printf ' %10s' -
    fi
    if [ "${#vals[@]}" -ge 1 ]; then
        awk -v a="${vals[-1]}" -v b="$p" 'BEGIN {printf " %10.2f\n", a / b}'
    else
        printf ' %10s\n' -
    fi
done
echo "instructions executed by the stand-in process (callgrind), ${mb} MiB file, ${small_n} x 1 KiB;"
echo "plain: by the real scp -t/-f or sftp-server alone; last/plain: the last binary's stand-in over plain"
