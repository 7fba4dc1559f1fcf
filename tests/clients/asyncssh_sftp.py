"""Drive asyncssh's SFTP client for the SFTP end-to-end tests.

usage: asyncssh_sftp.py HOST PORT USER KEY KNOWN_HOSTS OP SRC DST
OP: put (local SRC to remote DST) or get (remote SRC to local DST); one file.
Exit status 0 on success; on failure the exception's message on stderr and 1.
"""
import asyncio
import sys

import asyncssh


async def run(host, port, user, key, known_hosts, op, src, dst):
    async with asyncssh.connect(host, port, username=user, client_keys=[key],
                                known_hosts=known_hosts, agent_path=None,
                                config=[]) as conn:
        async with conn.start_sftp_client() as sftp:
            if op == "put":
                await sftp.put(src, dst)
            elif op == "get":
                await sftp.get(src, dst)
            else:
                sys.exit(f"asyncssh_sftp.py: unknown op {op}")


def main():
    host, port, user, key, known_hosts, op, src, dst = sys.argv[1:]
    try:
        asyncio.run(run(host, int(port), user, key, known_hosts, op, src, dst))
    except (asyncssh.Error, OSError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
