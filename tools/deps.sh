#!/bin/sh
# Install, with apt-get, the Debian 12 packages that building and testing
# dcevents need and that are not installed yet.  Run as root.
set -eu
pkgs="build-essential autoconf automake libtool pkg-config
libevent-dev libwslay-dev libyajl-dev libssl-dev libsystemd-dev
openssl python3 python3-websockets python3-websocket python3-systemd
rsyslog rsyslog-openssl rsyslog-relp systemd mandoc procps python3-seccomp strace
groff-base clang libclang-rt-14-dev gdb libsqlite3-dev sqlite3
librdkafka-dev kcat"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
# Debian's syslog-ng, unpacked aside for tests/recipe-syslog-ng.sh (it
# conflicts with rsyslog, so it is not installed); the test fetches it
# itself when this fails.
sh "$(dirname "$0")/syslog-ng.sh" /var/cache/dcevents/syslog-ng ||
    echo "deps.sh: could not fetch syslog-ng-core; tests/recipe-syslog-ng.sh will try again"
