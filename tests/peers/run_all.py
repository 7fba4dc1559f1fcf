#!/usr/bin/env python3
"""Runs every scripted peer plain, traced N times (default framing) and
traced once with `--framing raw --data full`; compares each traced run with
the plain one (peer verdict, scp's exit status, stderr and stdout bytes,
the files), counts the violations, and optionally saves the raw session as
a reference case.

    tests/peers/run_all.py --scptrace target/release/scptrace [--runs 5] \\
        [--out tests/ref] [--only NAME]

With --out DIR: DIR/peer-<name>/{transcript.log,README,before.txt} and
DIR/peers-figures.md (the table for BEFORE.md). Without it, the table is
printed only. Exit status 1 if a traced run differed from the plain one or
a peer found scp answering other than scripted.
"""

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

PEERS = [
    ("a", "late_ack_upload"),
    ("b", "acks_up_front_download"),
    ("c", "fatal_at_once"),
    ("d", "ack_extra_bytes_download"),
    ("e", "two_warnings_download"),
    ("f", "dropbear_extra_warning"),
    ("g", "refused_pipelined_upload"),
]

# What issue 9's decoder must say (tests/it/peers.rs pins the same).
EXPECTED = {
    "late_ack_upload": ["data-before-ack"],
    "acks_up_front_download": ["acks-ahead"],
    "fatal_at_once": [],
    "ack_extra_bytes_download": ["bad-ack"],
    "two_warnings_download": ["extra-reply"],
    "dropbear_extra_warning": ["extra-reply"],
    "refused_pipelined_upload": ["data-before-ack"],
}


def snapshot(root):
    """{relative path: (kind, mode, sha256)} under root."""
    snap = {}
    if not os.path.exists(root):
        return snap
    for d, dnames, fnames in os.walk(root):
        for n in dnames:
            p = os.path.join(d, n)
            snap[os.path.relpath(p, root)] = ("dir", oct(os.stat(p).st_mode & 0o7777), "")
        for n in fnames:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                h = hashlib.sha256(f.read()).hexdigest()
            snap[os.path.relpath(p, root)] = ("file", oct(os.stat(p).st_mode & 0o7777), h)
    return snap


def run(cmd, cwd=None, timeout=60):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def run_peer(args, name, workdir, traced, extra=()):
    cmd = [sys.executable, os.path.join(HERE, name + ".py")]
    cmd += ["--scptrace", args.scptrace] if traced else ["--plain"]
    cmd += list(extra) + [workdir]
    code, out, err = run(cmd, timeout=90)
    with open(os.path.join(workdir, "result.json")) as f:
        result = json.load(f)
    return {"peer_exit": code, "peer_out": out, "peer_err": err, "result": result,
            "dst": snapshot(os.path.join(workdir, "dst"))}


def check(args, transcript):
    """`scptrace check transcript.log` in its directory: (output, exit)."""
    code, out, err = run([args.scptrace, "check", "--color", "never", os.path.basename(transcript)],
                         cwd=os.path.dirname(transcript))
    return out + err, code


def names_of(text):
    names = []
    for line in text.splitlines():
        i = line.find("!! ")
        if i >= 0:
            names.append(line[i + 3:].split(":", 1)[0].strip())
    return names


def counts(names):
    if not names:
        return "none"
    c = {}
    for n in names:
        c[n] = c.get(n, 0) + 1
    return ", ".join("%s ×%d" % (n, k) for n, k in sorted(c.items(), key=lambda x: (-x[1], x[0])))


def differences(plain, traced):
    d = []
    if plain["peer_exit"] != traced["peer_exit"]:
        d.append("peer exit %d vs %d (%s)" % (plain["peer_exit"], traced["peer_exit"], traced["peer_err"].strip()))
    for k in ("exit", "stderr", "received"):
        if plain["result"][k] != traced["result"][k]:
            d.append("scp %s %r vs %r" % (k, plain["result"][k], traced["result"][k]))
    if plain["dst"] != traced["dst"]:
        d.append("dst/ differs")
    return d


