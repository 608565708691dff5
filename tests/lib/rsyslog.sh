# A real rsyslogd receiving what dcevents sends, for integration drivers
# (sourced).  rsyslogd runs in the foreground with its own configuration,
# work directory and pid file under $T: no imklog, no imjournal, nothing
# written outside $T, its own messages kept in $T (processInternalMessages),
# never bound to the host's /dev/log.  Needs root and rsyslogd (with the
# ossl driver for TLS, Debian's rsyslog-openssl); else it skips (exit 77).
#
# Remote (RFC 5424 over UDP, TCP and TLS with RFC 6587 octet counting):
#	. "$top_srcdir/tests/lib/lib.sh"
#	. "$top_srcdir/tests/lib/rsyslog.sh"
#	rsyslog_start		# sets RSYSLOG_{UDP,TCP,TLS}_PORT
#	...; rsyslog_wait "$T/rsyslog-tcp.json" 2 || fail ...
#	rsyslog_restart		# same ports, e.g. after rsyslog_stop
# TLS: imtcp with the ossl driver, anonymous (no client certificate), server
# certificate $T/pki/server.pem (CN and SAN localhost, 127.0.0.1) from
# tests/lib/certs.sh (made unless $T/pki/ca.pem exists); clients trust ca.pem.
# RELP (when rsyslog has imrelp, Debian's rsyslog-relp; else the two ports
# stay empty): plain on RSYSLOG_RELP_PORT, TLS (same certificate, openssl)
# on RSYSLOG_RELPTLS_PORT, into $T/rsyslog-relp.json and -relptls.json.
#
# Local (RFC 3164 datagrams to /dev/log, as logger sends): a second
# rsyslogd with imuxsock on /dev/log, in a private mount namespace where
# /dev is a tmpfs of our own (the host's /dev is a devtmpfs shared with
# the host: a socket made there would appear on the host):
#	. "$top_srcdir/tests/lib/rsyslog.sh"
#	rsyslog_local_enter "$@"	# first: re-executes the script
#	. "$top_srcdir/tests/lib/lib.sh"
#	rsyslog_local_start		# after lib.sh; remote ones work too
# Call journal_enter before rsyslog_local_enter to have both: the local
# rsyslogd then shares journal.sh's namespace.  Start nothing before.
#
# Output: what rsyslog parsed, one JSON object a line, per listener in
# $T/rsyslog-udp.json, -tcp.json, -tls.json and -local.json, with members
# pri, facility, severity (numbers), protocol_version ("1", or "0" for
# RFC 3164), timestamp (as received, RFC 3339; the reception time when
# absent or unparsable), hostname, app_name, procid, msgid,
# structured_data, syslogtag, msg and rawmsg (strings; "-" for NILVALUE).
# Values are rsyslog's jsonf encoding: \" \\ \/, \n \t \r, \u00XX for
# other control characters; bytes >= 0x80 pass as they are, so invalid
# UTF-8 stays invalid (read with errors="surrogateescape").  Receiving,
# rsyslog drops one trailing LF and any trailing NULs, and when a message
# holds a NUL, writes it as "#000" and drops all other C0 controls.  For
# RFC 3164, msg keeps the space after "TAG:" (" hello").  Framing or parse
# complaints go to $T/rsyslog-internal.log (or -local-internal.log).
#
# Variables: RSYSLOG_UDP_PORT, RSYSLOG_TCP_PORT, RSYSLOG_TLS_PORT,
# RSYSLOG_RELP_PORT, RSYSLOG_RELPTLS_PORT (on 127.0.0.1), RSYSLOG_PID and RSYSLOG_LOCAL_PID (empty when stopped),
# RSYSLOG_LOG and RSYSLOG_LOCAL_LOG (rsyslogd's stderr), RSYSLOGD (the
# binary), DCEVENTS_RSYSLOG_NS (set by rsyslog_local_enter: the mount
# namespace left).

RSYSLOGD=${RSYSLOGD:-/usr/sbin/rsyslogd}
RSYSLOG_UDP_PORT=
RSYSLOG_TCP_PORT=
RSYSLOG_TLS_PORT=
RSYSLOG_RELP_PORT=
RSYSLOG_RELPTLS_PORT=
RSYSLOG_PID=
RSYSLOG_LOCAL_PID=
RSYSLOG_LOG=
RSYSLOG_LOCAL_LOG=
_rsyslog_ns_ready=
_rsyslog_dev_ready=

