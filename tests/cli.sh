#!/bin/sh
# The command line (README, Command line; dcevents(8), OPTIONS and EXIT
# STATUS), run against the real binary.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

conf=$top_srcdir/conf/dcevents.conf
# The example uses [Spool] Mode=overflow, whose Path= the units' StateDirectory= gives.
export STATE_DIRECTORY="$T/state"

# clean FILE: no control byte but the line ends, no C1 control, valid UTF-8
# (what a terminal shows as text).
clean() {
	if LC_ALL=C grep -aq '[[:cntrl:]]' "$1" ||
	    LC_ALL=C grep -aq "$(printf '\302[\200-\237]')" "$1" ||
	    ! iconv -f UTF-8 -t UTF-8 "$1" >/dev/null 2>&1; then
		echo "# raw control bytes in $1:"
		od -c "$1" | head -20 | sed 's/^/#   /'
		return 1
	fi
}

# roundtrip WHAT ARGS...: -t with ARGS exits 0, and what it prints, read
# back with -c alone (no -o, no environment), prints the same settings.
roundtrip() {
	_rt=$1
	shift
	"$DCEVENTS" -t "$@" >"$T/rt1" 2>"$T/rt1.err"
	_rc=$?
	env -u DOCKERCLOUD_STREAM_HOST -u DOCKERCLOUD_STREAM_URL \
	    -u DOCKERCLOUD_NAMESPACE -u DOCKERCLOUD_USER -u DOCKERCLOUD_APIKEY \
	    -u DOCKERCLOUD_AUTH -u CREDENTIALS_DIRECTORY \
	    "$DCEVENTS" -t -c "$T/rt1" >"$T/rt2" 2>"$T/rt2.err"
	_rc2=$?
	grep -v '^#' "$T/rt1" >"$T/rt1.settings"
	grep -v '^#' "$T/rt2" >"$T/rt2.settings"
	if [ "$_rc" -eq 0 ] && [ "$_rc2" -eq 0 ] && [ -s "$T/rt1.settings" ] &&
	    cmp -s "$T/rt1.settings" "$T/rt2.settings"; then
		pass "round trip: $_rt: -t output reads back as the same settings"
	else
		fail "round trip: $_rt: -t output reads back as the same settings"
		echo "# exit $_rc, read back: exit $_rc2"
		sed 's/^/#   err: /' "$T/rt1.err" "$T/rt2.err"
		diff "$T/rt1.settings" "$T/rt2.settings" | sed 's/^/#   /'
	fi
}

"$DCEVENTS" -V >"$T/out" 2>"$T/err"
check "-V exits 0" test $? -eq 0
check "-V prints the version" grep -qE '^dcevents [0-9]+\.[0-9]+\.[0-9]+$' "$T/out"

"$DCEVENTS" -h >"$T/out" 2>"$T/err"
check "-h exits 0" test $? -eq 0
for opt in "-c FILE" "-o S.K=V" "-t" "-v" "-h" "-V"; do
	check "-h documents $opt" contains "$T/out" "  $opt "
done

"$DCEVENTS" -x >"$T/out" 2>"$T/err"
check "an unknown option exits 1" test $? -eq 1
check "an unknown option prints usage on stderr" contains "$T/err" "usage: dcevents"
"$DCEVENTS" -t -c "$conf" extra >"$T/out" 2>"$T/err"
check "a stray argument exits 1" test $? -eq 1
check "a stray argument is named" contains "$T/err" 'unexpected argument "extra"'

"$DCEVENTS" -t -c "$conf" >"$T/out" 2>"$T/err"
check "-t -c conf/dcevents.conf exits 0" test $? -eq 0
check "-t prints the effective URL" contains "$T/out" "URL=wss://ws.cloud.docker.com/"
check "-t prints QueueMax" contains "$T/out" "QueueMax=100000"
check "-t is quiet on stderr" test ! -s "$T/err"

"$DCEVENTS" -t -c "$T/missing.conf" >"$T/out" 2>"$T/err"
check "a missing -c file exits 1" test $? -eq 1
check "a missing -c file is named" contains "$T/err" "$T/missing.conf: No such file or directory"

