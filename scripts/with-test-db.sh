#!/usr/bin/env bash
# Usage: scripts/with-test-db.sh COMMAND [ARG...]
#
# Run COMMAND with TEST_DATABASE_URL set to a Postgres that the tests can
# create databases on (internal/pgtest), found or started the way `make run`
# finds its own (scripts/lib.sh):
#   1. TEST_DATABASE_URL, if it is set;
#   2. else the Postgres on 127.0.0.1:5432, if it answers;
#   3. else the private cluster in .dev/pg on 127.0.0.1:55432, started if
#      it is not running;
#   4. else an error that says what to install.
# It says which one it used. A cluster it started is stopped when COMMAND
# ends, however it ends (success, failure, Ctrl-C); one that was already
# running is left running. `make test` runs the test suite through it.
set -euo pipefail
HL_TAG="test"
HL_URL_VAR=TEST_DATABASE_URL
HL_URL_HINT="TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/postgres (a user that may create databases)"
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

(($# > 0)) || hl_die "usage: $0 COMMAND [ARG...]"

# COMMAND runs in the foreground, so a Ctrl-C reaches it as well as this
# script; bash runs the INT trap once it has exited, and the cluster is
# stopped after the last test binary has let go of it. cleanup ignores
# further signals so that a second Ctrl-C cannot leave the cluster running.
# shellcheck disable=SC2317 # only the traps call it
cleanup() {
	trap - EXIT
	trap '' INT TERM
	hl_stop_private_cluster
}
trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

if [[ -n ${TEST_DATABASE_URL:-} ]]; then
	hl_log "using TEST_DATABASE_URL=$(hl_redact "$TEST_DATABASE_URL")"
else
	hl_find_server
	case $HL_DB_KIND in
	probe)
		hl_log "using the Postgres on 127.0.0.1:$HL_PROBE_PORT"
		;;
	private)
		hl_log "no Postgres on 127.0.0.1:$HL_PROBE_PORT; using the private cluster already running on 127.0.0.1:$HL_DEV_PORT ($(hl_show "$HL_DEV_DATA")), and leaving it running"
		;;
	none)
		hl_log "no Postgres answers on 127.0.0.1:$HL_PROBE_PORT, nor the private cluster on 127.0.0.1:$HL_DEV_PORT"
		hl_start_private_cluster
		hl_log "using the private cluster on 127.0.0.1:$HL_DEV_PORT ($(hl_show "$HL_DEV_DATA")), which this run started and stops when the tests end"
		;;
	esac
	TEST_DATABASE_URL=$(hl_url "$HL_DB_PORT" postgres)
	export TEST_DATABASE_URL
fi

status=0
"$@" || status=$?
exit "$status"
