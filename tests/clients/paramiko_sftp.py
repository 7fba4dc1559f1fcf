"""Drive paramiko's SFTP client for the SFTP end-to-end tests.

usage: paramiko_sftp.py HOST PORT USER KEY KNOWN_HOSTS OP SRC DST
OP: put (local SRC to remote DST) or get (remote SRC to local DST); one file.
Exit status 0 on success; on failure the exception's message on stderr and 1.
"""
import sys

import paramiko


def main():
    host, port, user, key, known_hosts, op, src, dst = sys.argv[1:]
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host, int(port), user, key_filename=key,
                   look_for_keys=False, allow_agent=False)
    try:
        sftp = client.open_sftp()
        if op == "put":
            sftp.put(src, dst)
        elif op == "get":
            sftp.get(src, dst)
        else:
            sys.exit(f"paramiko_sftp.py: unknown op {op}")
        sftp.close()
    except (OSError, paramiko.SSHException) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        client.close()


if __name__ == "__main__":
    main()