printf '[Stream]\nURL=wss://h/\nFoo=bar\n[Output]\nQueueMax=-1\n' >"$T/bad.conf"
"$DCEVENTS" -t -c "$T/bad.conf" >"$T/out" 2>"$T/err"
check "a bad file exits 1" test $? -eq 1
check "a bad file: unknown key with file and line" contains "$T/err" "$T/bad.conf:3: Foo: unknown key in [Stream]"
check "a bad file: bad value with file and line" contains "$T/err" "$T/bad.conf:5: QueueMax: invalid value \"-1\""
check "a bad file prints no settings" test ! -s "$T/out"

"$DCEVENTS" -t -c "$conf" -o Stream.URL=wss://o.example:8443/ -o Output.Stdout=yes >"$T/out" 2>"$T/err"
check "-o exits 0" test $? -eq 0
check "-o overrides a key" contains "$T/out" "URL=wss://o.example:8443/"
check "-o says where the value came from" contains "$T/out" "# from -o Stream.URL"
"$DCEVENTS" -t -c "$conf" -o Stream.Nope=1 >"$T/out" 2>"$T/err"
check "-o with an unknown key exits 1" test $? -eq 1
check "-o with an unknown key is named" contains "$T/err" "-o Stream.Nope: Nope: unknown key"

printf 'key-from-file-0123\n' >"$T/key"
printf '[Stream]\nUser=alice\nAPIKeyFile=%s\n' "$T/key" >"$T/cred.conf"
"$DCEVENTS" -t -c "$T/cred.conf" >"$T/out" 2>"$T/err"
check "-t with a key file exits 0" test $? -eq 0
check "-t names the credential source" contains "$T/out" "# credential: APIKeyFile $T/key"
check "-t never prints the key" lacks "$T/out" "key-from-file-0123"
"$DCEVENTS" -t -c "$conf" -o Stream.User=bob -o Stream.APIKey=argv-secret-42 >"$T/out" 2>"$T/err"
check "-t with -o Stream.APIKey exits 0" test $? -eq 0
check "-o Stream.APIKey is masked" contains "$T/out" "APIKey=(masked)"
check "-o Stream.APIKey warns" contains "$T/err" "visible to other users"
check "the -o key is never printed" lacks "$T/out" "argv-secret-42"
check "the -o key is never logged" lacks "$T/err" "argv-secret-42"

# Control characters in values (issue 14): an error in every layer, with
# file:line:key, and no raw control byte reaches the terminal.
"$DCEVENTS" -t -c "$conf" -o "$(printf 'Stream.Namespace=ns\n[Output]\nJournal=no')" >"$T/out" 2>"$T/err"
check "-o with line breaks in the value exits 1" test $? -eq 1
check "-o with line breaks: named, escaped" contains "$T/err" '-o Stream.Namespace: Namespace: invalid value "ns\n[Output]\nJournal=no": control characters are not allowed'
check "-o with line breaks: stderr has no raw control byte" clean "$T/err"
check "-o with line breaks: no settings printed" test ! -s "$T/out"
printf '[Stream]\nNamespace=a\rb\nUser=\033]0;owned\007\033[2J\n[Output]\nIdentifier=x\177y\nStdout=yes\n' >"$T/ctl.conf"
"$DCEVENTS" -t -c "$T/ctl.conf" >"$T/out" 2>"$T/err"
check "a file with control characters in values exits 1" test $? -eq 1
check "a value with CR: file:line:key, escaped" contains "$T/err" "$T/ctl.conf:2: Namespace: invalid value \"a\\rb\": control characters are not allowed"
check "a value with ESC: file:line:key, escaped" contains "$T/err" "$T/ctl.conf:3: User: invalid value \"\\x1b]0;owned\\x07\\x1b[2J\""
check "a value with DEL: file:line:key, escaped" contains "$T/err" "$T/ctl.conf:5: Identifier: invalid value \"x\\x7fy\""
check "control characters in values: stderr has no raw control byte" clean "$T/err"
DOCKERCLOUD_USER="$(printf 'bob\033[8m')" "$DCEVENTS" -t -c "$conf" >"$T/out" 2>"$T/err"
check "an environment value with ESC exits 1" test $? -eq 1
check "an environment value with ESC: named, escaped" contains "$T/err" '$DOCKERCLOUD_USER: User: invalid value "bob\x1b[8m"'
check "an environment value with ESC: stderr has no raw control byte" clean "$T/err"
mkdir "$T/d.conf.d"
printf '[Output]\nStdout=yes\n' >"$T/d.conf"
printf '[Stream]\nType=container\tservice\n' >"$T/d.conf.d/10-tab.conf"
"$DCEVENTS" -t -c "$T/d.conf" >"$T/out" 2>"$T/err"
check "a drop-in with a tab inside a value exits 1" test $? -eq 1
check "a tab inside a value: file:line:key, escaped" contains "$T/err" "$T/d.conf.d/10-tab.conf:2: Type: invalid value \"container\\tservice\""
# A binary file: every byte value, then the start of the daemon itself.
"$PY" -c 'import sys; sys.stdout.buffer.write(bytes(range(1, 256)) + b"\n" + bytes(range(256)))' >"$T/binary.conf"
head -c 65536 "$DCEVENTS" >>"$T/binary.conf"
"$DCEVENTS" -t -c "$T/binary.conf" >"$T/out" 2>"$T/err"
check "-c on a binary file exits 1" test $? -eq 1
check "-c on a binary file: errors with file and line, its bytes escaped" contains "$T/err" "$T/binary.conf:2: \\x0b\\x0c\\r\\x0e\\x0f"
check "-c on a binary file: stderr has no raw control byte" clean "$T/err"
check "-c on a binary file: no settings printed" test ! -s "$T/out"

