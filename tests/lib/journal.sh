# A private, real systemd-journald for an integration driver (sourced).
#
# The driver re-executes itself in a new mount namespace (unshare --mount
# --propagation private) and mounts tmpfs on /run/systemd and /run/log
# there, so journald's sockets and its volatile journal exist only inside
# that namespace: processes of the test reach this journald with
# sd_journal_send(), nothing reaches the host's journal, host processes
# cannot reach ours, and the mounts vanish with the namespace.
# Needs root, unshare, setpriv, /lib/systemd/systemd-journald, journalctl
# and /usr/bin/python3; else it skips (exit 77).
#
# Order in a driver (lib.sh before or after journal_enter both work;
# journal_enter first is cleanest, as lib.sh then makes $T only once):
#	. "$top_srcdir/tests/lib/journal.sh"
#	journal_enter "$@"	# first thing: re-executes the script
#	. "$top_srcdir/tests/lib/lib.sh"
#	journal_start		# after lib.sh: its cleanup stops journald
#				# and the sockets' holder
#	...; journal_wait DOCKERCLOUD_TYPE=container 5 || fail ...
#	journal_json DOCKERCLOUD_TYPE=container >"$T/j.json"
# If lib.sh comes first, journal_enter removes its $T before re-executing;
# start nothing before journal_enter.
#
# Matches are journalctl's: FIELD=VALUE (several: AND across fields, OR
# within one field), "+" for OR between groups.  Without a match, journal
# output includes journald's own records ("Journal started", ...).
#
# Sockets as under systemd: journald's sockets (native, stdout, dev-log)
# belong to a holder (tests/peers/journal-sockets.py, playing PID 1's part) that
# makes them as systemd's units do and passes them to each journald by
# socket activation (LISTEN_FDS).  So they outlive journald: while it is
# stopped (journal_stop), datagrams queue in the native socket (up to
# net.unix.max_dgram_qlen of them; past that, senders block) and the next
# journald (journal_restart) reads them; nothing sent is lost, and a
# sender sees no error.  For sockets really gone, as when the socket units
# stop too, journal_close; journal_start or journal_restart then makes
# new ones.
#
# Variables: JOURNAL_DIR (the volatile journal, for journalctl -D),
# JOURNAL_SOCKET (the native socket), JOURNAL_PID (the running journald,
# empty when stopped), JOURNAL_LOG (journald's and the holder's stderr),
# JOURNAL_HOLDER (the holder, empty when the sockets are closed), and
# DCEVENTS_JOURNAL_NS (set by journal_enter: the mount namespace left).

JOURNALD=${JOURNALD:-/lib/systemd/systemd-journald}
JOURNAL_DIR=/run/log/journal
JOURNAL_SOCKET=/run/systemd/journal/socket
JOURNAL_PID=
JOURNAL_LOG=
JOURNAL_HOLDER=
_journal_ready=
_journal_py=/usr/bin/python3
_journal_sockets=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/peers/journal-sockets.py
_journal_ctl=/run/log/journal-sockets.ctl

# journal_skip REASON: skip the test (exit 77), as lib.sh's skip does.
journal_skip() {
	echo "SKIP: $*"
	exit 77
}

# journal_enter "$@": re-execute this script in a private mount namespace
# (once; a no-op inside it), or skip when that cannot work here.
journal_enter() {
	_j_ns=$(readlink /proc/self/ns/mnt 2>/dev/null) ||
	    journal_skip "no /proc/self/ns/mnt"
	if [ -n "${DCEVENTS_JOURNAL_NS:-}" ] &&
	    [ "$DCEVENTS_JOURNAL_NS" != "$_j_ns" ]; then
		_journal_ready=1
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || journal_skip "the private journald needs root"
	command -v unshare >/dev/null || journal_skip "needs unshare"
	command -v journalctl >/dev/null || journal_skip "needs journalctl"
	[ -x "$JOURNALD" ] || journal_skip "needs $JOURNALD"
	[ -x "$_journal_py" ] ||
	    journal_skip "needs $_journal_py to hold journald's sockets"
	command -v setpriv >/dev/null || journal_skip "needs setpriv"
	_j_err=$(unshare --mount --propagation private true 2>&1) ||
	    journal_skip "unshare --mount fails here: $_j_err"
	_j_sh=$(readlink /proc/$$/exe 2>/dev/null) || _j_sh=/bin/sh
	# exec runs no EXIT trap: drop the $T that lib.sh may have made.
	[ -n "${T:-}" ] && [ -d "$T" ] && rm -rf "$T"
	DCEVENTS_JOURNAL_NS=$_j_ns
	export DCEVENTS_JOURNAL_NS
	exec unshare --mount --propagation private -- "$_j_sh" "$0" "$@"
}

