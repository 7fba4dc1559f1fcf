#!/usr/bin/env python3
"""Peer a: an uploader that reads every reply one step late.

It sends its first C record before reading the sink's greeting, and from
then on writes message k right after reading reply k-1, never waiting for
the reply its previous message asked for. This is how bramvdbogaerde/go-scp
uploads (client.go, CopyPassThru, at c2410915: `Fprintln(w, "C"...)`, then
`checkResponse(stdout)` -- which reads the greeting as the C's ack --, then
the data and `\\0`, then one more `checkResponse`; the last ack is never
read), extended here to three files in one session as C libraries built the
same way do.

    scp -t dst        (OpenSSH's sink)
    I: C0644 11 one.txt\\n         before scp started (in the pipe already)
    O: \\0                         greeting (read as if it acked the C)
    I: data of one.txt + \\0       ...and so on, each one reply behind

All three files must arrive intact, and scp exits 0.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

FILES = [
    ("one.txt", b"first file\n", 0o644),
    ("two.bin", bytes(range(256)), 0o600),
    ("three.txt", b"third file, a few lines\n" * 20, 0o640),
]


def script(args, workdir, holder):
    os.makedirs(os.path.join(workdir, "dst"), exist_ok=True)
    msgs = []
    for name, data, mode in FILES:
        peerlib.put(os.path.join(workdir, "src", name), data, mode)
        msgs.append((peerlib.c_record(mode, data, name.encode()), "C record of " + name))
        msgs.append((data + b"\0", "data and end of " + name))
    s = peerlib.Session(args, "late_ack_upload", ["-t", "dst"], early=msgs[0][0])
    holder["session"] = s
    # Reply k-1 is read, then message k is sent: always one reply behind.
    # Reply 0 is the greeting; reply k (k >= 1) answers message k-1.
    for k in range(1, len(msgs)):
        s.expect(s.read_reply("reply %d (before sending the %s)" % (k - 1, msgs[k][1])), b"\0", "reply %d" % (k - 1))
        s.send(msgs[k][0], msgs[k][1])
    s.expect(s.read_reply("reply %d" % (len(msgs) - 1)), b"\0", "reply %d" % (len(msgs) - 1))
    # Like go-scp: close without reading the last reply (it is drained below).
    s.close_stdin()
    rest = s.read_to_eof()
    s.expect(rest, b"\0", "the last reply, after closing stdin")
    s.wait()
    s.expect_exit(0)
    for name, data, mode in FILES:
        p = os.path.join(workdir, "dst", name)
        got = open(p, "rb").read() if os.path.exists(p) else None
        s.expect_true(got == data, "dst/%s: %s" % (name, "missing" if got is None else "content differs"))


if __name__ == "__main__":
    peerlib.run_peer(__doc__, script)
