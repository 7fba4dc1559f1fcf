#!/usr/bin/env python3
"""Peer g: an uploader that pipelines a file the sink refuses.

    scp -t dst     (OpenSSH's sink); dst/name.txt exists and is a directory
    I: C0644 12 name.txt\\nhello world\\n\\0     before scp started, at once
    O: \\0                                       greeting
    O: \\x01scp: dst/name.txt: Is a directory\\n
    O: \\x01scp: protocol error: expected control record\\n
    (scp exits 1)

sink() in OpenSSH's scp.c: open() of dst/name.txt fails with EISDIR, so it
sends run_err()'s warning in place of the ack and `continue`s to the next
record -- it does not read the file's data, which the peer sent without
waiting. It reads "hello world\\n" as the next record line; that is not a
control record (and not the first record), so SCREWUP("expected control
record"): one more warning and exit(1). The `\\0` is never read.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

DATA = b"hello world\n"


def script(args, workdir, holder):
    peerlib.put(os.path.join(workdir, "src", "name.txt"), DATA, 0o644)
    os.makedirs(os.path.join(workdir, "dst", "name.txt"), exist_ok=True)
    early = peerlib.c_record(0o644, DATA, b"name.txt") + DATA + b"\0"
    s = peerlib.Session(args, "refused_pipelined_upload", ["-t", "dst"], early=early)
    holder["session"] = s
    s.expect(
        s.read_to_eof(),
        b"\0\x01scp: dst/name.txt: Is a directory\n\x01scp: protocol error: expected control record\n",
        "all of scp's stdout",
    )
    s.wait()
    s.expect_exit(1)
    s.expect(bytes(s.stderr), b"", "scp's stderr")
    s.expect_true(os.listdir(os.path.join(workdir, "dst", "name.txt")) == [], "dst/name.txt/ is not empty")


if __name__ == "__main__":
    peerlib.run_peer(__doc__, script)