# journal_start: mount the private /run/systemd and /run/log, make the
# sockets, start journald on them and wait until it serves (5 s); skips if
# any of that fails.
journal_start() {
	[ -n "$_journal_ready" ] ||
	    { echo "journal_start: call journal_enter first" >&2; exit 1; }
	[ -z "$JOURNAL_PID" ] || return 0
	if [ -z "$JOURNAL_LOG" ]; then
		_journal_mount || exit 77
		JOURNAL_LOG=${T:-/run/log}/journald.err
	fi
	_journal_launch || journal_skip "journald did not start here"
}

# journal_stop [SIGNAL]: stop journald (TERM by default; KILL for a crash)
# and wait for it.  Its sockets stay held, as systemd's do when the
# service stops: what is sent meanwhile waits in them for the next one.
journal_stop() {
	[ -n "$JOURNAL_PID" ] || return 0
	kill -"${1:-TERM}" "$JOURNAL_PID" 2>/dev/null
	wait "$JOURNAL_PID" 2>/dev/null
	PIDS=$(echo " ${PIDS:-} " | sed "s/ $JOURNAL_PID / /")
	JOURNAL_PID=
}

# journal_restart: journal_stop, then start journald again on the same
# journal and the same sockets (new ones after journal_close); returns 1
# if it does not come up within 5 s.
journal_restart() {
	journal_stop
	_journal_launch
}

# journal_close: journal_stop, then close the sockets and remove their
# files, as stopping systemd-journald.socket too would (with
# RemoveOnStop=yes): datagrams still queued in them are lost, and nothing
# reaches journald until journal_start or journal_restart (a send fails
# with ENOENT, which sd_journal_sendv turns into a silent drop).
journal_close() {
	journal_stop
	[ -n "$JOURNAL_HOLDER" ] || return 0
	kill "$JOURNAL_HOLDER" 2>/dev/null
	wait "$JOURNAL_HOLDER" 2>/dev/null
	PIDS=$(echo " ${PIDS:-} " | sed "s/ $JOURNAL_HOLDER / /")
	JOURNAL_HOLDER=
}

# journal_sync: have journald write out what it has received (quiet; fails
# when journald is down).
journal_sync() {
	journalctl --sync >/dev/null 2>&1
}

# journal_json [MATCHES...]: every matching record, one JSON object a line
# (all fields, long ones too; non-UTF-8 values come as byte arrays).
journal_json() {
	journal_sync
	journalctl -D "$JOURNAL_DIR" -q --no-pager --all -o json "$@"
}

# journal_count [MATCHES...]: how many records match.
journal_count() {
	journal_json "$@" | wc -l | tr -d ' '
}

