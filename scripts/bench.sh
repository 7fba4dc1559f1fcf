#!/usr/bin/env bash
# make bench: what does scptrace cost a real scp transfer?
#
#   bash scripts/bench.sh [target/release/scptrace]
#
# Same arrangement as `make demo` and the end-to-end tests, no sshd: OpenSSH's
# scp client runs with `-O -S tests/clients/local-ssh`, which runs the "remote"
# `scp -t`/`scp -f` locally. Three ways to run that remote scp, in turn, pair by
# pair, in this one invocation:
#
#   plain   the real scp                       (LOCAL_SSH_PATH: plain wrapper dir)
#   traced  the scptrace stand-in named `scp`  (LOCAL_SSH_PATH: traced wrapper dir)
#   cat     the real scp, with `cat` relaying both directions in the middle
#           (orientation only: what any process in the middle costs)
#
# Both the plain and the traced remote scp are started through the same tiny
# wrapper named `scp` that execs `/usr/bin/time -v -o FILE PROGRAM "$@"`, so the
# wrapper's own cost (one sh and one time exec) is on both sides, and time
# reports the peak RSS of exactly that process (the stand-in, or the plain scp).
# The stand-in is a symlink named `scp` to the binary in a directory of its own,
# which time execs by path (argv[0] ends in `scp`, as the stand-in requires).
#
# Cases (sizes from the environment, so a quick run is possible):
#   up      one BENCH_BIG_MB MiB random file, upload          (default 1024)
#   down    the same file, download
#   small   BENCH_SMALL_N files of 1 KiB, `scp -r` upload       (default 5000)
#   upfull  the upload again with SCPTRACE_DATA=full on the stand-in (and the
#           default transcript cap, max_log_bytes = 64 MiB: past it, data is
#           counted, not shown)
#   upfullnocap  the same with SCPTRACE_MAX_LOG_BYTES=0: every byte escaped
#           into the transcript (about 2.9 bytes per random byte)
#   sup, sdown, ssmall  up, down and small again in scp's SFTP mode (no -O):
#           the client's `-s sftp` request runs the real sftp-server, plain, or
#           through `scptrace sftp-server` (sshd's Subsystem wrapper), or with
#           the cat relay in the middle. Compare their traced/plain ratios with
#           the legacy cases' in the same run (issue 12: within 1.1x of them).
# BENCH_PAIRS pairs per case (default 5) after BENCH_WARMUP untimed ones
# (default 1); BENCH_CASES picks cases (default: all eight, in the order above);
# BENCH_CAT=0 leaves the cat relay out.
#
# Every run is checked: the client's exit status, the destination compared
# byte for byte with the source (cmp / diff -r), and for traced runs that a
# transcript was written, starts with the invocation line and ends with `#: 0`.
# Nothing about time is asserted: the exit status is 0 unless a transfer failed
# or a file differed. Everything happens on tmpfs and is removed on exit.
set -euo pipefail

bin=$(realpath "${1:-target/release/scptrace}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
local_ssh=$here/tests/clients/local-ssh

pairs=${BENCH_PAIRS:-5}
warmup=${BENCH_WARMUP:-1}
big_mb=${BENCH_BIG_MB:-1024}
small_n=${BENCH_SMALL_N:-5000}
cases=${BENCH_CASES:-up down small upfull upfullnocap sup sdown ssmall}
with_cat=${BENCH_CAT:-1}

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

[ -x "$bin" ] || die "no scptrace binary at $bin (run: cargo build --release)"
[ -x /usr/bin/scp ] || die "no /usr/bin/scp (openssh-client)"
[ -x "$local_ssh" ] || die "missing $local_ssh"
sftp_server=/usr/lib/openssh/sftp-server
case " $cases " in *" sup "* | *" sdown "* | *" ssmall "*)
    [ -x "$sftp_server" ] || die "no $sftp_server (openssh-sftp-server) for the SFTP cases" ;;
esac
for c in $cases; do
    case $c in up | down | small | upfull | upfullnocap | sup | sdown | ssmall) ;; *) die "unknown case '$c' in BENCH_CASES" ;; esac
done

# --- a tmpfs work directory ----------------------------------------------------

