#!/usr/bin/env bash
# Install the system packages the test suite / demo need, only when missing.
#
#   tools/ensure-deps.sh [postgres] [nginx] [chromium] [venv] [make]
#
# Already installed -> no apt at all. Missing -> one `apt-get update`, then one
# `apt-get install` (as root; through sudo when available; otherwise fail with
# a one-line reason). Services shipped by the packages are NOT started: the
# tests run their own instances on free loopback ports.
set -euo pipefail

usage() { echo "usage: $0 [postgres] [nginx] [chromium] [venv] [make]" >&2; exit 2; }
[ $# -gt 0 ] || usage

# Prints 0 (present) or 1 (missing) for one dependency name.
present() {
    case "$1" in
        postgres)
            local d
            for d in /usr/lib/postgresql/*/bin; do
                [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_ctl" ] && return 0
            done
            return 1 ;;
        nginx)    [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 ;;
        chromium) [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 ;;
        # Debian ships ensurepip (which venv needs) in python3-venv.
        venv)     python3 -c 'import ensurepip, venv' >/dev/null 2>&1 ;;
        make)     command -v make >/dev/null 2>&1 ;;
        *) echo "ensure-deps: unknown dependency '$1' (known: postgres nginx chromium venv make)" >&2; exit 2 ;;
    esac
}

package_of() {
    case "$1" in
        postgres) echo postgresql ;;
        nginx)    echo nginx ;;
        chromium) echo chromium ;;
        venv)     echo python3-venv ;;
        make)     echo make ;;
    esac
}

missing=()
for dep in "$@"; do
    present "$dep" || missing+=("$(package_of "$dep")")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "ensure-deps: already installed: $*"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        echo "ensure-deps: installing ${missing[*]} with sudo" >&2
        # -n: never hang waiting for a password when there is no terminal.
        if [ -t 0 ]; then exec sudo "$0" "$@"; else exec sudo -n "$0" "$@"; fi
    fi
    echo "ensure-deps: missing system packages (${missing[*]}); run 'sudo apt-get install ${missing[*]}' or run as root" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-deps: missing system packages (${missing[*]}) and no apt-get on this machine; install them by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Keep package maintainer scripts from starting system-wide PostgreSQL/nginx
# services we would then leave running (policy-rc.d exit 101 = "not allowed").
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
start=$(date +%s)
echo "ensure-deps: apt-get update" >&2
apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null
echo "ensure-deps: apt-get install ${missing[*]}" >&2
apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" >/dev/null
echo "ensure-deps: installed ${missing[*]} in $(( $(date +%s) - start ))s" >&2

for dep in "$@"; do
    if ! present "$dep"; then
        echo "ensure-deps: '$dep' still missing after installing $(package_of "$dep")" >&2
        exit 1
    fi
done
