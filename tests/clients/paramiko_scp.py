"""Drive the Python `scp` package (over paramiko) for the end-to-end tests.

usage: paramiko_scp.py HOST PORT USER KEY KNOWN_HOSTS OP SRC... DST
OP: put, get, put-r, get-r ("-r": recursive, with times preserved).
Exit status 0 on success; on failure the exception's message on stderr and 1.
"""
import sys

import paramiko
from scp import SCPClient, SCPException


def main():
    host, port, user, key, known_hosts, op, *paths = sys.argv[1:]
    *srcs, dst = paths
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host, int(port), user, key_filename=key,
                   look_for_keys=False, allow_agent=False)
    recursive = op.endswith("-r")
    try:
        with SCPClient(client.get_transport()) as scp:
            if op.startswith("put"):
                scp.put(srcs, dst, recursive=recursive, preserve_times=recursive)
            elif op.startswith("get"):
                scp.get(srcs[0] if len(srcs) == 1 else srcs, dst,
                        recursive=recursive, preserve_times=recursive)
            else:
                sys.exit(f"paramiko_scp.py: unknown op {op}")
    except SCPException as e:
        print(f"SCPException: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        client.close()


if __name__ == "__main__":
    main()
