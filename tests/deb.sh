#!/bin/sh
# The Debian package under a real systemd (tests/lib/systemd.sh: systemd
# 252 as PID 1 in namespaces, on an overlay of / that is thrown away, so
# the host's packages, units and journal are never touched).  The package
# is $DCEVENTS_DEB when set (CI builds it once, for lintian too), else
# built here from "make distdir" with DEB_BUILD_OPTIONS=nocheck; the
# upgrade is the same package repacked with a higher version (dpkg-deb -R,
# -b: the same files and maintainer scripts, which are what an upgrade
# runs, in a second instead of a second build).  Inside, with apt-get from
# the host's installed packages only (--no-download): the install (files
# where Debian puts them, the conffile, not enabled nor started, the
# notice, the catalog added by systemd's trigger), a key and a drop-in,
# enable --now, the events in the journal, the upgrade while the stream
# flows with [Spool] Mode=always (restarted: a new InvocationID; the
# first connection's events written without a gap, each once, but for
# those in flight at the stop), remove (stopped,
# conffile kept) and purge (conffile, spool and catalog entries gone).
# Skips (77) where systemd cannot boot like this or the tools are missing.

if [ "${1:-}" = --pid1 ]; then
	. "$(dirname "$0")/lib/systemd.sh"
	sd_pid1 "$2"
	exit 1
fi

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/systemd.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
# The package is built apart (no sanitizers): the suite's sanitizer run
# would test the same package again.
[ "${WITH_SANITIZERS:-no}" = no ] || skip "the package is not the sanitizer build"
[ "$(id -u)" -eq 0 ] || skip "installing a package needs root"
for c in dpkg-deb apt-get; do
	command -v "$c" >/dev/null || skip "needs $c"
done
[ -x "$PY" ] || skip "needs $PY (Debian's python3)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

# The package.
if [ -n "${DCEVENTS_DEB:-}" ]; then
	[ -f "$DCEVENTS_DEB" ] || { fail "DCEVENTS_DEB=$DCEVENTS_DEB exists"; finish; }
	DEB=$DCEVENTS_DEB
else
	command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
	    skip "needs dpkg-buildpackage and debhelper (or DCEVENTS_DEB=)"
	[ -f "$top_builddir/Makefile" ] || skip "no build tree"
	mkdir "$T/src"
	make -C "$top_builddir" distdir distdir="$T/src/dcevents" \
	    >"$T/build.log" 2>&1 &&
	    (cd "$T/src/dcevents" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
	    dpkg-buildpackage -us -uc -b) >>"$T/build.log" 2>&1
	check "dpkg-buildpackage -us -uc -b builds the package" test $? -eq 0
	DEB=$(ls "$T"/src/dcevents_*_*.deb 2>/dev/null | head -n 1)
	[ -n "$DEB" ] || { tail -20 "$T/build.log" | sed 's/^/#   /'; finish; }
fi
V1=$(dpkg-deb -f "$DEB" Version)
V2=$V1+test1
echo "# $DEB: version $V1; the upgrade: $V2"
cp "$DEB" "$T/dcevents_1.deb"
dpkg-deb -R "$DEB" "$T/pkg" &&
    sed -i "s/^Version: .*/Version: $V2/" "$T/pkg/DEBIAN/control" &&
    dpkg-deb -Zgzip -z1 -b "$T/pkg" "$T/dcevents_2.deb" >/dev/null
check "the upgrade is repacked as $V2" test "$(dpkg-deb -f "$T/dcevents_2.deb" Version)" = "$V2"
rm -rf "$T/pkg"

sd_boot "$0"
pass "systemd 252 boots in the namespaces ($(E systemctl is-system-running))"

# apt-get inside: no network, from what the host has installed.
apt() {
	E env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
	    -o Dpkg::Use-Pty=0 "$@"
}
# man-db's trigger would rebuild its index: minutes, nothing to check.
E rm -f /var/lib/man-db/auto-update
# A host that is a container image may forbid maintainer scripts to start
# or stop services (Docker's policy-rc.d exits 101): the booted root is a
# machine with its own systemd, where they must.
E rm -f /usr/sbin/policy-rc.d
# catalog_has ID: journalctl's catalog holds ID.
catalog_has() {
	E journalctl --list-catalog 2>/dev/null | grep -q "^$1 "
}
CATID=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$top_srcdir/systemd/dcevents.catalog" | head -n 1)
check "the catalog does not hold our entries before" eval '! catalog_has $CATID'

