#!/usr/bin/env python3
"""Peer c: an uploader that gives up at once with a fatal error.

    scp -t dst     (OpenSSH's sink)
    I: \\x02go away\\n     before scp started (in the pipe already)
    O: \\0                 scp's greeting, written at its start regardless

sink() in OpenSSH's scp.c writes its greeting, reads one line byte by byte,
finds `\\x02` first and calls exit(1) (the text is shown only when scp is not
in server mode, so stderr stays empty). Nothing is written under dst/.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402


def script(args, workdir, holder):
    os.makedirs(os.path.join(workdir, "dst"), exist_ok=True)
    s = peerlib.Session(args, "fatal_at_once", ["-t", "dst"], early=b"\x02go away\n")
    holder["session"] = s
    s.expect(s.read_to_eof("scp's greeting and EOF"), b"\0", "all of scp's stdout")
    s.wait()
    s.expect_exit(1)
    s.expect(bytes(s.stderr), b"", "scp's stderr")
    s.expect_true(os.listdir(os.path.join(workdir, "dst")) == [], "dst/ is not empty")


if __name__ == "__main__":
    peerlib.run_peer(__doc__, script)