# rsyslog_skip REASON: skip the test (exit 77), as lib.sh's skip does.
rsyslog_skip() {
	echo "SKIP: $*"
	exit 77
}

# rsyslog_start: configure and start the remote collector (UDP, TCP, TLS
# on free ports), wait (5 s) until all listen; skips if that fails.
rsyslog_start() {
	[ -z "$RSYSLOG_PID" ] || return 0
	_rsyslog_check
	_rsyslog_module lmnsd_ossl || rsyslog_skip "needs rsyslog's ossl driver" \
	    "(apt-get install rsyslog-openssl)"
	if [ ! -f "$T/pki/ca.pem" ]; then
		sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" ||
		    rsyslog_skip "cannot make test certificates"
	fi
	RSYSLOG_LOG=$T/rsyslog.err
	# imrelp has no port file: RELP gets two ports free just now.
	if _rsyslog_module imrelp; then
		set -- $("${PY:-/usr/bin/python3}" -c 'import socket
s = [socket.socket() for i in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
		RSYSLOG_RELP_PORT=${1:-} RSYSLOG_RELPTLS_PORT=${2:-}
	fi
	_rsyslog_remote_launch || rsyslog_skip "rsyslogd did not start here"
}

# rsyslog_stop [SIGNAL]: stop the remote collector (TERM by default; KILL
# for a crash) and wait for it.
rsyslog_stop() {
	[ -n "$RSYSLOG_PID" ] || return 0
	_rsyslog_kill "$RSYSLOG_PID" "${1:-TERM}"
	RSYSLOG_PID=
}

# rsyslog_restart: rsyslog_stop, then start again on the same ports;
# returns 1 if it does not come up within 5 s.
rsyslog_restart() {
	rsyslog_stop
	_rsyslog_remote_launch
}

# rsyslog_wait FILE N [SECONDS]: until FILE has N lines; 1 on timeout (5 s).
rsyslog_wait() {
	_r_n=$(( ${3:-5} * 20 ))
	while :; do
		_r_have=$(wc -l 2>/dev/null <"$1" || echo 0)
		[ "$_r_have" -ge "$2" ] && return 0
		[ "$_r_n" -le 0 ] && break
		sleep 0.05
		_r_n=$((_r_n - 1))
	done
	echo "# timed out waiting for $2 lines in $1: $_r_have"
	return 1
}

# rsyslog_local_enter "$@": re-execute this script in a private mount
# namespace (once; a no-op inside it or inside journal_enter's).
rsyslog_local_enter() {
	_r_ns=$(readlink /proc/self/ns/mnt 2>/dev/null) ||
	    rsyslog_skip "no /proc/self/ns/mnt"
	for _r_left in "${DCEVENTS_RSYSLOG_NS:-}" "${DCEVENTS_JOURNAL_NS:-}"; do
		if [ -n "$_r_left" ] && [ "$_r_left" != "$_r_ns" ]; then
			DCEVENTS_RSYSLOG_NS=$_r_left
			export DCEVENTS_RSYSLOG_NS
			_rsyslog_ns_ready=1
			return 0
		fi
	done
	_rsyslog_check
	command -v unshare >/dev/null || rsyslog_skip "needs unshare"
	_r_err=$(unshare --mount --propagation private true 2>&1) ||
	    rsyslog_skip "unshare --mount fails here: $_r_err"
	_r_sh=$(readlink /proc/$$/exe 2>/dev/null) || _r_sh=/bin/sh
	# exec runs no EXIT trap: drop the $T that lib.sh may have made.
	[ -n "${T:-}" ] && [ -d "$T" ] && rm -rf "$T"
	DCEVENTS_RSYSLOG_NS=$_r_ns
	export DCEVENTS_RSYSLOG_NS
	exec unshare --mount --propagation private -- "$_r_sh" "$0" "$@"
}

# rsyslog_local_start: put a private tmpfs on /dev, start the local
# collector (imuxsock on /dev/log), wait (5 s) for it; skips on failure.
rsyslog_local_start() {
	[ -n "$_rsyslog_ns_ready" ] || { echo "rsyslog_local_start:" \
	    "call rsyslog_local_enter first" >&2; exit 1; }
	[ -z "$RSYSLOG_LOCAL_PID" ] || return 0
	_rsyslog_check
	if [ -z "$_rsyslog_dev_ready" ]; then
		_rsyslog_private_dev || exit 77
		_rsyslog_dev_ready=1
		RSYSLOG_LOCAL_LOG=$T/rsyslog-local.err
	fi
	_rsyslog_local_launch || rsyslog_skip "the local rsyslogd did not start"
}

# rsyslog_local_stop [SIGNAL]: stop the local collector and wait; TERM
# removes /dev/log (ENOENT to senders), KILL leaves it (ECONNREFUSED).
rsyslog_local_stop() {
	[ -n "$RSYSLOG_LOCAL_PID" ] || return 0
	_rsyslog_kill "$RSYSLOG_LOCAL_PID" "${1:-TERM}"
	RSYSLOG_LOCAL_PID=
}

# rsyslog_local_restart: rsyslog_local_stop, then start it again; 1 if it
# does not come up within 5 s.
rsyslog_local_restart() {
	rsyslog_local_stop
	_rsyslog_local_launch
}

# _rsyslog_module NAME: rsyslog has the module NAME.so.
_rsyslog_module() {
	for _r_m in /usr/lib/*/rsyslog/"$1".so /usr/lib*/rsyslog/"$1".so; do
		[ -f "$_r_m" ] && return 0
	done
	return 1
}

# _rsyslog_listen " PORTS " PORT...: each PORT is among the listening PORTS.
_rsyslog_listen() {
	_r_all=$1
	shift
	for _r_p; do
		case $_r_all in *" $_r_p "*) ;; *) return 1 ;; esac
	done
}