# journal_wait MATCH COUNT [SECONDS [MATCHES...]]: until at least COUNT
# records match (MATCH "" matches all); 1 on timeout (5 s by default).
journal_wait() {
	_j_m=$1 _j_want=$2 _j_n=$(( ${3:-5} * 20 ))
	shift 2
	[ $# -gt 0 ] && shift
	[ -n "$_j_m" ] && set -- "$_j_m" "$@"
	while :; do
		_j_have=$(journal_count "$@")
		[ "$_j_have" -ge "$_j_want" ] && return 0
		[ "$_j_n" -le 0 ] && break
		sleep 0.05
		_j_n=$((_j_n - 1))
	done
	echo "# timed out waiting for $_j_want records matching $*: $_j_have"
	return 1
}

# _journal_alive: journald runs (and is no zombie yet).
_journal_alive() {
	_j_st=$(sed 's/.*) //' "/proc/$JOURNAL_PID/stat" 2>/dev/null) &&
	    [ "${_j_st%% *}" != Z ]
}

# _journal_mount: the private mounts and a test configuration (once).
_journal_mount() {
	for _j_d in /run/systemd /run/log; do
		[ -d "$_j_d" ] || mkdir -p "$_j_d" ||
		    { echo "SKIP: cannot create $_j_d"; return 1; }
		mount -t tmpfs -o mode=0755 tmpfs "$_j_d" ||
		    { echo "SKIP: cannot mount tmpfs on $_j_d"; return 1; }
	done
	mkdir -p /run/systemd/journal "$JOURNAL_DIR" /run/log/empty \
	    /run/systemd/journald.conf.d
	# A persistent journal, if configured anyway, lands nowhere real.
	if [ -d /var/log/journal ]; then
		mount --bind /run/log/empty /var/log/journal ||
		    { echo "SKIP: cannot bind over /var/log/journal"; return 1; }
	fi
	if ! grep -Eqx '[0-9a-f]{32}' /etc/machine-id 2>/dev/null; then
		[ -f /etc/machine-id ] ||
		    { echo "SKIP: journald needs /etc/machine-id"; return 1; }
		tr -d '-' </proc/sys/kernel/random/uuid >/run/log/machine-id
		mount --bind /run/log/machine-id /etc/machine-id ||
		    { echo "SKIP: cannot bind over /etc/machine-id"; return 1; }
	fi
	# Volatile only; no kernel log, audit, wall or forwarding; no limits.
	cat >/run/systemd/journald.conf.d/zz-dcevents-test.conf <<-EOF
	[Journal]
	Storage=volatile
	ReadKMsg=no
	Audit=no
	ForwardToSyslog=no
	ForwardToKMsg=no
	ForwardToConsole=no
	ForwardToWall=no
	RateLimitIntervalSec=0
	EOF
}

# _journal_hold: start the holder of the sockets unless it runs; 1 if
# it does not come up within 5 s.
_journal_hold() {
	if [ -n "$JOURNAL_HOLDER" ]; then
		kill -0 "$JOURNAL_HOLDER" 2>/dev/null && return 0
		wait "$JOURNAL_HOLDER" 2>/dev/null
		PIDS=$(echo " ${PIDS:-} " | sed "s/ $JOURNAL_HOLDER / /")
		JOURNAL_HOLDER=
	fi
	rm -f "$_journal_ctl"
	# It dies with this shell, at the latest; lib.sh's cleanup stops it.
	env -u NOTIFY_SOCKET -u WATCHDOG_USEC -u WATCHDOG_PID -u LISTEN_FDS \
	    -u LISTEN_PID -u LISTEN_FDNAMES \
	    setpriv --pdeathsig TERM "$_journal_py" "$_journal_sockets" hold \
	    "$_journal_ctl" </dev/null >>"$JOURNAL_LOG" 2>&1 &
	JOURNAL_HOLDER=$!
	PIDS="${PIDS:-} $JOURNAL_HOLDER"
	_j_n=100
	while [ "$_j_n" -gt 0 ]; do
		[ -S "$_journal_ctl" ] && return 0
		kill -0 "$JOURNAL_HOLDER" 2>/dev/null || break
		sleep 0.05
		_j_n=$((_j_n - 1))
	done
	echo "# the holder of journald's sockets did not come up; its output:"
	sed 's/^/#   /' "$JOURNAL_LOG"
	journal_close
	return 1
}

# _journal_adopted: journald's fds 3, 4 and 5 are the holder's sockets
# (it did not reject them and bind sockets of its own).
_journal_adopted() {
	_j_held=$(for _j_f in /proc/"$JOURNAL_HOLDER"/fd/*; do
		readlink "$_j_f"; done 2>/dev/null)
	for _j_f in 3 4 5; do
		_j_l=$(readlink "/proc/$JOURNAL_PID/fd/$_j_f" 2>/dev/null) ||
		    return 1
		case $_j_l in socket:*) ;; *) return 1 ;; esac
		case $_j_held in *"$_j_l"*) ;; *) return 1 ;; esac
	done
}

# _journal_launch: start journald on the held sockets (made first if
# need be) and wait (5 s) until it serves (its varlink socket, which it
# makes itself, appears) and has adopted them.
_journal_launch() {
	_journal_hold || return 1
	# A stopped journald's would look ready.
	rm -f "${JOURNAL_SOCKET%/*}/io.systemd.journal"
	# Socket activation, as systemd starts systemd-journald.service:
	# journal-sockets.py exec puts the sockets at fds 3.., sets LISTEN_FDS,
	# LISTEN_FDNAMES and LISTEN_PID (its own pid, which exec keeps:
	# setpriv, it and journald are the one process $!).  No other
	# service-manager variables: journald must not notify the host's
	# manager.  It dies with this shell.
	env -u NOTIFY_SOCKET -u WATCHDOG_USEC -u WATCHDOG_PID -u LISTEN_FDS \
	    -u LISTEN_PID -u LISTEN_FDNAMES \
	    setpriv --pdeathsig KILL "$_journal_py" "$_journal_sockets" exec \
	    "$_journal_ctl" "$JOURNALD" </dev/null >>"$JOURNAL_LOG" 2>&1 &
	JOURNAL_PID=$!
	PIDS="${PIDS:-} $JOURNAL_PID"
	_j_n=100
	while [ "$_j_n" -gt 0 ]; do
		if [ -S "${JOURNAL_SOCKET%/*}/io.systemd.journal" ]; then
			_journal_adopted && return 0
			echo "# journald did not adopt the held sockets:"
			ls -l "/proc/$JOURNAL_PID/fd" "/proc/$JOURNAL_HOLDER/fd" |
			    sed 's/^/#   /'
			break
		fi
		_journal_alive || break
		sleep 0.05
		_j_n=$((_j_n - 1))
	done
	echo "# journald did not come up; its output:"
	sed 's/^/#   /' "$JOURNAL_LOG"
	journal_stop KILL
	return 1
}
