#!/usr/bin/env bash
# make demo: a real traced scp transfer on this machine, no remote host.
# OpenSSH's scp client runs tests/clients/local-ssh instead of ssh, which runs
# the "remote" `scp -t` locally with the scptrace stand-in first on its PATH.
set -euo pipefail
bin=$(realpath "${1:-target/release/scptrace}")
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/standin" "$work/src/sub" "$work/dst" "$work/logs"
ln -s "$bin" "$work/standin/scp"
printf 'file a file a file a\n' > "$work/src/a"
printf 'hello from b\n' > "$work/src/sub/b"
head -c 100000 /dev/urandom > "$work/src/sub/random.bin"
echo "\$ scp -O -r -p -S local-ssh src localhost:dst    # the remote scp is the scptrace stand-in"
(cd "$work" && LOCAL_SSH_PATH="$work/standin:$PATH" SCPTRACE_LOG_DIR="$work/logs" \
    scp -O -r -p -S "$here/tests/clients/local-ssh" src localhost:dst)
if diff -r "$work/src" "$work/dst/src" >/dev/null; then echo "files arrived byte-identical"; else echo "FILES DIFFER" >&2; exit 1; fi
log=$(ls "$work"/logs/*.log)
echo "transcript: $(basename "$log")"
echo
"$bin" show "$log" 2>/dev/null || cat "$log"