# What -t prints reads back as the same configuration, for every
# configuration this driver accepts.
roundtrip "conf/dcevents.conf" -c "$conf"
roundtrip "-o URL and Stdout" -c "$conf" -o Stream.URL=wss://o.example:8443/ -o Output.Stdout=yes
roundtrip "a key file" -c "$T/cred.conf"
roundtrip "-o Stream.APIKey (masked)" -c "$conf" -o Stream.User=bob -o Stream.APIKey=argv-secret-42
printf '[Output]\nStdout=yes\n' >"$T/rt.conf"
roundtrip "-o with blanks around the value" -c "$T/rt.conf" \
	-o "Stream.Namespace=$(printf '\t ns-o \r')"
# (User= needs a key: the file names one, so that -t's output has it too.)
printf '[Stream]\nAPIKeyFile=%s\n[Output]\nStdout=yes\n' "$T/key" >"$T/rt-env.conf"
DOCKERCLOUD_NAMESPACE=" env-ns " DOCKERCLOUD_USER="$(printf '\tenvuser\n')" \
	DOCKERCLOUD_STREAM_URL="wss://env.example:8443/x" \
	roundtrip "DOCKERCLOUD_* variables, blanks removed" -c "$T/rt-env.conf"
check "the environment layer was used" contains "$T/rt1" '# from $DOCKERCLOUD_USER'
check "blanks around an environment value are removed" contains "$T/rt1" "Namespace=env-ns"
printf '[Stream]\r\nNamespace=\t caf\303\251 \t\r\nPingIntervalSec=1500ms\r\nBackoffMaxSec=1min 30s\r\n[Output]\r\nSyslog=relp+tls://[::1]:2514\r\nQueueMaxBytes=64K\r\n[Priority]\r\nDefault=info\r\nservice.Partly running=err\r\n' >"$T/crlf.conf"
roundtrip "CRLF, UTF-8, [Priority] rules" -c "$T/crlf.conf" -o Priority.container.Stopped=warning
nl=$(printf '\n[Output]\nStdout=maybe\nx')
nl=${nl%x}
printf '[Stream]\nNamespace=n\n' >"$T/a${nl}.conf"
roundtrip "a file name with line breaks (escaped in '# from')" -c "$T/a${nl}.conf"

"$DCEVENTS" -t -c "$conf" >"$T/out" 2>"$T/err"
check "without -v no debug lines" lacks "$T/err" "debug:"
"$DCEVENTS" -t -v -c "$conf" >"$T/out" 2>"$T/err"
check "-v adds debug lines" contains "$T/err" "dcevents: debug: reading $conf"

