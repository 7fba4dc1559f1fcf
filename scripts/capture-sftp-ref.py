#!/usr/bin/env python3
"""Captures the SFTP reference sessions in tests/ref/sftp/ from the real programs.

The SFTP decoder's tests (src/protocol/sftp/) replay these byte for byte, so they
must come from OpenSSH's own client and server, not from our idea of them. Each
case runs the real /usr/bin/scp (SFTP mode, the default since OpenSSH 9.0) or
/usr/bin/sftp with `-S THIS_SCRIPT`; invoked that way (CAPTURE_SFTP_TEE set) the
script ignores the ssh arguments, runs the real /usr/lib/openssh/sftp-server in a
scratch "home" directory, relays both directions and records them:

  in.bin      the bytes the client sent to sftp-server's stdin
  out.bin     the bytes sftp-server wrote to its stdout (plus any injected fault)
  chunks.txt  the interleaving as observed: one "I LEN" or "O LEN" line per read,
              each logged before the chunk is passed on, so a reply is always
              logged after the request it answers (a causal order)
  meta.txt    the command, scp's exit status and stderr, what the case shows

Fault cases put a small proxy between the two (FAULT=...): `refuse-fsetstat`
answers every FSETSTAT with STATUS OP_UNSUPPORTED instead of passing it on (a
server that refuses it), `banner` writes shell start-up output before the
server's first byte, `cut-reply` ends the server's output in the middle of a
packet.

Two cases have no OpenSSH client: a small client here (`direct`) sends
requests that scp and sftp never send (every OpenSSH extension, and a few
mistakes) to the real sftp-server and records its real answers the same way.

Usage: scripts/capture-sftp-ref.py [CASE...]   (default: all; run from anywhere)
       scripts/capture-sftp-ref.py --seeds       (the captures as fuzz seeds)

`--seeds` rewrites each captured case as an input of the `sftp` fuzz target
(fuzz/fuzz_targets/sftp.rs) in fuzz/seeds/sftp/: one feed operation per
recorded read, in the recorded order, then an eof for each direction.
"""

import os
import shutil
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "tests", "ref", "sftp")
SCRATCH = "/tmp/scptrace-sftp-ref"
SERVER = "/usr/lib/openssh/sftp-server"
CHUNK = 65536
# Every case must stay small: the decoder's tests feed each one many times.
CASE_LIMIT = 200 * 1024

# The packet helpers and the banner are the test proxy's (tests/faults/), so
# that the faults captured here are the faults the tests inject.
sys.path.insert(0, os.path.join(ROOT, "tests", "faults"))
from sftp_proxy import BANNER, end_output, packets, status, write_all  # noqa: E402


# ---- the -S program ---------------------------------------------------------


class Log:
    """The recorded streams; one lock, so chunks.txt is one causal order."""

    def __init__(self, d):
        self.lock = threading.Lock()
        self.files = {
            "I": open(os.path.join(d, "in.bin"), "wb"),
            "O": open(os.path.join(d, "out.bin"), "wb"),
        }
        self.order = open(os.path.join(d, "chunks.txt"), "w")

    def pass_on(self, tag, data, fd):
        """Logs a chunk, then writes it on (while holding the lock, so that no
        reply to it can be logged before it)."""
        with self.lock:
            self.files[tag].write(data)
            self.files[tag].flush()
            self.order.write("%s %d\n" % (tag, len(data)))
            self.order.flush()
            write_all(fd, data)


