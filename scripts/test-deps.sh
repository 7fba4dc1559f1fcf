#!/usr/bin/env bash
# Installs what the end-to-end tests (tests/it/e2e.rs) need, and only what is
# missing, so that a second run takes a fraction of a second.
#
#   Debian packages (as root, with apt): openssh-server (sshd for the loopback
#   harness), openssh-client, putty-tools (pscp, puttygen), curl with libssh2
#   (scp://), ruby-net-scp with the ed25519 helpers net-ssh needs for ed25519
#   keys, dropbear-bin (dbclient, dropbearconvert), time (/usr/bin/time) and
#   man-db (man -l renders the generated pages in tests/it/man.rs).
#   Python packages (tests/clients/requirements.txt): a venv under the build
#   directory, $CARGO_TARGET_DIR or target/, at test-venv/ (override with
#   SCPTRACE_TEST_VENV).
#
# Never starts, stops or reconfigures a system sshd: while apt installs, a
# policy-rc.d that answers 101 ("action forbidden") keeps maintainer scripts
# from starting services; it is removed again if this script created it.
# Without root or apt, prints one line naming what is missing and exits 0: the
# tests then skip (or fail, under SCPTRACE_REQUIRE_E2E=1).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
venv=${SCPTRACE_TEST_VENV:-$target/test-venv}
requirements=$root/tests/clients/requirements.txt

say() { printf 'test-deps: %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------

# package name -> a file it provides that the tests use (a quick presence check)
declare -A apt_files=(
    [openssh-server]=/usr/sbin/sshd
    [openssh-client]=/usr/bin/ssh-keygen
    [putty-tools]=/usr/bin/pscp
    [curl]=/usr/bin/curl
    [ruby-net-scp]=/usr/share/rubygems-integration/all/gems/net-scp-4.0.0/lib/net/scp.rb
    [ruby-ed25519]=
    [ruby-bcrypt-pbkdf]=
    [dropbear-bin]=/usr/bin/dbclient
    [time]=/usr/bin/time
    [man-db]=/usr/bin/man
)
apt_order=(openssh-server openssh-client putty-tools curl ruby-net-scp ruby-ed25519
    ruby-bcrypt-pbkdf dropbear-bin time man-db)

# One dpkg-query for all of them; without dpkg, fall back to the files.
missing_apt=()
if command -v dpkg-query >/dev/null; then
    ok=" $(dpkg-query -W -f='${Package}=${db:Status-Abbrev} ' "${apt_order[@]}" 2>/dev/null | sed 's/=ii */=ok /g' || true) "
    for pkg in "${apt_order[@]}"; do
        [[ $ok == *" $pkg=ok "* ]] || missing_apt+=("$pkg")
    done
else
    for pkg in "${apt_order[@]}"; do
        file=${apt_files[$pkg]}
        [[ -n $file && -e $file ]] || missing_apt+=("$pkg")
    done
fi

curl_has_scp() { command -v curl >/dev/null && curl -V 2>/dev/null | grep -q '^Protocols:.* scp\b'; }

no_root_reason=
if ((${#missing_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        no_root_reason="not root"
    elif ! command -v apt-get >/dev/null; then
        no_root_reason="no apt-get"
    fi
fi

if ((${#missing_apt[@]})) && [[ -z $no_root_reason ]]; then
    # Keep maintainer scripts (openssh-server's postinst) from starting services.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [[ ! -e $policy && ! -L $policy ]]; then
        printf '#!/bin/sh\n# temporary, from scptrace scripts/test-deps.sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt=(apt-get -q -y -o DPkg::Lock::Timeout=300)
    say "installing ${missing_apt[*]}"
    log=$(mktemp)
    if "${apt[@]}" update >"$log" 2>&1 &&
        "${apt[@]}" install --no-install-recommends "${missing_apt[@]}" >>"$log" 2>&1; then
        say "installed ${missing_apt[*]}"
        missing_apt=()
    else
        tail -n 5 "$log" | sed 's/^/test-deps: apt: /' >&2
        no_root_reason="apt-get failed"
    fi
    rm -f "$log"
    if [[ -n $made_policy ]]; then
        rm -f "$policy"
        trap - EXIT
    fi
fi

# --- Python venv --------------------------------------------------------------

# The machine's own python3 first (a pyenv shim may vanish or change version).
python=
for candidate in /usr/bin/python3 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
        python=$(command -v "$candidate")
        break
    fi
done

# What the venv was made from: the requirements and the interpreter.
stamp() { cat "$requirements"; printf '# python: %s\n' "$python"; }

venv_ok() {
    [[ -x $venv/bin/python ]] &&
        stamp | cmp -s - "$venv/requirements.installed" &&
        "$venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ("paramiko", "scp", "asyncssh")))' 2>/dev/null
}

make_venv() {
    # Only ever remove a directory that is a venv.
    if [[ -e $venv && ! -e $venv/pyvenv.cfg ]] && [[ -n $(ls -A "$venv" 2>/dev/null) ]]; then
        echo "test-deps: $venv exists and is not a venv; not touching it" >&2
        return 1
    fi
    rm -rf "$venv" && mkdir -p "$(dirname "$venv")" &&
        "$python" -m venv "$venv" &&
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" &&
        stamp >"$venv/requirements.installed"
}

missing_py=
if [[ -z $python ]]; then
    venv_ok || missing_py="python3 with venv"
elif ! venv_ok; then
    say "creating $venv (paramiko, scp, asyncssh)"
    if make_venv; then
        say "installed $("$venv/bin/python" -m pip freeze 2>/dev/null |
            grep -iE '^(paramiko|scp|asyncssh)==' | tr '\n' ' ')into $venv"
    else
        missing_py="python packages (venv or pip install failed)"
    fi
fi

# --- report -------------------------------------------------------------------

missing=("${missing_apt[@]}")
[[ -n $missing_py ]] && missing+=("$missing_py")
if ! curl_has_scp && [[ ! " ${missing[*]} " == *" curl "* ]]; then
    missing+=("curl with scp:// (libssh2)")
fi

if ((${#missing[@]})); then
    say "missing ${missing[*]}${no_root_reason:+ ($no_root_reason)}; the end-to-end tests will skip them"
else
    say "all present"
fi
exit 0
