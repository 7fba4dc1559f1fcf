#!/usr/bin/env python3
"""Peer d: a downloader whose acks are `\\0\\n` instead of `\\0`.

    scp -f a.txt b.txt     (OpenSSH's source)
    I: \\0\\n               before scp started (in the pipe already)
    O: C0644 12 a.txt\\n
    I: \\0\\n               the "ack" of the C record
    (scp exits 1, having sent nothing more)

What OpenSSH's scp.c does with it (response(), V_9_2_P1): main() calls
response() once before source(); it reads the `\\0` and returns 0. source()
writes the C record of a.txt and calls response() again, which reads the
`\\n` left over from the first ack. Any byte but 0, 1 and 2 is taken as the
first character of an error message: response() keeps reading up to the
next `\\n` -- the `\\0\\n` this peer sends as the C record's ack -- and, since
the first byte was neither 1 nor 2, calls exit(1). In server mode the
message is not printed: stderr stays empty, no data is sent.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

ACK = b"\0\n"


def script(args, workdir, holder):
    peerlib.put(os.path.join(workdir, "src", "a.txt"), b"hello world\n", 0o644)
    peerlib.put(os.path.join(workdir, "src", "b.txt"), b"second\n", 0o644)
    os.makedirs(os.path.join(workdir, "dst"), exist_ok=True)
    s = peerlib.Session(args, "ack_extra_bytes_download", ["-f", "src/a.txt", "src/b.txt"], early=ACK)
    holder["session"] = s
    s.expect(s.read_line("the C record of a.txt"), b"C0644 12 a.txt\n", "first record")
    s.send(ACK, "the ack of a.txt's C record")
    s.expect(s.read_to_eof(), b"", "scp's stdout after the C record")
    s.wait()
    s.expect_exit(1)
    s.expect(bytes(s.stderr), b"", "scp's stderr")


if __name__ == "__main__":
    peerlib.run_peer(__doc__, script)