# Install.
apt install "$T/dcevents_1.deb" >"$T/install.out" 2>&1
check "apt-get install ./dcevents_${V1}_*.deb succeeds" test $? -eq 0
sed 's/^/#   /' "$T/install.out" | grep -v -e 'Reading database' | tail -12
check "installed: $V1" test "$(E dpkg-query -W -f='${Status} ${Version}' dcevents)" = "install ok installed $V1"
for f in /usr/sbin/dcevents /etc/dcevents/dcevents.conf \
    /lib/systemd/system/dcevents.service /lib/systemd/system/dcevents@.service \
    /usr/lib/systemd/catalog/dcevents.catalog \
    /usr/share/man/man8/dcevents.8.gz /usr/share/man/man5/dcevents.conf.5.gz \
    /usr/share/doc/dcevents/README.Debian \
    /usr/share/doc/dcevents/examples/dcevents.conf \
    /usr/share/doc/dcevents/examples/recipes/rsyslog-tls.conf; do
	check "installed: $f" E test -f "$f"
done
check "/etc/dcevents/dcevents.conf is a conffile" \
    eval 'E dpkg-query -W -f="\${Conffiles}" dcevents | grep -q "^ /etc/dcevents/dcevents.conf "'
check "the unit ExecStarts /usr/sbin/dcevents" \
    E grep -qx 'ExecStart=/usr/sbin/dcevents -c /etc/dcevents/dcevents.conf' \
    /lib/systemd/system/dcevents.service
check "systemd knows the unit (daemon-reload by the package)" \
    test "$(show dcevents.service LoadState)" = loaded
check "not enabled ($(E systemctl is-enabled dcevents.service))" \
    test "$(E systemctl is-enabled dcevents.service)" = disabled
check "not started ($(show dcevents.service ActiveState))" \
    test "$(show dcevents.service ActiveState)" = inactive
check "the install says it is not enabled and needs the key" \
    contains "$T/install.out" "dcevents: not enabled: it needs /etc/dcevents/apikey first"
check "systemd's trigger added our entries to journalctl's catalog" catalog_has "$CATID"

# The stream: connection 1 flows (an event every 20 ms) while the upgrade
# restarts the service; connection 2 (after the restart) sends 50 more.
"$PY" - "$T/script" <<'EOF'
import json, sys
def ev(p, i):
    return json.dumps({"type": "container", "action": "update",
                       "state": "Running", "uuid": "%s-%05d" % (p, i)})
json.dump([{"messages": [ev("a", i) for i in range(1500)], "interval": 0.02},
           {"messages": [ev("b", i) for i in range(50)]}],
          open(sys.argv[1], "w"))
EOF
sd_wspeer "$T/script"

# The key as the unit's credential, the stream and the spool in a drop-in
# of the configuration; the conffile stays as packaged.
E install -m 0644 "$T/pki/ca.pem" /etc/dcevents/ca.pem
KEY=k-$$-deb
echo "$KEY" | put /etc/dcevents/apikey 0600
E mkdir -p /etc/dcevents/dcevents.conf.d
put /etc/dcevents/dcevents.conf.d/test.conf 0644 <<EOF
[Stream]
URL=wss://localhost:$PORT/
CAFile=/etc/dcevents/ca.pem
User=tester
BackoffMinSec=100ms
BackoffMaxSec=500ms
[Spool]
Mode=always
EOF
E systemctl enable --now dcevents.service >"$T/enable" 2>&1
check "systemctl enable --now dcevents succeeds" test $? -eq 0
check "dcevents is active" test "$(show dcevents.service ActiveState)" = active
# uuids P: the uuids starting with P- in the unit's journal, one a line.
uuids() {
	jlog _SYSTEMD_UNIT=dcevents.service DOCKERCLOUD_TYPE=container \
	    -o json --output-fields=DOCKERCLOUD_UUID |
	    "$PY" -c 'import json, sys
for l in sys.stdin:
    u = json.loads(l).get("DOCKERCLOUD_UUID", "")
    if u.startswith(sys.argv[1] + "-"):
        print(u)' "$1"
}
flowing() {
	[ "$(uuids a | wc -l)" -ge "$1" ]
}
check "the events are in the unit's journal" wait_until 10 flowing 50
check "journalctl -x explains our records (the catalog)" \
    eval 'jlog -x -u dcevents.service | grep -q "From now on every event is written as one record"'