# _rsyslog_check: skip unless root with an rsyslogd.
_rsyslog_check() {
	[ "$(id -u)" -eq 0 ] || rsyslog_skip "the private rsyslogd needs root"
	[ -x "$RSYSLOGD" ] || rsyslog_skip "needs $RSYSLOGD" \
	    "(apt-get install rsyslog rsyslog-openssl)"
}

# _rsyslog_common NAME: global settings (before any module) and the JSON
# template "dcevents_json"; NAME's own messages go to $T/NAME-internal.log.
_rsyslog_common() {
	mkdir -p "$T/$1-work"
	cat <<-EOF
	global(workDirectory="$T/$1-work" processInternalMessages="on"
	    maxMessageSize="256k" net.enableDNS="off"
	    parser.escapeControlCharactersOnReceive="off")
	template(name="dcevents_json" type="list" option.jsonf="on") {
	    property(outname="pri" name="pri" format="jsonf" datatype="number")
	    property(outname="facility" name="syslogfacility" format="jsonf"
	        datatype="number")
	    property(outname="severity" name="syslogseverity" format="jsonf"
	        datatype="number")
	    property(outname="protocol_version" name="protocol-version"
	        format="jsonf")
	    property(outname="timestamp" name="timereported"
	        dateFormat="rfc3339" format="jsonf")
	    property(outname="hostname" name="hostname" format="jsonf")
	    property(outname="app_name" name="app-name" format="jsonf")
	    property(outname="procid" name="procid" format="jsonf")
	    property(outname="msgid" name="msgid" format="jsonf")
	    property(outname="structured_data" name="structured-data"
	        format="jsonf")
	    property(outname="syslogtag" name="syslogtag" format="jsonf")
	    property(outname="msg" name="msg" format="jsonf")
	    property(outname="rawmsg" name="rawmsg" format="jsonf")
	}
	action(type="omfile" file="$T/$1-internal.log")
	EOF
}

