#!/bin/sh
# Install, with apt-get, the Debian 12 packages that building and testing
# dcevents need and that are not installed yet.  Run as root.
set -eu
pkgs="build-essential autoconf automake libtool pkg-config
libevent-dev libwslay-dev libyajl-dev libssl-dev libsystemd-dev
openssl python3 python3-websockets python3-websocket python3-systemd
rsyslog rsyslog-openssl rsyslog-relp systemd mandoc procps python3-seccomp strace
groff-base clang libclang-rt-14-dev gdb"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
