#!/usr/bin/env python3
"""Peer e: a downloading sink that answers one C record with TWO warnings.

Before OpenSSH 8.3 (aad87b88f, "at most a single error response") and in
dropbear, a sink could send several `\\x01scp: ...\\n` lines for one file
(e.g. an open() or write error, then a failed chmod or utimes). This peer
answers the first file's C record with two warning lines, in one write:

    scp -f src/a.txt src/b.txt     (OpenSSH's source)
    I: \\0
    O: C0644 12 a.txt\\n
    I: \\x01scp: dst/a.txt: Permission denied\\n\\x01scp: dst/a.txt: set mode: Permission denied\\n
    O: C0644 7 b.txt\\n
    (scp exits 1)

OpenSSH's source() reads one reply per record (response(), scp.c): the
first warning makes it skip a.txt; it sends b.txt's C record and takes the
second warning, already waiting, as the reply to that, skips b.txt too, and
exits 1 (errs != 0). The peer, which meant both lines for a.txt, reads what
scp sends up to EOF without answering more (so that nothing it writes
races scp's exit). No file is transferred.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

WARNINGS = b"\x01scp: dst/a.txt: Permission denied\n" b"\x01scp: dst/a.txt: set mode: Permission denied\n"


def script(args, workdir, holder):
    peerlib.put(os.path.join(workdir, "src", "a.txt"), b"hello world\n", 0o644)
    peerlib.put(os.path.join(workdir, "src", "b.txt"), b"second\n", 0o644)
    os.makedirs(os.path.join(workdir, "dst"), exist_ok=True)
    s = peerlib.Session(args, "two_warnings_download", ["-f", "src/a.txt", "src/b.txt"])
    holder["session"] = s
    s.send(b"\0", "ready")
    s.expect(s.read_line("the C record of a.txt"), b"C0644 12 a.txt\n", "first record")
    s.send(WARNINGS, "two warnings for a.txt")
    s.expect(s.read_to_eof(), b"C0644 7 b.txt\n", "scp's stdout after the warnings")
    s.wait()
    s.expect_exit(1)
    s.expect(bytes(s.stderr), b"", "scp's stderr")


if __name__ == "__main__":
    peerlib.run_peer(__doc__, script)