# stderr is the journal stream: sd-daemon priority prefixes.
: >"$T/stream"
js=$(stat -c '%d:%i' "$T/stream")
JOURNAL_STREAM=$js "$DCEVENTS" -t -v -c "$T/bad.conf" >"$T/out" 2>>"$T/stream"
check "an error under JOURNAL_STREAM has <3>" contains "$T/stream" "<3>$T/bad.conf:3: Foo"
JOURNAL_STREAM=$js "$DCEVENTS" -t -v -c "$conf" >"$T/out" 2>>"$T/stream"
check "debug under JOURNAL_STREAM has <7>" contains "$T/stream" "<7>reading $conf"
JOURNAL_STREAM=1:2 "$DCEVENTS" -t -c "$T/bad.conf" >"$T/out" 2>"$T/err"
check "another JOURNAL_STREAM: plain text" contains "$T/err" "dcevents: error: $T/bad.conf:3"

# User= without a key anywhere: the service would answer 401 and the
# daemon wait AuthBackoffSec.  It refuses to start, -t says the same and
# exits 1 too, and a reload to such a file keeps the running settings.
noenv="env -u CREDENTIALS_DIRECTORY -u DOCKERCLOUD_AUTH -u DOCKERCLOUD_APIKEY -u DOCKERCLOUD_USER"
printf '[Stream]\nURL=ws://127.0.0.1:1/\nAllowInsecure=yes\nUser=alice\n[Output]\nJournal=no\nStdout=yes\n' >"$T/nokey.conf"
$noenv timeout 3 "$DCEVENTS" -c "$T/nokey.conf" >"$T/out" 2>"$T/err"
check "User= without a key: the daemon exits 1" test $? -eq 1
check "User= without a key: it does not start" lacks "$T/err" "started"
check "User= without a key: User= is named, with file and line" \
    contains "$T/err" "$T/nokey.conf:4: User: User= needs an API key and none was found"
for place in APIKey= APIKeyFile= '$CREDENTIALS_DIRECTORY/apikey' '$DOCKERCLOUD_AUTH' '$DOCKERCLOUD_APIKEY'; do
	check "User= without a key: $place is named as searched" contains "$T/err" "$place"
done
mv "$T/err" "$T/start.err"
$noenv "$DCEVENTS" -t -c "$T/nokey.conf" >"$T/out" 2>"$T/err"
check "User= without a key: -t exits 1 as starting would" test $? -eq 1
check "User= without a key: -t prints the same message" \
    contains "$T/err" "$(grep 'User=' "$T/start.err")"
mkdir "$T/creds"
printf 'credential-key-77\n' >"$T/creds/apikey"
$noenv CREDENTIALS_DIRECTORY="$T/creds" "$DCEVENTS" -t -c "$T/nokey.conf" >"$T/out" 2>"$T/err"
check "User= with the key where the unit puts it: -t exits 0" test $? -eq 0
printf '[Stream]\nURL=ws://127.0.0.1:1/\nAllowInsecure=yes\nUser=alice\nAPIKeyFile=%s\n[Output]\nJournal=no\nStdout=yes\n' "$T/key" >"$T/reload.conf"
$noenv "$DCEVENTS" -c "$T/reload.conf" >"$T/out" 2>"$T/err" &
pid=$!
PIDS="$PIDS $pid"
wait_for "$T/err" "started"
cp "$T/nokey.conf" "$T/reload.conf"
kill -HUP "$pid"
check "a reload to User= without a key is refused" wait_for "$T/err" "reload failed; keeping the previous configuration"
check "... with the same message" contains "$T/err" "$T/reload.conf:4: User: User= needs an API key"
check "... and the daemon runs on" kill -0 "$pid"
kill "$pid"
wait "$pid"
check "... and exits 0 on SIGTERM" test $? -eq 0

# A key given with -o leaves the process list.
printf '[Output]\nStdout=yes\n' >"$T/run.conf"
"$DCEVENTS" -c "$T/run.conf" -o Stream.User=bob -o Stream.APIKey=argv-secret-42 >"$T/out" 2>"$T/err" &
pid=$!
PIDS="$PIDS $pid"
wait_for "$T/err" "started"
check "the -o key is wiped from /proc/PID/cmdline" sh -c "! tr '\\0' ' ' </proc/$pid/cmdline | grep -q argv-secret-42"
kill "$pid"
wait "$pid"
check "the daemon with -o exits 0 on SIGTERM" test $? -eq 0

finish
