"""Drive asyncssh's scp client for the end-to-end tests.

usage: asyncssh_scp.py HOST PORT USER KEY KNOWN_HOSTS OP SRC... DST
OP: put, get, put-r, get-r ("-r": recursive, with times and modes preserved).
Exit status 0 on success; on failure the exception's message on stderr and 1.
"""
import asyncio
import sys

import asyncssh


async def run(host, port, user, key, known_hosts, op, srcs, dst):
    recurse = op.endswith("-r")
    async with asyncssh.connect(host, port, username=user, client_keys=[key],
                                known_hosts=known_hosts, agent_path=None,
                                config=[]) as conn:
        if op.startswith("put"):
            await asyncssh.scp(srcs, (conn, dst), recurse=recurse, preserve=recurse)
        elif op.startswith("get"):
            await asyncssh.scp([(conn, s) for s in srcs], dst,
                               recurse=recurse, preserve=recurse)
        else:
            sys.exit(f"asyncssh_scp.py: unknown op {op}")


def main():
    host, port, user, key, known_hosts, op, *paths = sys.argv[1:]
    *srcs, dst = paths
    try:
        asyncio.run(run(host, int(port), user, key, known_hosts, op, srcs, dst))
    except (asyncssh.Error, OSError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