# _rsyslog_remote_launch: write the remote configuration (port 0 the first
# time, then the ports found) and start it.
_rsyslog_remote_launch() {
	[ -n "$RSYSLOG_LOG" ] ||
	    { echo "# rsyslog_restart: call rsyslog_start first"; return 1; }
	rm -f "$T/rsyslog-tcp.port" "$T/rsyslog-tls.port"
	{
		_rsyslog_common rsyslog
		for _r_i in udp tcp tls relp relptls; do
			echo "ruleset(name=\"$_r_i\") { action(type=\"omfile\"" \
			    "file=\"$T/rsyslog-$_r_i.json\"" \
			    "template=\"dcevents_json\") }"
		done
		cat <<-EOF
		module(load="imudp")
		module(load="imtcp" maxSessions="1000")
		input(type="imudp" address="127.0.0.1"
		    port="${RSYSLOG_UDP_PORT:-0}" ruleset="udp")
		input(type="imtcp" address="127.0.0.1"
		    port="${RSYSLOG_TCP_PORT:-0}" ruleset="tcp"
		    listenPortFileName="$T/rsyslog-tcp.port"
		    maxFrameSize="300000")
		input(type="imtcp" address="127.0.0.1"
		    port="${RSYSLOG_TLS_PORT:-0}" ruleset="tls"
		    listenPortFileName="$T/rsyslog-tls.port"
		    maxFrameSize="300000"
		    streamDriver.name="ossl" streamDriver.mode="1"
		    streamDriver.authMode="anon"
		    streamDriver.CAFile="$T/pki/ca.pem"
		    streamDriver.CertFile="$T/pki/server.pem"
		    streamDriver.KeyFile="$T/pki/server.key")
		EOF
		[ -z "$RSYSLOG_RELP_PORT" ] || cat <<-EOF
		module(load="imrelp" tls.tlslib="openssl")
		input(type="imrelp" address="127.0.0.1"
		    port="$RSYSLOG_RELP_PORT" ruleset="relp"
		    maxDataSize="300000")
		input(type="imrelp" address="127.0.0.1"
		    port="$RSYSLOG_RELPTLS_PORT" ruleset="relptls"
		    maxDataSize="300000" tls="on"
		    tls.cacert="$T/pki/ca.pem"
		    tls.mycert="$T/pki/server.pem"
		    tls.myprivkey="$T/pki/server.key")
		EOF
	} >"$T/rsyslog.conf"
	_rsyslog_launch rsyslog "$RSYSLOG_LOG" || return 1
	RSYSLOG_PID=$_r_pid
	# The ports given, or (port 0) as rsyslogd reports them; all bound?
	_r_end=$(( $(date +%s%N) / 1000000 + 5000 ))
	while :; do
		_r_t=${RSYSLOG_TCP_PORT:-$(cat 2>/dev/null "$T/rsyslog-tcp.port")}
		_r_s=${RSYSLOG_TLS_PORT:-$(cat 2>/dev/null "$T/rsyslog-tls.port")}
		_r_u=$(_rsyslog_ports "$_r_pid" udp 07)
		_r_l=" $(_rsyslog_ports "$_r_pid" tcp 0A | tr '\n' ' ') "
		if [ -n "$_r_u" ] && [ -n "$_r_t" ] && [ -n "$_r_s" ] &&
		    _rsyslog_listen "$_r_l" "$_r_t" "$_r_s" \
		    $RSYSLOG_RELP_PORT $RSYSLOG_RELPTLS_PORT; then
			break
		fi
		if ! _rsyslog_alive "$_r_pid" ||
		    [ "$(( $(date +%s%N) / 1000000 ))" -gt "$_r_end" ]; then
			_rsyslog_failed "$RSYSLOG_LOG"
			rsyslog_stop KILL
			return 1
		fi
		sleep 0.05
	done
	RSYSLOG_UDP_PORT=$_r_u RSYSLOG_TCP_PORT=$_r_t RSYSLOG_TLS_PORT=$_r_s
}

# _rsyslog_local_launch: write the local configuration and start it.
_rsyslog_local_launch() {
	# Never outside our /dev: the host's /dev/log is not ours to touch.
	[ -n "$_rsyslog_dev_ready" ] || { echo "# rsyslog_local_restart:" \
	    "call rsyslog_local_start first"; return 1; }
	{
		_rsyslog_common rsyslog-local
		cat <<-EOF
		ruleset(name="local") { action(type="omfile"
		    file="$T/rsyslog-local.json" template="dcevents_json") }
		module(load="imuxsock" SysSock.Use="off")
		input(type="imuxsock" socket="/dev/log" ruleset="local"
		    useSpecialParser="off" parseHostname="off"
		    ignoreTimestamp="off" useSysTimeStamp="off"
		    usePIDFromSystem="off" annotate="off" parseTrusted="off"
		    ratelimit.interval="0" createPath="off" unlink="on")
		EOF
	} >"$T/rsyslog-local.conf"
	# A socket left by a killed instance would look ready.
	rm -f /dev/log
	_rsyslog_launch rsyslog-local "$RSYSLOG_LOCAL_LOG" || return 1
	RSYSLOG_LOCAL_PID=$_r_pid
	_r_n=100
	while [ "$_r_n" -gt 0 ]; do
		[ -S /dev/log ] && return 0
		_rsyslog_alive "$_r_pid" || break
		sleep 0.05
		_r_n=$((_r_n - 1))
	done
	_rsyslog_failed "$RSYSLOG_LOCAL_LOG"
	rsyslog_local_stop KILL
	return 1
}

