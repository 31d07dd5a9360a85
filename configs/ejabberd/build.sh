#!/bin/sh
# Builds mod_presencegw.beam for ejabberd 23.01 with erlc.
#
#   configs/ejabberd/build.sh [OUTDIR]     (default: ./ebin)
#
# The ejabberd and xmpp (p1_xmpp) library directories are found under the
# usual Debian/Ubuntu and ejabberd-installer paths; set EJABBERD_LIB (the
# directory holding ejabberd's ebin/ and include/) and XMPP_LIB (the one
# holding xmpp.hrl's include/) to override. Prints nothing on success.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-ebin}

first_dir() {
	for d in "$@"; do
		if [ -d "$d" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	return 1
}

if [ -z "${EJABBERD_LIB:-}" ]; then
	# shellcheck disable=SC2086 # the globs are meant to expand
	EJABBERD_LIB=$(first_dir /usr/lib/*/ejabberd-[0-9]* /usr/lib/ejabberd-[0-9]* \
		/usr/lib/ejabberd /opt/ejabberd-*/lib/ejabberd-[0-9]* \
		/usr/local/lib/ejabberd-[0-9]* /usr/lib/erlang/lib/ejabberd-[0-9]*) || {
		echo "build.sh: ejabberd's library directory not found; set EJABBERD_LIB" >&2
		exit 1
	}
fi
if [ -z "${XMPP_LIB:-}" ]; then
	# shellcheck disable=SC2086
	XMPP_LIB=$(first_dir /usr/lib/erlang/lib/p1_xmpp-* /usr/lib/erlang/lib/xmpp-* \
		"$EJABBERD_LIB"/../xmpp-* /opt/ejabberd-*/lib/xmpp-*) || {
		echo "build.sh: the xmpp (p1_xmpp) library directory not found; set XMPP_LIB" >&2
		exit 1
	}
fi
for f in "$EJABBERD_LIB/include/logger.hrl" "$XMPP_LIB/include/xmpp.hrl"; do
	if [ ! -f "$f" ]; then
		echo "build.sh: $f missing (is ejabberd installed with its headers?)" >&2
		exit 1
	fi
done

mkdir -p "$out"
# -pa: without ejabberd's ebin on the path erlc warns "behaviour gen_mod
# undefined". The xmpp include dir's own include_lib("p1_xml/...") and
# fast_xml headers resolve through the Erlang lib dir.
exec erlc -pa "$EJABBERD_LIB/ebin" \
	-I "$EJABBERD_LIB/include" -I "$XMPP_LIB/include" \
	-o "$out" "$here/mod_presencegw.erl"