def tee():
    d = os.environ["CAPTURE_SFTP_TEE"]
    fault = os.environ.get("FAULT", "")
    log = Log(d)
    child = subprocess.Popen(
        [SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=os.environ["CAPTURE_SFTP_HOME"]
    )
    cin, cout = child.stdin.fileno(), child.stdout.fileno()

    def upstream():
        pending = b""
        while True:
            try:
                data = os.read(0, CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            try:
                if fault != "refuse-fsetstat":
                    log.pass_on("I", data, cin)
                    continue
                # Packet by packet: an FSETSTAT is logged as sent but never
                # reaches the server; the proxy answers it instead.
                pending += data
                whole, pending = packets(pending)
                for p in whole:
                    if p[4] == 10:
                        (req_id,) = struct.unpack(">I", p[5:9])
                        with log.lock:
                            log.files["I"].write(p)
                            log.order.write("I %d\n" % len(p))
                            log.files["I"].flush()
                            log.order.flush()
                        log.pass_on("O", status(req_id, 8, b"Operation unsupported"), 1)
                    else:
                        log.pass_on("I", p, cin)
            except OSError:
                break
        child.stdin.close()

    def downstream():
        first = True
        sent = 0
        while True:
            try:
                data = os.read(cout, CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            if first and fault == "banner":
                log.pass_on("O", BANNER, 1)
            first = False
            if fault == "cut-reply" and sent + len(data) > 410:
                # The transport dies in the middle of the reply that crosses
                # byte 410 (the HANDLE after VERSION, limits and ATTRS).
                log.pass_on("O", data[: 410 - sent], 1)
                break
            sent += len(data)
            try:
                log.pass_on("O", data, 1)
            except OSError:
                break
        end_output(1)

    t = [threading.Thread(target=upstream, daemon=True), threading.Thread(target=downstream)]
    for x in t:
        x.start()
    t[1].join()
    if fault == "cut-reply":
        child.kill()
        os._exit(255)
    rc = child.wait()
    # stdin may still be open (the client waits for us): do not wait for it.
    os._exit(rc if rc >= 0 else 128 - rc)


# ---- the cases --------------------------------------------------------------


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def put(path, data, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def pattern(n, seed):
    """n deterministic bytes, text-like so the transcript heads stay readable."""
    line = ("%s line of the reference data, " % seed).encode()
    return (line * (n // len(line) + 1))[:n]


T0 = 1_700_000_000  # fixed times, so -p sessions do not change between runs


def setup_common(home, local):
    fresh(home)
    fresh(local)
    os.makedirs(os.path.join(home, "dst"))
    put(os.path.join(local, "a.txt"), pattern(21, "a"), T0)
    put(os.path.join(local, "big.bin"), pattern(40_000, "big"), T0 + 60)
    put(os.path.join(local, "tree", "one.txt"), pattern(100, "one"), T0)
    put(os.path.join(local, "tree", "sub", "two.txt"), pattern(2_000, "two"), T0)
    os.makedirs(os.path.join(local, "tree", "empty"))
    put(os.path.join(home, "src", "f.txt"), pattern(5_000, "f"), T0)
    put(os.path.join(home, "src", "tree", "x.txt"), pattern(300, "x"), T0)
    put(os.path.join(home, "src", "tree", "deeper", "y.txt"), pattern(10, "y"), T0)
    put(os.path.join(home, "notes.txt"), pattern(64, "notes"), T0)
    put(os.path.join(home, "dst", "old.txt"), pattern(3_000, "old"), T0)


SCP = ["/usr/bin/scp", "-q", "-S", os.path.abspath(__file__)]
# Small buffers and few requests: several WRITEs and READs in flight, with
# every case still far below CASE_LIMIT.
SMALL = ["-X", "buffer=8192", "-X", "nrequests=4"]

# name -> (what it shows, argv relative to the local dir, fault, check)
CASES = {
    "upload": ("one small file into an existing directory", SCP + ["a.txt", "h:dst/"], "", None),
    "upload-new-name": (
        "a file to a name that does not exist yet (STAT answered NO_SUCH_FILE)",
        SCP + ["a.txt", "h:dst/new.txt"],
        "",
        None,
    ),
    "upload-pipelined": (
        "a 40,000-byte file with 8 KiB buffers: five WRITEs, up to 4 in flight",
        SCP + SMALL + ["big.bin", "h:dst/"],
        "",
        None,
    ),
    "upload-p": ("-p: a second FSETSTAT sets the mode and times", SCP + ["-p", "a.txt", "h:dst/"], "", None),
    "upload-r": (
        "-r tree upload: REALPATH, MKDIR per directory, SETSTAT on each at the end",
        SCP + ["-r", "tree", "h:dst/"],
        "",
        None,
    ),
    "download": ("one file: LSTAT, STAT, OPEN READ, READ until EOF", SCP + ["h:src/f.txt", "."], "", None),
    "download-pipelined": (
        "the same with 1 KiB buffers: READ requests ramp up to 4 in flight",
        SCP + ["-X", "buffer=1024", "-X", "nrequests=4", "h:src/f.txt", "."],
        "",
        None,
    ),
    "download-r": ("-r tree download: OPENDIR/READDIR", SCP + ["-r", "h:src/tree", "."], "", None),
    "download-p": ("-p download", SCP + ["-p", "h:notes.txt", "."], "", None),
    "download-missing": (
        "a remote file that does not exist",
        SCP + ["h:src/missing.txt", "."],
        "",
        None,
    ),
    "upload-missing-dir": (
        "into a remote directory that does not exist",
        SCP + ["a.txt", "h:nodir/sub/"],
        "",
        None,
    ),
    "home-path": ("a ~/ path: the client sends it relative", SCP + ["h:~/notes.txt", "home-notes.txt"], "", None),
    "tilde-user": (
        "a ~root/ path: sent as expand-path@openssh.com",
        SCP + ["a.txt", "h:~root/../tmp/scptrace-sftp-ref/home/dst/"],
        "",
        None,
    ),
    "sftp-batch": (
        "sftp -b: mkdir, put, rename, ls -l, symlink, df, chmod, rm, rmdir",
        ["/usr/bin/sftp", "-q", "-S", os.path.abspath(__file__), "-b", "BATCH", "h"],
        "",
        None,
    ),
    "fault-refuse-fsetstat": (
        "a server that answers FSETSTAT with OP_UNSUPPORTED: a 21-byte upload over a "
        "3,000-byte file leaves the old tail (scp exits 0)",
        SCP + ["a.txt", "h:dst/old.txt"],
        "refuse-fsetstat",
        "old.txt",
    ),
    "fault-banner": (
        "shell start-up output before VERSION: scp says 'Received message too long 1466264675'",
        SCP + ["a.txt", "h:dst/"],
        "banner",
        None,
    ),
    "fault-cut-reply": (
        "the transport ends in the middle of a reply (byte 410 of the server's output: inside the HANDLE)",
        SCP + ["a.txt", "h:dst/"],
        "cut-reply",
        None,
    ),
}

def pkt(ty, *fields):
    body = bytes([ty])
    for f in fields:
        if isinstance(f, bytes):
            body += struct.pack(">I", len(f)) + f
        elif isinstance(f, tuple):  # (format, value): a fixed-size field
            body += struct.pack(">" + f[0], f[1])
        else:
            body += struct.pack(">I", f)
    return struct.pack(">I", len(body)) + body


def handle(reply):
    """The handle string of a HANDLE reply packet."""
    (n,) = struct.unpack(">I", reply[9:13])
    return reply[13 : 13 + n]


def ext(req_id, name, *fields):
    return pkt(200, req_id, name, *fields)


def direct_extensions(send):
    """Every OpenSSH extension and the v3 requests scp leaves out; no faults."""
    send(pkt(1, 3))
    send(ext(1, b"limits@openssh.com"))
    h = handle(send(pkt(3, 2, b"dst/c.txt", 0x1A, 4, 0o644)))
    send(pkt(6, 3, h, ("Q", 0), b"hello, copy-data\n"))
    send(ext(4, b"fsync@openssh.com", h))
    send(ext(5, b"fstatvfs@openssh.com", h))
    send(pkt(8, 6, h))
    h2 = handle(send(pkt(3, 7, b"src/f.txt", 1, 0)))
    send(ext(8, b"copy-data", h2, ("Q", 0), ("Q", 100), h, ("Q", 17)))
    send(pkt(4, 9, h2))
    send(pkt(4, 10, h))
    send(ext(11, b"hardlink@openssh.com", b"dst/c.txt", b"dst/c-link.txt"))
    send(pkt(20, 12, b"c.txt", b"dst/c-sym"))
    send(pkt(19, 13, b"dst/c-sym"))
    send(ext(14, b"lsetstat@openssh.com", b"dst/c-sym", 8, T0, T0))
    send(pkt(18, 15, b"dst/c-link.txt", b"dst/c-renamed.txt"))
    send(ext(16, b"home-directory", b"root"))
    send(ext(17, b"expand-path@openssh.com", b"~/dst"))
    send(ext(18, b"users-groups-by-id@openssh.com", struct.pack(">II", 0, 65534), struct.pack(">I", 0)))
    send(ext(19, b"statvfs@openssh.com", b"."))
    send(pkt(17, 20, b"dst/c.txt"))
    send(pkt(7, 21, b"dst/c-sym"))
    send(pkt(9, 22, b"dst/c.txt", 0xD, ("Q", 17 + 100), 0o600, T0, T0))
    send(pkt(13, 23, b"dst/c-renamed.txt"))
    send(pkt(13, 24, b"dst/c-sym"))
    h = handle(send(pkt(11, 26, b"dst")))
    send(pkt(12, 27, h))
    send(pkt(12, 28, h))
    send(pkt(4, 29, h))
    send(pkt(14, 30, b"dst/newdir", 4, 0o700))
    send(pkt(15, 31, b"dst/newdir"))
    send(pkt(16, 32, b"dst/../src"))
    send(ext(33, b"posix-rename@openssh.com", b"dst/c.txt", b"dst/d.txt"))


def direct_faults(send):
    """Mistakes a client can make, and the real server's answers to them."""
    send(pkt(1, 3))
    h = handle(send(pkt(3, 1, b"dst/old.txt", 1, 0)))
    send(pkt(4, 2, h))
    send(pkt(5, 3, h, ("Q", 0), 16))  # a handle after its CLOSE succeeded
    send(pkt(5, 4, b"\x00\x00\x00\x07", ("Q", 0), 16))  # a handle never issued
    send(ext(5, b"frobnicate@example.com", b"data"))  # an unknown extension
    send(pkt(99, 6, b"?"), reply=False)  # an unknown type: sftp-server never answers
    # sftp-server handles one packet per poll() wakeup: had the next request
    # arrived in the same read, it would wait for more input (no reply queued).
    time.sleep(0.3)
    send(pkt(17, 7, b"src/missing.txt"))
    send(pkt(3, 8, b"nodir/x", 0x1A, 0))
    send(pkt(7, 9, b"src/f.txt"))


DIRECT = {"direct-extensions": direct_extensions, "direct-faults": direct_faults}


def capture_direct(name, out, home):
    """Runs sftp-server under our own client; records as the tee does."""
    child = subprocess.Popen([SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=home)
    log = Log(out)
    rbuf = [b""]

    def read_reply():
        while True:
            whole, rest = packets(rbuf[0])
            if whole:
                rbuf[0] = rbuf[0][len(whole[0]) :]
                return whole[0]
            data = os.read(child.stdout.fileno(), CHUNK)
            if not data:
                sys.exit("%s: the server ended early" % name)
            with log.lock:
                log.files["O"].write(data)
                log.order.write("O %d\n" % len(data))
            rbuf[0] += data

    def send(p, reply=True):
        log.pass_on("I", p, child.stdin.fileno())
        return read_reply() if reply else b""

    DIRECT[name](send)
    child.stdin.close()
    while True:
        data = os.read(child.stdout.fileno(), CHUNK)
        if not data:
            break
        with log.lock:
            log.files["O"].write(data)
            log.order.write("O %d\n" % len(data))
    for f in list(log.files.values()) + [log.order]:
        f.close()
    return child.wait()


CASES["direct-extensions"] = (
    "every OpenSSH extension (copy-data, fsync, fstatvfs, hardlink, lsetstat, home-directory, "
    "expand-path, users-groups-by-id, statvfs, posix-rename) and READLINK, RENAME, SETSTAT, RMDIR",
    None,
    "",
    None,
)
CASES["direct-faults"] = (
    "a handle used after CLOSE, a handle never issued, an unknown extension, an unknown type, "
    "errors with paths",
    None,
    "",
    None,
)

BATCH = b"""mkdir made
put a.txt made/a.txt
rename made/a.txt made/b.txt
ls -l made
symlink b.txt made/link
ls -l made
df -h .
chmod 600 made/b.txt
rm made/link
rm made/b.txt
rmdir made
"""


def capture(name):
    what, argv, fault, check = CASES[name]
    home = os.path.join(SCRATCH, "home")
    local = os.path.join(SCRATCH, "local")
    setup_common(home, local)
    out = os.path.join(REF, name)
    fresh(out)
    if argv is None:
        rc = capture_direct(name, out, home)
        with open(os.path.join(out, "meta.txt"), "w") as m:
            m.write("case: %s\nshows: %s\ncommand: (the client in %s)\nexit: %d\n" % (name, what, os.path.basename(__file__), rc))
        print("%-24s sftp-server exit %d, %s" % (name, rc, what))
        return
    batch = os.path.join(SCRATCH, "batch")
    with open(batch, "wb") as f:
        f.write(BATCH)
    argv = [batch if a == "BATCH" else a for a in argv]
    env = dict(os.environ, CAPTURE_SFTP_TEE=out, CAPTURE_SFTP_HOME=home, FAULT=fault)
    p = subprocess.run(argv, cwd=local, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in ("in.bin", "out.bin"))
    if size > CASE_LIMIT:
        sys.exit("%s: %d bytes, over the %d-byte limit" % (name, size, CASE_LIMIT))
    shown = ["PROG" if a == os.path.abspath(__file__) else a for a in argv]
    with open(os.path.join(out, "meta.txt"), "w") as m:
        m.write("case: %s\n" % name)
        m.write("shows: %s\n" % what)
        m.write("command: %s\n" % " ".join(shown).replace(batch, "BATCH"))
        if fault:
            m.write("fault: %s\n" % fault)
        m.write("exit: %d\n" % p.returncode)
        for line in p.stderr.decode(errors="replace").splitlines():
            m.write("stderr: %s\n" % line)
        if check:
            data = open(os.path.join(home, "dst", check), "rb").read()
            m.write("result: dst/%s is %d bytes, starts %r\n" % (check, len(data), data[:30]))
    print("%-24s exit %d, %6d bytes, %s" % (name, p.returncode, size, what))


def seeds():
    """The captures in the fuzz target's input format (see its header)."""
    out_dir = os.path.join(ROOT, "fuzz", "seeds", "sftp")
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(os.listdir(REF)):
        d = os.path.join(REF, name)
        if not os.path.isdir(d):
            continue
        data = {"I": open(os.path.join(d, "in.bin"), "rb").read(), "O": open(os.path.join(d, "out.bin"), "rb").read()}
        pos = {"I": 0, "O": 0}
        seed = b""
        for line in open(os.path.join(d, "chunks.txt")):
            tag, n = line.split()
            n = int(n)
            chunk = data[tag][pos[tag] : pos[tag] + n]
            pos[tag] += n
            bit = 0 if tag == "I" else 1
            while chunk:
                part, chunk = chunk[:65535], chunk[65535:]
                if len(part) < 255:
                    seed += bytes([bit, len(part)])
                else:
                    seed += bytes([bit, 255]) + struct.pack("<H", len(part))
                seed += part
        seed += bytes([12, 0, 13, 0])  # eof In, eof Out
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(seed)
        print("%-24s %6d bytes" % (name, len(seed)))


def main():
    if os.environ.get("CAPTURE_SFTP_TEE"):
        tee()
        return
    if sys.argv[1:] == ["--seeds"]:
        seeds()
        return
    names = sys.argv[1:] or list(CASES)
    for n in names:
        if n not in CASES:
            sys.exit("no case %r; cases: %s" % (n, " ".join(CASES)))
        capture(n)
    with open(os.path.join(REF, "README.md"), "w") as f:
        f.write(
            "# SFTP reference sessions\n\n"
            "Captured by `scripts/capture-sftp-ref.py` from the real OpenSSH client\n"
            "(`%s`) and `%s`; see that script for the files in each directory.\n"
            "Re-run it to refresh them (the tests expect what these sessions contain).\n\n"
            % (subprocess.run(["ssh", "-V"], capture_output=True).stderr.decode().strip(), SERVER)
        )
        for n in CASES:
            f.write("- `%s`: %s\n" % (n, CASES[n][0]))


if __name__ == "__main__":
    main()
