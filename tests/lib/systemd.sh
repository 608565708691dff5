# A real systemd 252 for the drivers that run the units (sourced; by
# tests/systemd.sh and tests/deb.sh).  systemd boots as PID 1 of new PID,
# mount, UTS, IPC, network and cgroup namespaces, in a cgroup of its own
# under the cgroup2 hierarchy, on an overlay of / whose upper layer is a
# tmpfs: what it writes (units, /etc, packages, its journal) exists only
# there, and the host's journal, units, packages and /dev are never
# touched.  The test's directory $T is bound in at the same path.  On exit
# the namespace's PID 1 is killed (which ends every process in it and
# drops its mounts) and the cgroup is removed.
#
# A driver using it re-executes itself as PID 1:
#   if [ "${1:-}" = --pid1 ]; then
#       . "$(dirname "$0")/lib/systemd.sh"; sd_pid1 "$2" [HOOK]; exit 1
#   fi
#   . .../tests/lib/lib.sh; . .../tests/lib/systemd.sh
#   sd_boot "$0"         # skips (77) where systemd cannot boot like this
#   E systemctl ...      # commands inside: E, show, jlog, put, sd_wspeer
# This file runs nothing when sourced.

# sd_pid1 BASE [HOOK]: PID 1 of the new namespaces: build the root in BASE
# (a tmpfs), call HOOK ROOT (a function of the driver, to put files into
# the root before it boots) and become systemd.
sd_pid1() {
	set -e
	B=$1
	mount -t tmpfs -o mode=0755 dcevents-test "$B"
	mkdir "$B/upper" "$B/work" "$B/root"
	R=$B/root
	mount -t overlay -o "lowerdir=/,upperdir=$B/upper,workdir=$B/work" \
	    overlay "$R"
	mount -t proc proc "$R/proc"
	mount -t sysfs -o ro sysfs "$R/sys"
	mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
	mount -t tmpfs -o mode=0755,nosuid tmpfs "$R/dev"
	for d in null zero full random urandom tty; do
		: >"$R/dev/$d"
		mount --bind "/dev/$d" "$R/dev/$d"
	done
	mkdir "$R/dev/pts" "$R/dev/shm"
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
	ln -s pts/ptmx "$R/dev/ptmx"
	mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
	mount -t tmpfs -o mode=0755 tmpfs "$R/run"
	mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
	mkdir -p "$R$T"
	mount --bind "$T" "$R$T"
	# Units that would touch the kernel or the host, or are not needed.
	for u in systemd-sysctl.service systemd-modules-load.service \
	    modprobe@.service systemd-remount-fs.service \
	    systemd-udevd.service systemd-udev-trigger.service \
	    systemd-timesyncd.service systemd-journald-audit.socket \
	    systemd-random-seed.service systemd-pstore.service \
	    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
	    dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount \
	    sys-kernel-tracing.mount sys-kernel-config.mount \
	    sys-fs-fuse-connections.mount kmod-static-nodes.service \
	    systemd-hwdb-update.service systemd-firstboot.service \
	    systemd-machine-id-commit.service systemd-sysusers.service \
	    ldconfig.service systemd-update-utmp.service \
	    systemd-ask-password-console.path \
	    systemd-ask-password-wall.path apt-daily.timer \
	    apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
	    fstrim.timer man-db.timer systemd-tmpfiles-clean.timer; do
		ln -sf /dev/null "$R/etc/systemd/system/$u"
	done
	[ -z "${2:-}" ] || "$2" "$R"
	mkdir "$R/oldroot"
	cd "$R"
	pivot_root . oldroot
	umount -l /oldroot
	rmdir /oldroot
	# Without this, LoadCredential= yields an empty credentials folder.
	mount --make-rshared /
	export container=dcevents-test
	exec /lib/systemd/systemd --system --unit=basic.target
}