# _rsyslog_launch NAME LOG: check $T/NAME.conf, start rsyslogd on it in the
# background (pid in _r_pid, added to PIDS); it dies with this shell.
_rsyslog_launch() {
	if ! "$RSYSLOGD" -N1 -f "$T/$1.conf" >"$T/$1.check" 2>&1; then
		_rsyslog_failed "$T/$1.check"
		return 1
	fi
	# No service-manager variables: never notify the host's manager or
	# adopt inherited sockets.
	env -u NOTIFY_SOCKET -u WATCHDOG_USEC -u WATCHDOG_PID -u LISTEN_FDS \
	    -u LISTEN_PID -u LISTEN_FDNAMES setpriv --pdeathsig KILL \
	    "$RSYSLOGD" -n -f "$T/$1.conf" -i "$T/$1.pid" \
	    </dev/null >>"$2" 2>&1 &
	_r_pid=$!
	PIDS="${PIDS:-} $_r_pid"
}

# _rsyslog_kill PID SIGNAL: signal an rsyslogd, wait, drop it from PIDS.
_rsyslog_kill() {
	kill -"$2" "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	PIDS=$(echo " ${PIDS:-} " | sed "s/ $1 / /")
}

# _rsyslog_failed FILE: say rsyslogd did not come up, show FILE.
_rsyslog_failed() {
	echo "# rsyslogd did not come up; its output:"
	sed 's/^/#   /' "$1"
}

# _rsyslog_alive PID: the process runs (and is no zombie yet).
_rsyslog_alive() {
	_r_st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) &&
	    [ "${_r_st%% *}" != Z ]
}

# _rsyslog_ports PID udp|tcp STATE: local ports of PID's IPv4 sockets in
# that state (07 bound UDP, 0A listening TCP), from /proc/net.
_rsyslog_ports() {
	_r_in=$(ls -l "/proc/$1/fd" 2>/dev/null |
	    sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ')
	for _r_h in $(awk -v ino=" $_r_in " -v st="$3" 'NR > 1 && $4 == st &&
	    index(ino, " " $10 " ") { sub(/.*:/, "", $2); print $2 }' \
	    "/proc/net/$2"); do
		echo $((0x$_r_h))
	done
}

# _rsyslog_private_dev: mount a tmpfs with the usual devices, built aside
# and moved onto /dev; the host's /dev (and any /dev/log there) stays as is.
_rsyslog_private_dev() {
	# mount -n: libmount would rewrite the host's /run/mount/utab.
	_r_d=$T/rsyslog-dev
	mkdir "$_r_d" && mount -n -t tmpfs -o mode=0755,size=1m tmpfs "$_r_d" ||
	    { echo "SKIP: cannot mount a tmpfs for /dev"; return 1; }
	if ! _rsyslog_fill_dev "$_r_d" || ! mount -n --move "$_r_d" /dev; then
		umount -n -R "$_r_d"
		echo "SKIP: cannot set up a private /dev"
		return 1
	fi
	[ ! -e /dev/log ] && [ -c /dev/null ] ||
	    { echo "SKIP: the private /dev is not as expected"; return 1; }
}

# _rsyslog_fill_dev DIR: device nodes bound from /dev, pts, shm, links.
_rsyslog_fill_dev() {
	for _r_n in null zero full random urandom tty ptmx; do
		[ -c "/dev/$_r_n" ] || continue
		: >"$1/$_r_n" || return 1
		mount -n --bind "/dev/$_r_n" "$1/$_r_n" || return 1
	done
	mkdir "$1/pts" "$1/shm" || return 1
	if [ -d /dev/pts ]; then
		mount -n --rbind /dev/pts "$1/pts" || return 1
	fi
	mount -n -t tmpfs -o mode=1777 tmpfs "$1/shm" || return 1
	ln -s /proc/self/fd "$1/fd" && ln -s fd/0 "$1/stdin" &&
	    ln -s fd/1 "$1/stdout" && ln -s fd/2 "$1/stderr"
}
