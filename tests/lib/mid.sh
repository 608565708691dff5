# The daemon's MESSAGE_IDs for the integration drivers (sourced after
# lib.sh): every "#define MID_NAME "<32 hex>"" of daemon/dcevents.h becomes
# the shell variable MID_NAME, so that the tests and the daemon have one
# source (MID_CONNECTED, MID_GAP, MID_SPOOL_DAMAGED, ...).  A driver that
# names one the header lacks stops at once (set -u).

eval "$(sed -n 's/^#define \(MID_[A-Z0-9_]*\) "\([0-9a-f]\{32\}\)".*/\1=\2/p' \
    "$top_srcdir/daemon/dcevents.h")"
[ -n "${MID_CONNECTED:-}" ] || {
	echo "tests/lib/mid.sh: no MID_ in $top_srcdir/daemon/dcevents.h" >&2
	exit 1
}
