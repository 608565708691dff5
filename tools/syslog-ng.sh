#!/bin/sh
# syslog-ng.sh DIR: Debian's syslog-ng-core, unpacked into DIR for the
# README's syslog-ng recipe test (tests/recipe-syslog-ng.sh); installs
# nothing.  The package conflicts with rsyslog, which the other tests
# need, so it is fetched with `apt-get download` and unpacked with
# `dpkg-deb -x`, with those of its library dependencies that are not
# installed (libivykis0, libnet1, libwrap0 on a Debian 12 with rsyslog).
# Run it as root (apt-get download needs the package lists; tools/deps.sh
# calls it for the default DIR).  A DIR made before (DIR/version present)
# is kept.  Run the binary as:
#	LD_LIBRARY_PATH=DIR/usr/lib/syslog-ng:DIR/usr/lib/x86_64-linux-gnu \
#	SYSLOGNG_PREFIX=DIR/usr DIR/usr/sbin/syslog-ng ...
# (SYSLOGNG_PREFIX moves the module path and the SCL under DIR/usr;
# DIR/etc/syslog-ng holds Debian's default configuration.)
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
[ -s "$DIR/version" ] && [ -x "$DIR/usr/sbin/syslog-ng" ] && exit 0
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    { echo "$0: needs apt-get and dpkg-deb (Debian)" >&2; exit 1; }
mkdir -p "$(dirname "$DIR")"
W=$(mktemp -d "$(dirname "$DIR")/.syslog-ng.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 1' INT TERM
# apt-get download runs as the _apt user where it can write the directory.
chmod 755 "$W"
mkdir "$W/debs" "$W/root"
chmod 777 "$W/debs"
cd "$W/debs"
apt-get download -q syslog-ng-core >"$W/log" 2>&1 ||
    { cat "$W/log" >&2; echo "$0: apt-get download syslog-ng-core failed" >&2;
    exit 1; }
deb=$(ls syslog-ng-core_*.deb)
# Its dependencies (first alternatives) that are not installed here.
for p in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' |
    sed 's/|.*//; s/(.*)//; s/[[:space:]]//g'); do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$' && continue
	apt-get download -q "$p" >>"$W/log" 2>&1 ||
	    { cat "$W/log" >&2; echo "$0: apt-get download $p failed" >&2;
	    exit 1; }
done
for d in *.deb; do
	dpkg-deb -x "$d" "$W/root"
done
dpkg-deb -f "$deb" Version >"$W/root/version"
rm -rf "$DIR"
mv "$W/root" "$DIR"
