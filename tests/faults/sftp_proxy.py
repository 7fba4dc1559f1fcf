#!/usr/bin/env python3
"""A fault between an SFTP client and a real sftp-server, for the tests.

Usage: sftp_proxy.py FAULT -- PROGRAM [ARGS...]

Runs PROGRAM (the sftp-server, or anything that speaks for it) with pipes,
relays the client's bytes (our stdin) to it and its replies to our stdout,
and injects one fault; its stderr is passed through. FAULT is one of:

  none             relay only
  refuse-fsetstat  answer every FSETSTAT with STATUS OP_UNSUPPORTED ourselves
                   (a server that refuses it; the request never reaches PROGRAM)
  banner           write shell start-up output before the server's first byte
  cut-reply        end the server's output in the middle of the first HANDLE
                   reply (the transport dies mid-packet), exit 255
  unknown-id       relabel the first EXTENDED_REPLY (the limits@openssh.com
                   answer) with an id no request has

The packet handling is the same as scripts/capture-sftp-ref.py's tee.
Exits with PROGRAM's exit status (255 for cut-reply). Standard library only.
"""

import os
import socket
import struct
import subprocess
import sys
import threading

CHUNK = 65536
BANNER = b"Welcome to the build host! Unauthorized use is prohibited.\n"
UNKNOWN_ID = 0x7777


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def end_output(fd):
    """shutdown(SHUT_WR) when fd is a socket (scp passes a socketpair), then close."""
    try:
        s = socket.socket(fileno=os.dup(fd))
        try:
            s.shutdown(socket.SHUT_WR)
        finally:
            s.close()
    except OSError:
        pass
    os.close(fd)


def packets(buf):
    """Splits whole SFTP packets off the front of buf: (packets, rest)."""
    out = []
    while len(buf) >= 4:
        (n,) = struct.unpack(">I", buf[:4])
        if len(buf) < 4 + n:
            break
        out.append(buf[: 4 + n])
        buf = buf[4 + n :]
    return out, buf


def status(req_id, code, text):
    body = struct.pack(">BII", 101, req_id, code)
    body += struct.pack(">I", len(text)) + text + struct.pack(">I", 0)
    return struct.pack(">I", len(body)) + body


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[1] != "--":
        sys.exit("usage: sftp_proxy.py FAULT -- PROGRAM [ARGS...]")
    fault, argv = args[0], args[2:]
    if fault not in ("none", "refuse-fsetstat", "banner", "cut-reply", "unknown-id"):
        sys.exit("sftp_proxy.py: unknown fault %r" % fault)
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    cin, cout = child.stdin.fileno(), child.stdout.fileno()
    out_lock = threading.Lock()  # our stdout: replies and injected answers

    def to_client(data):
        with out_lock:
            write_all(1, data)

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
                    write_all(cin, data)
                    continue
                pending += data
                whole, pending = packets(pending)
                for p in whole:
                    if len(p) >= 9 and p[4] == 10:  # FSETSTAT
                        (req_id,) = struct.unpack(">I", p[5:9])
                        to_client(status(req_id, 8, b"Operation unsupported"))
                    else:
                        write_all(cin, p)
            except OSError:
                break
        child.stdin.close()

    def downstream():
        first = True
        pending = b""
        relabelled = False
        while True:
            try:
                data = os.read(cout, CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            try:
                if first and fault == "banner":
                    to_client(BANNER)
                first = False
                if fault not in ("cut-reply", "unknown-id"):
                    to_client(data)
                    continue
                pending += data
                whole, pending = packets(pending)
                for p in whole:
                    if fault == "cut-reply" and len(p) > 5 and p[4] == 102:  # HANDLE
                        to_client(p[: len(p) // 2])
                        return True
                    if fault == "unknown-id" and not relabelled and len(p) >= 9 and p[4] == 201:
                        p = p[:5] + struct.pack(">I", UNKNOWN_ID) + p[9:]
                        relabelled = True
                    to_client(p)
            except OSError:
                break
        return False

    up = threading.Thread(target=upstream, daemon=True)
    up.start()
    cut = downstream()
    end_output(1)
    if cut:
        child.kill()
        child.wait()
        os._exit(255)
    rc = child.wait()
    # Our stdin may still be open (the client waits for us): do not wait for it.
    os._exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    main()
