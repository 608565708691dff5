#!/bin/sh
# The README's forwarding recipes are the files in conf/recipes/, which
# tests/recipe-rsyslog.sh and tests/recipe-syslog-ng.sh run: README.md
# holds each file verbatim as one fenced block (indented as the list item
# it is in), so what the tests run is what a reader copies.  Also: the
# troubleshooting notes say that journalctl -x needs
# journalctl --update-catalog.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

PY3=$PY
[ -x "$PY3" ] || PY3=$(command -v python3) || skip "needs python3"
for f in "$top_srcdir"/conf/recipes/*; do
	check "README.md holds conf/recipes/${f##*/} verbatim" "$PY3" - \
	    "$top_srcdir/README.md" "$f" <<'PYEOF'
import re, sys
readme = open(sys.argv[1]).read()
want = open(sys.argv[2]).read()
blocks = []
for m in re.finditer(r"^( *)```[^\n]*\n(.*?)^\1```$", readme, re.M | re.S):
    ind = m.group(1)
    lines = m.group(2).splitlines(True)
    blocks.append("".join(l[len(ind):] if l.startswith(ind) else l
                          for l in lines))
if want not in blocks:
    print("# no fenced block of README.md is", sys.argv[2])
    sys.exit(1)
PYEOF
done
awk '/^## Troubleshooting/ { t = 1; next } /^## / { t = 0 } t' \
    "$top_srcdir/README.md" >"$T/trouble"
check "Troubleshooting: journalctl -x needs journalctl --update-catalog" \
    contains "$T/trouble" "journalctl --update-catalog"
check "Troubleshooting names journalctl -x" contains "$T/trouble" "journalctl -x"
finish