# Space: the big file, its copy, and a transcript that with --data full holds
# the escaped bytes of the whole file (up to 4 bytes per byte).
need_mb=$((big_mb * 6 + small_n * 8 / 1024 + 64))
work=""
mounted=""
cleanup() {
    if [ -n "$mounted" ]; then umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || true; fi
    if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fstype() { stat -f -c %T "$1" 2>/dev/null || echo unknown; }
avail_mb() { df -Pm "$1" 2>/dev/null | awk 'NR==2 {print $4}'; }

if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(fstype /dev/shm)" = tmpfs ] &&
    [ "$(avail_mb /dev/shm)" -ge "$need_mb" ]; then
    work=$(mktemp -d /dev/shm/scptrace-bench.XXXXXX)
    where="tmpfs (/dev/shm)"
elif [ "$(id -u)" = 0 ] && work=$(mktemp -d "${TMPDIR:-/tmp}/scptrace-bench.XXXXXX") &&
    mount -t tmpfs -o "size=${need_mb}m,mode=0700" tmpfs "$work" 2>/dev/null; then
    mounted=$work
    where="tmpfs (mounted at $work)"
else
    [ -n "$work" ] || work=$(mktemp -d "${TMPDIR:-/tmp}/scptrace-bench.XXXXXX")
    where="$(fstype "$work") ($work) -- NOTE: not tmpfs, disk speed is part of every figure"
fi
cd "$work"
mkdir -p data dst logs rss cfg wrap/standin wrap/plain wrap/traced

# --- the three ways to run the remote scp -------------------------------------

have_time=1
[ -x /usr/bin/time ] || have_time=0
# A private copy of the binary: a rebuild during the run must not change what
# is measured half-way.
mkdir -p bin
cp "$bin" bin/scptrace
bin_sum=$(sha256sum bin/scptrace | cut -c1-16)
ln -s "$work/bin/scptrace" wrap/standin/scp
write_wrapper() { # DIR PROGRAM
    if [ "$have_time" = 1 ]; then
        printf '#!/bin/sh\nexec /usr/bin/time -v -o "$BENCH_RSS_FILE" %s "$@"\n' "$2" >"$1/scp"
    else
        printf '#!/bin/sh\nexec %s "$@"\n' "$2" >"$1/scp"
    fi
    chmod +x "$1/scp"
}
write_wrapper wrap/plain /usr/bin/scp
write_wrapper wrap/traced "$work/wrap/standin/scp"
# SFTP mode: local-ssh runs LOCAL_SSH_SFTP_SERVER for the `-s sftp` request;
# the same time wrapper around the real sftp-server, or around scptrace's
# Subsystem wrapper (which then runs that real sftp-server).
mkdir -p wrap/sftp-plain wrap/sftp-traced
write_wrapper wrap/sftp-plain "$sftp_server"
write_wrapper wrap/sftp-traced "$work/bin/scptrace sftp-server -- $sftp_server"
# The cat relay: the same local ssh, with cat copying each direction. Like
# scptrace it must not wait for EOF on its stdin once the remote side is done
# (in a download the client closes only after the "ssh" exits): the input cat
# is stopped then.
cat >wrap/cat-ssh <<END
#!/bin/bash
exec 3< <(exec cat)
in=\$!
"$local_ssh" "\$@" <&3 3<&- | cat 3<&-
st=\${PIPESTATUS[0]}
kill "\$in" 2>/dev/null
exit "\$st"
END
chmod +x wrap/cat-ssh

# The stand-in must not pick the plain wrapper (or itself) as the real scp, and
# no user or system config may change what is measured.
export SCPTRACE_REAL_SCP=/usr/bin/scp
export SCPTRACE_LOG_DIR=$work/logs
export XDG_CONFIG_HOME=$work/cfg
unset SCPTRACE_DATA SCPTRACE_MAX_LOG_BYTES
[ -e /etc/scptrace/config.toml ] && say "note: /etc/scptrace/config.toml exists and applies to the stand-in"

# --- test data ------------------------------------------------------------------

gen_data() {
    case " $cases " in *" up "* | *" down "* | *" upfull"* | *" sup "* | *" sdown "*)
        head -c "$((big_mb * 1024 * 1024))" /dev/urandom >data/big ;;
    esac
    case " $cases " in *" small "* | *" ssmall "*)
        mkdir -p data/small
        # 1 KiB of random bytes each, distinct per file, in one pass.
        head -c "$((small_n * 1024))" /dev/urandom |
            split -a 5 -d -b 1024 - data/small/f
        ;;
    esac
}

# --- one run ----------------------------------------------------------------------