def readme(name, letter, plain, raw_cmd, workdir):
    with open(os.path.join(HERE, name + ".py")) as f:
        desc = ast.get_docstring(ast.parse(f.read()))
    r = plain["result"]
    argv = r["argv"]
    src = []
    for rel, (kind, mode, h) in sorted(snapshot(os.path.join(workdir, "src")).items()):
        if kind == "file":
            size = os.path.getsize(os.path.join(workdir, "src", rel))
            src.append("  src/%s  %d B, mode %s" % (rel, size, mode[2:].rjust(4, "0")))
        else:
            src.append("  src/%s/  mode %s" % (rel, mode[2:].rjust(4, "0")))
    return (
        "peer-%s: scripted peer %s (%s), tests/peers/%s.py\n\n"
        "recorded with:  %s\n"
        "                (in a temporary WORKDIR; scp runs there, with relative paths)\n"
        "scp command:    %s\n"
        "plain scp:      exit %s, stderr %r, the same as traced (peer verdict, exit status,\n"
        "                stderr, every byte scp wrote, the files under dst/)\n"
        "transcript:     scptrace run --framing raw --data full: one line per read, every byte\n\n"
        "files on the source side (src/):\n%s\n\n"
        "what the peer does (its docstring):\n\n%s\n\n"
        "before.txt: the output of today's `scptrace check transcript.log`, in this directory.\n"
        "The verdict issue 9's decoder must give: %s (tests/it/peers.rs).\n"
        % (letter, letter, name, name, " ".join(raw_cmd), " ".join(argv[argv.index("--") + 1:]) if "--" in argv else " ".join(argv),
           r["exit"], r["stderr"], "\n".join(src) or "  (none)", desc,
           json.dumps(EXPECTED[name]))
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scptrace", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("--only")
    ap.add_argument("--keep", action="store_true", help="keep the work directories (printed)")
    a = ap.parse_args()
    a.scptrace = os.path.abspath(a.scptrace)
    tmp = tempfile.mkdtemp(prefix="scptrace-peers-")
    rows = [
        "| peer | `!!` lines (live) | check exit | violations (live transcript) | re-decoded from the raw transcript (before.txt) | transfer | across %d runs |" % a.runs,
        "|---|---|---|---|---|---|---|",
    ]
    problems = []
    try:
        for letter, name in PEERS:
            if a.only and a.only not in name:
                continue
            base = os.path.join(tmp, name)
            plain = run_peer(a, name, os.path.join(base, "plain"), False)
            if plain["peer_exit"] != 0:
                problems.append("%s: plain run: %s" % (name, plain["peer_err"].strip()))
            variants = {}
            first = None
            diffs = []
            for i in range(a.runs):
                w = os.path.join(base, "traced-%d" % i)
                t = run_peer(a, name, w, True)
                diffs += ["run %d: %s" % (i + 1, d) for d in differences(plain, t)]
                tpath = os.path.join(w, "transcript.log")
                with open(tpath) as f:
                    bangs = sum(1 for l in f if l.startswith("!! "))
                report, code = check(a, tpath)
                key = (bangs, code, counts(names_of(report)))
                variants[key] = variants.get(key, 0) + 1
                if first is None:
                    first = key
            w = os.path.join(base, "raw")
            raw_flags = ["--framing", "raw", "--data", "full"]
            raw = run_peer(a, name, w, True, raw_flags)
            diffs += ["raw run: %s" % d for d in differences(plain, raw)]
            tpath = os.path.join(w, "transcript.log")
            report, code = check(a, tpath)
            redecoded = "%s (exit %d)" % (counts(names_of(report)), code)
            if a.out:
                d = os.path.join(a.out, "peer-" + name)
                os.makedirs(d, exist_ok=True)
                shutil.copyfile(tpath, os.path.join(d, "transcript.log"))
                size = os.path.getsize(tpath)
                if size > 100 * 1024:
                    problems.append("%s: transcript is %d bytes" % (name, size))
                with open(os.path.join(d, "before.txt"), "w") as f:
                    f.write("$ scptrace check transcript.log\n%s[exit status %d]\n" % (report, code))
                raw_cmd = ["python3", "tests/peers/%s.py" % name, "--scptrace", "scptrace"] + raw_flags + ["WORKDIR"]
                with open(os.path.join(d, "README"), "w") as f:
                    f.write(readme(name, letter, plain, raw_cmd, w))
            problems += ["%s: %s" % (name, x) for x in diffs]
            r = plain["result"]
            transfer = ("same as plain (scp exit %s%s)" % (r["exit"], ", stderr empty" if not r["stderr"] else ", same stderr")
                        if not diffs else "DIFFERS: " + "; ".join(diffs))
            if len(variants) == 1:
                vary = "same in all %d" % a.runs
            else:
                vary = "VARIES: " + "; ".join("%d× %d lines, exit %d, %s" % (n, k[0], k[1], k[2])
                                              for k, n in sorted(variants.items(), key=lambda x: -x[1]))
            bangs, code, names = max(variants.items(), key=lambda x: x[1])[0]
            rows.append("| %s. %s | %d | %d | %s | %s | %s | %s |" % (letter, name, bangs, code, names, redecoded, transfer, vary))
            print("done %s" % name, file=sys.stderr)
    finally:
        if a.keep:
            print("work directories kept under %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    table = "\n".join(rows) + "\n"
    if a.out:
        with open(os.path.join(a.out, "peers-figures.md"), "w") as f:
            f.write(table)
    print(table)
    for p in problems:
        print("PROBLEM " + p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