# sd_boot DRIVER: boot systemd with "sh DRIVER --pid1 BASE" as its PID 1
# and wait until it runs; sets SDPID (its PID on the host) and replaces
# the EXIT trap with sd_cleanup (which ends with lib.sh's cleanup).
# Skips where it cannot boot.
sd_boot() {
	[ "$(id -u)" -eq 0 ] || skip "booting systemd needs root"
	for c in unshare nsenter pivot_root /lib/systemd/systemd; do
		command -v "$c" >/dev/null || skip "needs $c"
	done
	CGROOT=$(findmnt -n -t cgroup2 -o TARGET 2>/dev/null | head -n 1)
	[ -n "$CGROOT" ] && [ -w "$CGROOT" ] || skip "no writable cgroup2 hierarchy"
	CG=$CGROOT/dcevents-test.$$
	SDPID=
	UNSHARE=
	export T
	trap sd_cleanup EXIT
	mkdir "$CG" || skip "cannot make a cgroup under $CGROOT"
	mkdir "$T/sd"
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
	    unshare --pid --fork --mount --uts --ipc --net --cgroup \
	    --propagation private sh "$1" --pid1 "$T/sd" >"$T/console" 2>&1 </dev/null &
	UNSHARE=$!
	wait_until 10 eval '[ -n "$(sd_child)" ]' ||
	    skip "unshare did not start: $(tail -3 "$T/console")"
	SDPID=$(sd_child)
	_n=600
	until sd_booted; do
		kill -0 "$UNSHARE" 2>/dev/null ||
		    skip "systemd did not boot here: $(tail -3 "$T/console" | tr '\n' ' ')"
		_n=$((_n - 1))
		[ "$_n" -gt 0 ] ||
		    skip "systemd did not boot in 30 s: $(E systemctl is-system-running 2>&1)"
		sleep 0.05
	done
	E systemctl --failed --no-legend --plain | sed 's/^/# failed at boot: /'
}

# sd_child: the host's PID of the namespace's PID 1 (unshare's child).
sd_child() {
	cat "/proc/$UNSHARE/task/$UNSHARE/children" 2>/dev/null | tr -d ' '
}
sd_booted() {
	_s=$(E systemctl is-system-running 2>/dev/null)
	[ "$_s" = running ] || [ "$_s" = degraded ]
}
sd_cleanup() {
	if [ -n "$UNSHARE" ]; then
		[ -n "$SDPID" ] || SDPID=$(sd_child)
		[ -n "$SDPID" ] && kill -KILL "$SDPID" 2>/dev/null
		kill -KILL "$UNSHARE" 2>/dev/null
		wait "$UNSHARE" 2>/dev/null
	fi
	if [ -d "$CG" ]; then
		_n=100
		until find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null &&
		    [ ! -d "$CG" ]; do
			_n=$((_n - 1))
			[ "$_n" -gt 0 ] || { echo "# cannot remove $CG"; break; }
			sleep 0.05
		done
	fi
	cleanup
}

# E COMMAND...: run COMMAND inside (every namespace, the new root).
E() {
	nsenter -t "$SDPID" -a "$@"
}
# show UNIT PROPERTY: one property's value.
show() {
	E systemctl show -P "$2" "$1"
}
# jlog ARGS: the namespace's journal.
jlog() {
	E journalctl --no-pager -q "$@"
}
# put FILE MODE: standard input into FILE, inside (so that keys never
# pass through argv).
put() {
	E sh -c 'install -m "$2" /dev/null "$1" && cat >"$1"' sh "$1" "$2"
}
# sd_wspeer SCRIPT: tests/peers/wspeer.py with the JSON script SCRIPT and
# the certificates in $T/pki, on the namespace's loopback, logging to
# $T/peer; sets PORT.  Fails the test if it does not start.
sd_wspeer() {
	rm -f "$T/port"
	nsenter -t "$SDPID" -n "$PY" "$top_srcdir/tests/peers/wspeer.py" \
	    --portfile "$T/port" --log "$T/peer" --script "$1" \
	    --cert "$T/pki/server.pem" --key "$T/pki/server.key" \
	    2>"$T/peer.err" &
	PIDS="$PIDS $!"
	wait_until 5 test -s "$T/port" || { fail "the stream server starts"; finish; }
	PORT=$(cat "$T/port")
}