fail=0
# run_one CASE MODE -> sets $secs, $rss (KiB or "-"), $logsize (bytes or "-")
run_one() {
    local case=$1 mode=$2 ssh=$local_ssh path rc=0 t0 t1 legacy=-O sftp=$sftp_server
    local -a env=() args=()
    case $mode in
        plain) path=$work/wrap/plain:/usr/bin:/bin; sftp=$work/wrap/sftp-plain/scp ;;
        traced) path=$work/wrap/traced:/usr/bin:/bin; sftp=$work/wrap/sftp-traced/scp ;;
        cat) path=/usr/bin:/bin; ssh=$work/wrap/cat-ssh ;;
    esac
    case $case in sup | sdown | ssmall) legacy= ;; esac
    if [ "$mode" = traced ]; then
        case $case in
            upfull) env=(SCPTRACE_DATA=full) ;;
            upfullnocap) env=(SCPTRACE_DATA=full SCPTRACE_MAX_LOG_BYTES=0) ;;
        esac
    fi
    case $case in
        up | upfull | upfullnocap | sup) args=(data/big "localhost:$work/dst/big") ;;
        down | sdown) args=("localhost:$work/data/big" dst/big) ;;
        small | ssmall) args=(-r data/small "localhost:$work/dst/") ;;
    esac
    rm -rf dst logs rss && mkdir dst logs rss
    t0=$EPOCHREALTIME
    env "${env[@]}" BENCH_RSS_FILE="$work/rss/time.txt" LOCAL_SSH_PATH="$path" \
        LOCAL_SSH_SFTP_SERVER="$sftp" \
        scp $legacy -q -S "$ssh" "${args[@]}" </dev/null >"$work/client.out" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')
    if [ "$rc" != 0 ]; then
        say "FAIL: $case/$mode: scp exited $rc: $(head -c 500 "$work/client.out")"
        fail=1
    fi
    local same=1
    case $case in
        up | upfull | upfullnocap | down | sup | sdown) cmp -s data/big dst/big || same=0 ;;
        small | ssmall) diff -r -q data/small dst/small >/dev/null 2>&1 || same=0 ;;
    esac
    if [ "$same" = 0 ]; then
        say "FAIL: $case/$mode: destination differs from the source"
        fail=1
    fi
    rss=- cpu=-
    if [ "$mode" != cat ] && [ -s rss/time.txt ]; then
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' rss/time.txt)
        # user + system seconds of the remote side (the stand-in and the scp
        # it reaped, or the plain scp): what the tap costs in CPU, which
        # other load on the machine changes far less than wall time.
        cpu=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ {s += $2} END {printf "%.3f", s}' rss/time.txt)
    fi
    logsize=-
    if [ "$mode" = traced ]; then
        local logs=(logs/*) want='/usr/bin/scp '
        case $case in sup | sdown | ssmall) want=$sftp_server ;; esac
        if [ "${#logs[@]}" != 1 ] || [ ! -f "${logs[0]}" ]; then
            say "FAIL: $case/traced: expected one transcript in the log dir, found: ${logs[*]}"
            fail=1
        elif ! grep -q "^>>> New command invocation: $want" "${logs[0]}" ||
            [ "$(tail -n 1 "${logs[0]}")" != '#: 0' ]; then
            say "FAIL: $case/traced: transcript ${logs[0]##*/} is not a complete trace of scp"
            fail=1
        else
            logsize=$(stat -c %s "${logs[0]}")
        fi
    elif [ -n "$(ls -A logs)" ]; then
        say "FAIL: $case/$mode: a transcript appeared for an untraced run"
        fail=1
    fi
    rm -rf dst logs rss && mkdir dst logs rss
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
maximum() { sort -g | tail -n 1; }
# The median of the ratios with their spread: "1.23 (1.10-1.40)".
ratio() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) {print "-"; exit} m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f (%.2f-%.2f)\n", m, v[1], v[NR]}'; }
secs3() { awk '{if ($1 == "-") print "-"; else printf "%.3f\n", $1}'; }

# --- header -------------------------------------------------------------------------

commit=$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$here" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && commit="$commit+dirty(src)"
say "$("$work/bin/scptrace" --version 2>/dev/null | head -n 1 || echo '?') from $bin (sha256 $bin_sum...), commit $commit"
say "machine: $(nproc) cpus, $(uname -sr), $(ssh -V 2>&1)"
say "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "work dir: $where"
say "cases: $cases; $pairs pairs each (+$warmup warm-up); big file ${big_mb} MiB; $small_n x 1 KiB"
[ "$have_time" = 1 ] || say "note: /usr/bin/time is missing (Debian package 'time'): no peak RSS figures"
env | grep '^SCPTRACE_' | sed 's/^/bench: env /' || true
say "generating test data..."
gen_data

modes=(plain traced)
[ "$with_cat" = 1 ] && modes+=(cat)

