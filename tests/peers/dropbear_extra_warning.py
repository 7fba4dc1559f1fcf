#!/usr/bin/env python3
"""Peer f: a downloading sink that behaves like dropbear's scp sink when it
cannot set a directory's times: it acks the directory's `E`, then sends one
more reply, a warning.

Source: mkj/dropbear src/scp.c at 1442f00d (sink()). For a `D` record the
sink recurses, `sink(1, vect, src)`; the inner sink acks the `E` record
(`if (buf[0] == 'E') { (void) atomicio(vwrite, remout, "", 1); goto done; }`)
and returns, and then the outer sink does

    if (setimes) {
        setimes = 0;
        if (utimes(vect[0], tv) < 0)
            run_err("%s: set times: %s", vect[0], strerror(errno));
    }

run_err() writes `\\x01scp: <path>: set times: <error>\\n` to the source: a
second reply for the `E` that was already acked. (For a file, a failing
utimes() sends the warning *instead of* the `\\0`, so only directories get two
replies.) utimes() with explicit times fails with EPERM when the directory
exists and belongs to someone else, e.g. a shared, world-writable target.

    scp -r -p -f src/tree   (OpenSSH's source); src/tree holds exactly two
                            directories, alpha/ and beta/, with files
    ... T, D tree, then T, D, files, E of the first of them (readdir order)
    I: \\0\\x01scp: dst/tree/alpha: set times: Operation not permitted\\n
    O: T... of the second directory        scp takes the warning as its reply,
                                           skips that directory (rsource() returns)
    O: E\\n                                 end of tree; scp now waits
    I: \\0\\0                                the peer's replies to that T and that E
    (scp exits 1: errs != 0)

Dropbear writes the `\\0` and the warning with two writes, back to back; the
peer sends them in one write, and answers the two records that follow in
one write after both arrived, so what the relay reads is the same on every
run. What OpenSSH's source does with the extra reply (source(), rsource(),
do_times(), response() in scp.c): every later reply is read one record
late. The tree has two directories and no files at its top so that what
follows the extra reply does not depend on readdir() order: the second
directory (whichever it is) is skipped, and the files of the first arrive.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

FILES = {
    "alpha/one.txt": (b"alpha one\n", 0o644, 1_100_000_001),
    "alpha/two.bin": (bytes(range(256)), 0o600, 1_100_000_002),
    "alpha/three.txt": (b"alpha three\n" * 5, 0o644, 1_100_000_003),
    "beta/four.txt": (b"beta four\n", 0o644, 1_100_000_004),
    "beta/five.bin": (peerlib.noise(300, 5), 0o640, 1_100_000_005),
}
DIR_TIMES = {"alpha": 1_100_000_100, "beta": 1_100_000_101, "": 1_100_000_102}


def script(args, workdir, holder):
    tree = os.path.join(workdir, "src", "tree")
    for rel, (data, mode, t) in FILES.items():
        peerlib.put(os.path.join(tree, rel), data, mode, t)
    for rel, t in DIR_TIMES.items():
        os.utime(os.path.join(tree, rel) if rel else tree, (t, t))
    os.makedirs(os.path.join(workdir, "dst"), exist_ok=True)
    s = peerlib.Session(args, "dropbear_extra_warning", ["-r", "-p", "-f", "src/tree"])
    holder["session"] = s
    sink = peerlib.SinkWriter(os.path.join(workdir, "dst"))
    s.send(b"\0", "ready")
    depth = 0
    first_dir = None
    while first_dir is None:
        line = s.read_line("a record")
        r = sink.record(line)
        if r[0] == "C":
            s.send(b"\0", "the ack of a C record")
            data = s.read_exact(r[2], "data of %s" % r[1])
            s.expect(s.read_exact(1, "end of %s" % r[1]), b"\0", "end of %s" % r[1])
            sink.data(data)
            s.send(b"\0", "the ack of a file end")
        elif r[0] == "D":
            depth += 1
            s.send(b"\0", "the ack of a D record")
        elif r[0] == "T":
            s.send(b"\0", "the ack of a T record")
        elif r[0] == "E":
            depth -= 1
            s.expect_true(depth == 1, "the first E closes a directory at depth %d, not 1" % depth)
            first_dir = r[1]
            local = os.path.relpath(first_dir, workdir)
            s.send(
                b"\0\x01scp: %s: set times: Operation not permitted\n" % os.fsencode(local),
                "the ack of E and the extra warning",
            )
        else:
            s.failures.append("unexpected record %r" % peerlib.escape(line))
            raise peerlib.PeerError("lost step")
    # scp takes the warning as the reply to the next record (the second
    # directory's T) and skips that directory; then it ends the tree.
    t = s.read_line("the second directory's T record")
    s.expect_true(t.startswith(b"T") and t.endswith(b" 0\n"), "a T record after the extra warning, got %r" % peerlib.escape(t))
    s.expect(s.read_line("the tree's E record"), b"E\n", "the record after that T")
    s.send(b"\0\0", "the replies to that T and that E")
    sink.record(b"E\n")
    s.expect(s.read_to_eof(), b"", "scp's stdout after the tree's E")
    s.wait()
    s.expect_exit(1)
    s.expect(bytes(s.stderr), b"", "scp's stderr")
    # The first directory's files arrived; the other directory was skipped.
    name = os.path.basename(first_dir)
    other = "beta" if name == "alpha" else "alpha"
    for rel, (data, mode, t) in FILES.items():
        p = os.path.join(workdir, "dst", "tree", rel)
        if rel.startswith(name + "/"):
            got = open(p, "rb").read() if os.path.exists(p) else None
            s.expect_true(got == data, "dst/tree/%s: %s" % (rel, "missing" if got is None else "content differs"))
    s.expect_true(not os.path.exists(os.path.join(workdir, "dst", "tree", other)), "dst/tree/%s exists" % other)
    s.notes.append("the first directory sent was %s; %s was skipped" % (name, other))


if __name__ == "__main__":
    peerlib.run_peer(__doc__, script)
