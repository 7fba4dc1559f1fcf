#!/usr/bin/env python3
"""Peer b: a downloader that sends all its acks up front.

    scp -r -f src/tree     (OpenSSH's source), the tree: 10 files in 3 dirs

Before scp starts, every `\\0` the download will need is already in its
stdin pipe, counted from the tree: one to start, one per D, E and C record,
one per file end (no -p, so no T records): 1 + 3 + 3 + 10 + 10 = 27. scp -f
reads one reply after each record it writes, finds it there at once, and
streams the whole tree without ever waiting. This works perfectly with
OpenSSH: every file arrives and scp exits 0. The peer parses scp's output
and writes the tree under dst/.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402


def build_tree(root):
    files = {
        "readme.txt": b"top level\n",
        "empty": b"",
        "all-bytes.bin": bytes(range(256)),
        "with space.txt": b"a name with a space\n",
        "alpha/one.txt": b"alpha one\n",
        "alpha/two.bin": peerlib.noise(700, 2),
        "alpha/three.txt": b"alpha three\n" * 10,
        "beta/four.txt": b"beta four\n",
        "beta/five.bin": peerlib.noise(300, 5),
        "beta/six.txt": b"ends without a newline",
    }
    for rel, data in files.items():
        peerlib.put(os.path.join(root, rel), data, 0o644)
    return files


def script(args, workdir, holder):
    tree = os.path.join(workdir, "src", "tree")
    files = build_tree(tree)
    os.makedirs(os.path.join(workdir, "dst"), exist_ok=True)
    dirs, nfiles = peerlib.count_tree(tree)
    acks = 1 + 2 * dirs + 2 * nfiles
    s = peerlib.Session(args, "acks_up_front_download", ["-r", "-f", "src/tree"], early=b"\0" * acks)
    holder["session"] = s
    s.notes.append("%d acks sent up front (%d dirs, %d files)" % (acks, dirs, nfiles))
    sink = peerlib.SinkWriter(os.path.join(workdir, "dst"))
    depth = 0
    records = 0
    while True:
        line = s.read_line("record %d" % (records + 1))
        records += 1
        r = sink.record(line)
        if r[0] == "C":
            data = s.read_exact(r[2], "data of %s" % r[1])
            s.expect(s.read_exact(1, "end of %s" % r[1]), b"\0", "end of %s" % r[1])
            sink.data(data)
        elif r[0] == "D":
            depth += 1
        elif r[0] == "E":
            depth -= 1
            if depth == 0:
                break
        else:
            s.failures.append("unexpected record %r" % peerlib.escape(line))
            break
    s.wait()
    s.expect_exit(0)
    s.expect_true(records == 2 * dirs + nfiles, "%d records, expected %d" % (records, 2 * dirs + nfiles))
    for rel, data in files.items():
        p = os.path.join(workdir, "dst", "tree", rel)
        got = open(p, "rb").read() if os.path.exists(p) else None
        s.expect_true(got == data, "dst/tree/%s: %s" % (rel, "missing" if got is None else "content differs"))


if __name__ == "__main__":
    peerlib.run_peer(__doc__, script)
