#!/bin/sh
# The manual pages pass mandoc -T lint and groff -ww without a word, and
# document every option, key and MESSAGE_ID.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

command -v mandoc >/dev/null || skip "needs mandoc"
m8=$top_srcdir/man/dcevents.8
m5=$top_srcdir/man/dcevents.conf.5
for m in "$m8" "$m5"; do
	mandoc -T lint -W warning "$m" >"$T/lint" 2>&1
	check "$(basename "$m"): mandoc -T lint is silent" test ! -s "$T/lint"
	sed 's/^/#   /' "$T/lint"
	if command -v groff >/dev/null; then
		groff -mandoc -ww -z "$m" >"$T/groff" 2>&1
		check "$(basename "$m"): groff -ww is silent" test ! -s "$T/groff"
	fi
done
mandoc -T utf8 "$m8" | col -bx >"$T/8.txt"
mandoc -T utf8 "$m5" | col -bx >"$T/5.txt"
for o in -c -o -t -v -h -V; do
	check "dcevents(8) documents $o" grep -qE -- "^ +$o( |$)" "$T/8.txt"
done
for k in $(sed -n 's/^#\([A-Za-z]*\)=.*/\1/p' "$top_srcdir/conf/dcevents.conf" | sort -u); do
	check "dcevents.conf(5) documents $k" grep -qE "^ +$k=" "$T/5.txt"
done
for id in $(cat "$top_srcdir/daemon/dcevents.h" "$top_srcdir/daemon/event.c" |
    grep -oE '"[0-9a-f]{32}"' | tr -d '"' | sort -u); do
	check "dcevents(8) lists MESSAGE_ID $id" grep -q "$id" "$T/8.txt"
done
for f in SIGTERM SIGHUP DOCKERCLOUD_PARENT DCEVENTS_REASON "EXIT STATUS"; do
	check "dcevents(8) mentions $f" grep -q "$f" "$T/8.txt"
done
finish
