#!/usr/bin/env python3
"""The swapping adversary of issue 10: a user process that, the moment a file
whose name contains MARK is created in DIR (EVENT `create`) or opened there
(EVENT `open`), exchanges DIR with a symlink to TARGET (inotify +
renameat2(RENAME_EXCHANGE), through ctypes), so that a privileged program
that goes on writing by path under DIR writes into TARGET.

Usage: swap_dir.py DIR TARGET MARK EVENT SECONDS

Prints `ready` once it watches, then `swapped NAME` (or `no-swap ERRNO`) and
exits; exits by itself after SECONDS whatever happens. Run it as the user who
owns DIR's parent (the test runs it as `nobody`).
"""
import ctypes
import errno
import os
import select
import struct
import sys
import time

IN_CREATE = 0x100
IN_MOVED_TO = 0x80
IN_OPEN = 0x20
IN_CLOEXEC = 0o2000000
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def main():
    watched, target, mark = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    mask = {"create": IN_CREATE | IN_MOVED_TO, "open": IN_OPEN}[sys.argv[4]]
    seconds = float(sys.argv[5])
    deadline = time.monotonic() + seconds
    libc = ctypes.CDLL(None, use_errno=True)
    link = watched.rstrip("/") + ".swap"
    os.symlink(target, link)
    fd = libc.inotify_init1(IN_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(fd, watched.encode(), mask) < 0:
        print("no-watch", ctypes.get_errno(), flush=True)
        return 1
    print("ready", flush=True)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print("timeout", flush=True)
            return 0
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        buf = os.read(fd, 65536)
        pos = 0
        while pos + 16 <= len(buf):
            _wd, _mask, _cookie, n = struct.unpack_from("iIII", buf, pos)
            name = buf[pos + 16:pos + 16 + n].rstrip(b"\0")
            pos += 16 + n
            if mark in name:
                rc = libc.renameat2(AT_FDCWD, watched.encode(), AT_FDCWD, link.encode(), RENAME_EXCHANGE)
                if rc == 0:
                    print("swapped", name.decode(errors="replace"), flush=True)
                else:
                    print("no-swap", errno.errorcode.get(ctypes.get_errno(), "?"), flush=True)
                return 0


if __name__ == "__main__":
    sys.exit(main())