check "the spool is in the state directory" E test -f /var/lib/private/dcevents/spool.db
inv1=$(show dcevents.service InvocationID)
pid1=$(show dcevents.service MainPID)

# Upgrade while the events flow.
n1=$(uuids a | wc -l)
apt install "$T/dcevents_2.deb" >"$T/upgrade.out" 2>&1
check "apt-get install ./dcevents_${V2}_*.deb (the upgrade) succeeds" test $? -eq 0
check "upgraded: $V2" test "$(E dpkg-query -W -f='${Version}' dcevents)" = "$V2"
check "the upgrade restarted the service (InvocationID, MainPID changed)" \
    test "$(show dcevents.service InvocationID)" != "$inv1" -a \
    "$(show dcevents.service MainPID)" != "$pid1"
check "and it is active" test "$(show dcevents.service ActiveState)" = active
check "still enabled" test "$(E systemctl is-enabled dcevents.service)" = enabled
check "the upgrade does not print the first install's notice" \
    lacks "$T/upgrade.out" "dcevents: not enabled"
second() {
	[ "$(uuids b | wc -l)" -ge 50 ]
}
check "the second connection's events are in the journal" wait_until 10 second
sent=$("$PY" -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["ev"] == "sent" and r["n"] == 1:
        print(r["count"])' "$T/peer")
uuids a >"$T/a"
got=$(wc -l <"$T/a")
uniq=$(sort -u "$T/a" | wc -l)
last=$(sort "$T/a" | tail -n 1)
last=$(expr "${last#a-}" + 0 2>/dev/null)
last=${last:--1}
miss=$(( ${sent:-0} - uniq ))
echo "# connection 1: the server sent $sent events, $n1 were written before the upgrade; the journal holds $got ($uniq different), the last a-$last"
check "the stream flowed during the upgrade (written before: $n1 of $sent sent)" \
    test "${sent:-0}" -gt "$n1" -a "${sent:-0}" -lt 1500
check "the journal holds connection 1's events from the first on, without a gap" \
    test "$uniq" -eq $((last + 1))
check "each once" test "$got" -eq "$uniq"
# At the stop dcevents sends its close frame and reads on until the
# server's: an event the server sent meanwhile (one every 20 ms) is kept.
check "none missing, not even what was in flight at the stop ($miss of $sent)" \
    test "$miss" -eq 0

# Remove: stopped, the conffile kept.
apt remove dcevents >"$T/remove.out" 2>&1
check "apt-get remove dcevents succeeds" test $? -eq 0
check "the service is stopped ($(show dcevents.service ActiveState))" \
    test "$(show dcevents.service ActiveState)" = inactive
check "the unit file is gone" E test ! -e /lib/systemd/system/dcevents.service
check "the binary is gone" E test ! -e /usr/sbin/dcevents
check "the conffile is kept" E test -f /etc/dcevents/dcevents.conf
check "dpkg: config-files" \
    test "$(E dpkg-query -W -f='${Status}' dcevents)" = "deinstall ok config-files"
check "the spool is kept" E test -f /var/lib/private/dcevents/spool.db

# Purge: everything the package made is gone; the key and drop-in are the
# operator's.
apt purge dcevents >"$T/purge.out" 2>&1
check "apt-get purge dcevents succeeds" test $? -eq 0
check "dpkg: not installed" eval '! E dpkg-query -W -f="\${Status}" dcevents 2>/dev/null | grep -q installed'
check "the conffile is gone" E test ! -e /etc/dcevents/dcevents.conf
check "the state directory is gone" E test ! -e /var/lib/private/dcevents
check "its link is gone" E test ! -e /var/lib/dcevents -a ! -L /var/lib/dcevents
check "not enabled any more" E test ! -e /etc/systemd/system/multi-user.target.wants/dcevents.service
check "the catalog entries are gone (the trigger again)" eval '! catalog_has $CATID'
E find /etc/dcevents | sort | sed 's/^/# left: /'

finish