declare -A R
for case in $cases; do
    say "case $case"
    for ((p = 1 - warmup; p <= pairs; p++)); do
        # Rotate the order each pair so that neither side always goes first.
        n=${#modes[@]}
        k=$(((p % n + n) % n))
        order=("${modes[@]:k}" "${modes[@]:0:k}")
        declare -A t=() c=()
        for mode in "${order[@]}"; do
            run_one "$case" "$mode"
            t[$mode]=$secs
            c[$mode]=$cpu
            if ((p >= 1)); then
                R[$case,$mode,secs]+="$secs "
                [ "$cpu" != - ] && R[$case,$mode,cpu]+="$cpu "
                [ "$rss" != - ] && R[$case,$mode,rss]+="$rss "
                [ "$logsize" != - ] && R[$case,$mode,log]+="$logsize "
            fi
        done
        line="  pair $p:"
        ((p >= 1)) || line="  warm-up:"
        for mode in "${modes[@]}"; do line+=" $mode ${t[$mode]}s"; done
        if ((p >= 1)); then
            r=$(awk -v a="${t[traced]}" -v b="${t[plain]}" 'BEGIN {printf "%.3f", a / b}')
            R[$case,traced,ratio]+="$r "
            line+="  traced/plain $r"
            if [ "${c[traced]:--}" != - ] && [ "${c[plain]:--}" != - ]; then
                r=$(awk -v a="${c[traced]}" -v b="${c[plain]}" 'BEGIN {printf "%.3f", (b > 0) ? (a / b) : 0}')
                R[$case,traced,cpuratio]+="$r "
                line+=" (cpu ${c[traced]}/${c[plain]}s)"
            fi
            if [ "$with_cat" = 1 ]; then
                r=$(awk -v a="${t[cat]}" -v b="${t[plain]}" 'BEGIN {printf "%.3f", a / b}')
                R[$case,cat,ratio]+="$r "
                line+="  cat/plain $r"
            fi
        fi
        printf '%s\n' "$line"
    done
done

# --- the table ------------------------------------------------------------------------

col() { tr ' ' '\n' <<<"${R[$1]:-}" | grep -v '^$' | "$2"; }
desc() {
    case $1 in
        up) echo "upload ${big_mb} MiB" ;;
        down) echo "download ${big_mb} MiB" ;;
        small) echo "upload -r ${small_n} x 1 KiB" ;;
        upfull) echo "upload ${big_mb} MiB, data=full" ;;
        upfullnocap) echo "  the same, no transcript cap" ;;
        sup) echo "SFTP upload ${big_mb} MiB" ;;
        sdown) echo "SFTP download ${big_mb} MiB" ;;
        ssmall) echo "SFTP upload -r ${small_n} x 1 KiB" ;;
    esac
}
echo
echo "scptrace bench  commit $commit  $(date -u +%Y-%m-%d)  $(nproc) cpus  $(uname -r)  $(ssh -V 2>&1 | cut -d, -f1)  ${pairs} pairs"
printf '%-30s %8s %8s %-17s' case "plain s" "traced s" "traced/plain"
[ "$with_cat" = 1 ] && printf ' %7s %-17s' "cat s" "cat/plain"
printf ' %-17s %8s %8s %10s\n' "cpu traced/plain" "RSS KiB" "scp KiB" "transcript"
for case in $cases; do
    printf '%-30s %8s %8s %-17s' "$(desc "$case")" "$(col "$case,plain,secs" median | secs3)" \
        "$(col "$case,traced,secs" median | secs3)" "$(col "$case,traced,ratio" ratio)"
    [ "$with_cat" = 1 ] && printf ' %7s %-17s' "$(col "$case,cat,secs" median | secs3)" "$(col "$case,cat,ratio" ratio)"
    log=$(col "$case,traced,log" median)
    [ "$log" != - ] && log=$(numfmt --to=iec-i --suffix=B "${log%.*}" 2>/dev/null || echo "$log")
    printf ' %-17s %8s %8s %10s\n' "$(col "$case,traced,cpuratio" ratio)" "$(col "$case,traced,rss" maximum)" "$(col "$case,plain,rss" maximum)" "$log"
done
echo "x/plain: median of the pair-by-pair wall-time ratios (min-max); times: medians in seconds;"
echo "cpu traced/plain: the same for user+system CPU seconds of the remote side (the stand-in with"
echo "the scp it ran, against the plain scp): less sensitive to other load than wall time;"
echo "RSS KiB: the stand-in's peak RSS over its runs (/usr/bin/time -v; the kernel folds in reaped"
echo "children, so it is max(stand-in, the scp it ran)); scp KiB: the same for the plain scp;"
echo "transcript: median size of the stand-in's log file. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$fail" != 0 ]; then
    say "some transfers FAILED (see above)"
    exit 1
fi
