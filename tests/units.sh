#!/bin/sh
# The systemd units: systemd-analyze verify is clean, systemd-analyze
# security rates both at 1.5 or lower, and the restart policy cannot loop
# (tests/systemd.sh runs them under a real systemd).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

command -v systemd-analyze >/dev/null || skip "needs systemd-analyze"
for u in dcevents.service dcevents@.service; do
	[ -f "$top_builddir/systemd/$u" ] || skip "systemd/$u not built"
	# verify checks that ExecStart= exists: point it at the built binary.
	sed "s|^ExecStart=[^ ]*|ExecStart=$DCEVENTS|" "$top_builddir/systemd/$u" >"$T/$u"
	systemd-analyze verify --man=no "$T/$u" >"$T/verify" 2>&1
	check "$u: systemd-analyze verify exits 0" test $? -eq 0
	check "$u: systemd-analyze verify says nothing" test ! -s "$T/verify"
	sed 's/^/#   /' "$T/verify"
	systemd-analyze security --offline=true --no-pager "$T/$u" >"$T/sec" 2>&1
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/sec")
	check "$u: exposure level $level, at most 1.5" awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 1.5) }'
	check "$u: Type=notify" grep -qx 'Type=notify' "$T/$u"
	check "$u: Restart=on-failure" grep -qx 'Restart=on-failure' "$T/$u"
	check "$u: a watchdog" grep -q '^WatchdogSec=' "$T/$u"
	check "$u: DynamicUser" grep -qx 'DynamicUser=yes' "$T/$u"
	check "$u: no journald rate limit" grep -qx 'LogRateLimitIntervalSec=0' "$T/$u"
	check "$u: a configuration error (exit 1) is not restarted" \
	    grep -Eqx 'RestartPreventExitStatus=(.* )?1( .*)?' "$T/$u"
	# Restarts must be able to reach the start limit: StartLimitBurst
	# restarts RestartSec apart fit in StartLimitIntervalSec ([Unit]).
	limits=$(awk -F= '
	    function sec(v) { return v ~ /min$/ ? v * 60 : v ~ /ms$/ ? v / 1000 : v + 0 }
	    /^\[/ { unit = ($0 == "[Unit]") }
	    unit && $1 == "StartLimitIntervalSec" { i = sec($2) }
	    unit && $1 == "StartLimitBurst" { b = $2 }
	    $1 == "RestartSec" { r = sec($2) }
	    END { printf "%s %s %s", b, r, i; exit !(b > 0 && r > 0 && b * r < i) }' "$T/$u")
	check "$u: StartLimitBurst x RestartSec < StartLimitIntervalSec in [Unit] ($limits)" test $? -eq 0
	# systemd 252 fails a missing LoadCredential= file with a bare
	# "Protocol error": an empty default and a message naming the file.
	check "$u: the credential has a default" grep -qx 'SetCredential=apikey:.*' "$T/$u"
	check "$u: a missing key file is named" \
	    grep -q '^ExecStartPre=.*No API key: .*/dcevents/.*apikey is missing' "$T/$u"
done
check "dcevents.service: the API key credential" grep -qx "LoadCredential=apikey:.*/dcevents/apikey" "$T/dcevents.service"
check "dcevents@.service: NAME reads NAME.conf" grep -q '^ExecStart=.* -c .*/dcevents/%i.conf$' "$T/dcevents@.service"
finish
