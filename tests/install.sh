#!/bin/sh
# make install and make uninstall into a DESTDIR: the tree, an edited
# configuration kept, nothing else left behind.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -f "$top_builddir/Makefile" ] || skip "no build tree"
command -v make >/dev/null || skip "needs make"
D=$T/root
prefix=$(sed -n 's/^prefix = //p' "$top_builddir/Makefile")
sysconfdir=$(sed -n 's/^sysconfdir = //p' "$top_builddir/Makefile" | sed "s|\${prefix}|$prefix|")
unitdir=$(sed -n 's/^systemdsystemunitdir = //p' "$top_builddir/Makefile" | sed "s|\$(prefix)|$prefix|")
catdir=$(sed -n 's/^catalogdir = //p' "$top_builddir/Makefile" | sed "s|\$(prefix)|$prefix|")
mandir=$prefix/share/man

make -C "$top_builddir" install DESTDIR="$D" >"$T/install.log" 2>&1
check "make install DESTDIR= succeeds" test $? -eq 0
find "$D" -type f | sed "s|^$D||" | sort >"$T/tree"
for f in "$prefix/sbin/dcevents" "$sysconfdir/dcevents/dcevents.conf" \
    "$unitdir/dcevents.service" "$unitdir/dcevents@.service" \
    "$catdir/dcevents.catalog" "$mandir/man8/dcevents.8" \
    "$mandir/man5/dcevents.conf.5"; do
	check "installed: $f" grep -qx "$f" "$T/tree"
done
check "nothing else installed ($(wc -l <"$T/tree") files)" test "$(wc -l <"$T/tree")" -eq 7
check "the binary runs" "$D$prefix/sbin/dcevents" -V
check "the unit starts the installed binary with the installed file" \
    grep -qx "ExecStart=$prefix/sbin/dcevents -c $sysconfdir/dcevents/dcevents.conf" "$D$unitdir/dcevents.service"
# (Mode=overflow: its Path= comes from the units' StateDirectory=.)
check "the installed configuration checks" env STATE_DIRECTORY="$T" \
    "$D$prefix/sbin/dcevents" -t -c "$D$sysconfdir/dcevents/dcevents.conf"

echo "URL=edited" >>"$D$sysconfdir/dcevents/dcevents.conf"
make -C "$top_builddir" install DESTDIR="$D" >"$T/install2.log" 2>&1
check "installing again keeps an edited configuration" grep -qx "URL=edited" "$D$sysconfdir/dcevents/dcevents.conf"
make -C "$top_builddir" uninstall DESTDIR="$D" >"$T/uninstall.log" 2>&1
check "make uninstall succeeds" test $? -eq 0
find "$D" -type f | sed "s|^$D||" >"$T/left"
check "uninstall leaves only the edited configuration" test "$(cat "$T/left")" = "$sysconfdir/dcevents/dcevents.conf"
finish
