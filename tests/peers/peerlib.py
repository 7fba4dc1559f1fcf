"""Plumbing shared by the scripted SCP peers in this directory (stdlib only).

Each peer is a small client that starts the real scp in server mode
(`scp -t DIR` or `scp -f PATHS`), either through `scptrace run -o TRANSCRIPT
-- scp ...` (the default) or directly (`--plain`), and speaks the legacy SCP
protocol on its stdin and stdout following a fixed script, including one
deliberate misbehaviour. It exits 0 when scp answered as the script expects
(the answers of OpenSSH 9.2's scp are what the scripts expect), 1 when it did
not, 2 on a setup error or a timeout.

Determinism: bytes a peer sends "at once" are written into the stdin pipe
BEFORE the program is started (see `Session(early=...)`), so the relay reads
them, in one read, before scp exists, let alone answers. Bytes the peer sends
together later go out in ONE write() (atomic on a pipe for up to PIPE_BUF
bytes), so the relay reads them in one read.

No read ever blocks without a bound: every wait is a select() with the step
timeout (`--step-timeout`, 10 s) and an overall deadline (`--timeout`, 30 s);
on either, the process group the peer started is killed by its id and the
peer exits 2.

Everything a run produced lands in WORKDIR:
  src/            what the peer uploads from / scp -f reads (built by the peer)
  dst/            the upload target / where a download peer writes what it got
  result.json     {"peer", "mode", "argv", "exit", "stderr", "received", "ok",
                   "failures", "notes"}; stderr and received (all of scp's
                   stdout) escaped as transcripts escape bytes
  transcript.log  the transcript (traced runs, unless -o says otherwise)
Paths given to scp are relative to WORKDIR (its working directory), so
transcripts and messages do not depend on where WORKDIR is.
"""

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

PIPE_BUF = 4096


def escape(data):
    """Bytes escaped the way scptrace transcripts escape them (design §3)."""
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0:
            out.append("\\0")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x09:
            out.append("\\t")
        elif 0x20 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


class PeerError(Exception):
    """The run could not go on (timeout, EOF too early, broken pipe)."""


def parse_args(description):
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdir", help="an empty (or missing) directory for this run")
    p.add_argument("--plain", action="store_true", help="run scp directly, without scptrace")
    p.add_argument(
        "--scptrace",
        default=os.environ.get("SCPTRACE_BIN") or "scptrace",
        help="the scptrace binary (default $SCPTRACE_BIN, else scptrace on PATH)",
    )
    p.add_argument("--scp", default="scp", help="the scp program (default: scp, as found on PATH)")
    p.add_argument("-o", "--transcript", help="transcript path (default WORKDIR/transcript.log)")
    p.add_argument("--framing", choices=["message", "raw"], help="passed to scptrace run")
    p.add_argument("--data", choices=["head", "none", "full"], help="passed to scptrace run")
    p.add_argument("--timeout", type=float, default=30.0, help="overall deadline, seconds")
    p.add_argument("--step-timeout", type=float, default=10.0, help="deadline of each wait, seconds")
    return p.parse_args()


def child_env(workdir):
    """Our environment without SCPTRACE_* (so only our flags count), no user
    config file, and the C locale (scp's strerror() texts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCPTRACE_")}
    env["XDG_CONFIG_HOME"] = os.path.join(workdir, ".config")
    env["XDG_STATE_HOME"] = os.path.join(workdir, ".state")
    env["LC_ALL"] = "C"
    return env


class Session:
    """scp (traced or plain) with piped stdio, driven step by step."""

    def __init__(self, args, peer, scp_args, early=b""):
        self.args = args
        self.peer = peer
        self.workdir = os.path.abspath(args.workdir)
        self.received = bytearray()  # all of scp's stdout
        self.pending = bytearray()  # received but not yet consumed
        self.stderr = bytearray()
        self.out_eof = False
        self.err_eof = False
        self.failures = []
        self.notes = []
        self.deadline = time.monotonic() + args.timeout
        self.exit = None
        if args.plain:
            scp = shutil.which(args.scp) if os.sep not in args.scp else args.scp
            if scp is None:
                raise PeerError("no %s on PATH" % args.scp)
            argv = [args.scp] + scp_args
            executable = scp
        else:
            transcript = args.transcript or os.path.join(self.workdir, "transcript.log")
            self.transcript = os.path.abspath(transcript)
            argv = [args.scptrace, "run", "-o", self.transcript]
            if args.framing:
                argv += ["--framing", args.framing]
            if args.data:
                argv += ["--data", args.data]
            argv += ["--", args.scp] + scp_args
            executable = None
        self.argv = argv
        r, w = os.pipe()
        if early:
            # In the pipe before the program starts: the relay's first read
            # of its stdin returns exactly these bytes, before scp has run.
            assert len(early) <= PIPE_BUF, "early bytes must fit one atomic pipe write"
            n = os.write(w, early)
            assert n == len(early)
        try:
            self.proc = subprocess.Popen(
                argv,
                executable=executable,
                stdin=r,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.workdir,
                env=child_env(self.workdir),
                start_new_session=True,  # its own process group, killed by id on timeout
            )
        finally:
            os.close(r)
        self.stdin = w
        self.out = self.proc.stdout.fileno()
        self.err = self.proc.stderr.fileno()

    # ------------------------------------------------------------- low level

    def _wait_input(self, what):
        """Reads whatever scp has written next (stdout or stderr); raises on
        the step timeout or the deadline."""
        fds = [fd for fd, eof in ((self.out, self.out_eof), (self.err, self.err_eof)) if not eof]
        if not fds:
            return False
        left = min(self.args.step_timeout, self.deadline - time.monotonic())
        if left <= 0:
            raise PeerError("deadline passed while waiting for %s" % what)
        ready, _, _ = select.select(fds, [], [], left)
        if not ready:
            raise PeerError(
                "timed out after %.1f s waiting for %s; unconsumed stdout %r"
                % (left, what, escape(self.pending[-80:]))
            )
        for fd in ready:
            chunk = os.read(fd, 65536)
            if fd == self.out:
                if chunk:
                    self.received += chunk
                    self.pending += chunk
                else:
                    self.out_eof = True
            else:
                if chunk:
                    self.stderr += chunk
                else:
                    self.err_eof = True
        return True

    def send(self, data, what="bytes"):
        """Writes `data` in ONE write() (so the relay reads it in one read)."""
        if self.stdin is None:
            raise PeerError("sending %s after closing stdin" % what)
        assert len(data) <= PIPE_BUF, "keep one send within one atomic pipe write"
        try:
            n = os.write(self.stdin, data)
        except BrokenPipeError:
            raise PeerError("broken pipe sending %s (scp gone)" % what)
        if n != len(data):
            raise PeerError("short write sending %s: %d of %d bytes" % (what, n, len(data)))

    def close_stdin(self):
        if self.stdin is not None:
            os.close(self.stdin)
            self.stdin = None

    # ------------------------------------------------------------ reading

    def read_exact(self, n, what):
        while len(self.pending) < n:
            if self.out_eof:
                raise PeerError(
                    "EOF on scp's stdout waiting for %s (%d of %d bytes: %r)"
                    % (what, len(self.pending), n, escape(self.pending))
                )
            self._wait_input(what)
        data = bytes(self.pending[:n])
        del self.pending[:n]
        return data

    def read_line(self, what):
        while b"\n" not in self.pending:
            if self.out_eof:
                raise PeerError("EOF on scp's stdout waiting for %s (got %r)" % (what, escape(self.pending)))
            if len(self.pending) > 4096:
                raise PeerError("no newline in 4 KiB waiting for %s" % what)
            self._wait_input(what)
        i = self.pending.index(b"\n") + 1
        data = bytes(self.pending[:i])
        del self.pending[:i]
        return data

    def read_reply(self, what):
        """One reply as scp -t writes it: `\\0`, or `\\x01`/`\\x02` + text + `\\n`."""
        b = self.read_exact(1, what)
        if b == b"\0":
            return b
        return b + self.read_line(what)

    def read_to_eof(self, what="EOF"):
        """Everything else scp writes on stdout, up to its EOF (and stderr's)."""
        while not (self.out_eof and self.err_eof):
            self._wait_input(what)
        data = bytes(self.pending)
        self.pending.clear()
        return data

    def wait(self):
        """Closes stdin, drains stdout and stderr, and waits for the exit."""
        self.close_stdin()
        rest = self.read_to_eof("the end of scp's output")
        if rest:
            self.notes.append("unread output at the end: %r" % escape(rest))
        left = max(0.1, min(self.args.step_timeout, self.deadline - time.monotonic()))
        try:
            self.exit = self.proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            raise PeerError("scp did not exit within %.1f s" % left)
        return self.exit

    def kill(self):
        """Kills the process group this session started (by its id)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    # ------------------------------------------------------------ checking

    def expect(self, got, want, what):
        if got != want:
            self.failures.append("%s: got %r, expected %r" % (what, escape(got), escape(want)))
        return got == want

    def expect_true(self, cond, what):
        if not cond:
            self.failures.append(what)
        return cond

    def expect_exit(self, code):
        self.expect_true(self.exit == code, "scp exit status %r, expected %d" % (self.exit, code))


def run_peer(description, script):
    """Parses the arguments, prepares WORKDIR (src/, dst/), runs
    `script(args, workdir) -> Session` and writes result.json; exits 0 if the
    conversation went as scripted."""
    args = parse_args(description)
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    if not args.plain and os.sep not in args.scptrace and shutil.which(args.scptrace) is None:
        print("no scptrace binary %r (give --scptrace or $SCPTRACE_BIN)" % args.scptrace, file=sys.stderr)
        sys.exit(2)
    peer = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    holder = {}
    error = None
    try:
        script(args, workdir, holder)
    except PeerError as e:
        error = str(e)
    finally:
        s = holder.get("session")
        if s is not None:
            s.close_stdin()
            s.kill()
    s = holder.get("session")
    result = {
        "peer": peer,
        "mode": "plain" if args.plain else "traced",
        "argv": s.argv if s else None,
        "exit": s.proc.returncode if s else None,
        "stderr": escape(s.stderr) if s else "",
        "received": escape(s.received) if s else "",
        "ok": error is None and s is not None and not s.failures,
        "error": error,
        "failures": s.failures if s else [],
        "notes": s.notes if s else [],
    }
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    mode = result["mode"]
    if error is not None:
        print("%s (%s): ERROR %s" % (peer, mode, error), file=sys.stderr)
        sys.exit(2)
    if result["failures"]:
        for line in result["failures"]:
            print("%s (%s): %s" % (peer, mode, line), file=sys.stderr)
        sys.exit(1)
    print("%s (%s): ok, scp exit %s" % (peer, mode, result["exit"]))
    sys.exit(0)


# --------------------------------------------------------------- file trees


def put(path, data, mode=0o644, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def noise(n, seed):
    """Deterministic pseudo-random bytes (xorshift32)."""
    x = seed or 1
    out = bytearray()
    while len(out) < n:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += x.to_bytes(4, "little")
    return bytes(out[:n])


def count_tree(root):
    """(directories including root, regular files) under root."""
    dirs, files = 0, 0
    for _, dnames, fnames in os.walk(root):
        dirs += 1
        files += len(fnames)
    return dirs, files


def c_record(mode, data, name):
    return b"C%04o %d %s\n" % (mode, len(data), name)


# --------------------------------------------------------------- a download sink


class SinkWriter:
    """Writes what a download delivers under a local directory, following
    D/E (a directory stack) and T (times for the next C or D, applied when
    the file is complete or the directory ends)."""

    def __init__(self, root):
        self.stack = [root]
        self.times = None
        self.dir_times = []

    def record(self, line):
        """Takes one record line (with its newline); returns ("C", path, size),
        ("D", path), ("E", path), ("T", None) or ("?", None)."""
        kind = line[:1]
        body = line[1:-1]
        if kind == b"T":
            f = body.split(b" ")
            self.times = (int(f[2]), int(f[0]))  # atime, mtime
            return ("T", None)
        if kind in (b"C", b"D"):
            mode_s, size_s, name = body.split(b" ", 2)
            path = os.path.join(self.stack[-1], os.fsdecode(name))
            mode = int(mode_s, 8)
            if kind == b"D":
                os.makedirs(path, exist_ok=True)
                os.chmod(path, mode | 0o700)
                self.stack.append(path)
                self.dir_times.append((path, mode, self.times))
                self.times = None
                return ("D", path)
            self.file = (path, mode, self.times)
            self.times = None
            return ("C", path, int(size_s))
        if kind == b"E":
            path = self.stack.pop()
            p, mode, times = self.dir_times.pop()
            os.chmod(p, mode)
            if times:
                os.utime(p, times)
            return ("E", path)
        return ("?", None)

    def data(self, data):
        path, mode, times = self.file
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        if times:
            os.utime(path, times)
